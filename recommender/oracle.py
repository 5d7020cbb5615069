"""The oracle: ranks by the generator's planted truth — the ceiling of a synthetic dataset.

It scores a product for a person as the simulation would: the chance of viewing it (the
person's latent interest in its category, boosted during a life event about it, times the
product's appeal within the category) times the chance of buying after a view (the funnel's
logit of interest, appeal and price fit). It reads ``ground_truth/``, so it exists for
evaluation only; real datasets have none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.base import Reason, Recommender
from recommender.data import TrainingData

REQUIRED = ("user_interests", "product_appeal", "user_latent")

FUNNEL_INTERCEPT = -6.0
"""The generator solves its funnel intercept each day so purchases per view match Taobao's
2.2 %; with typical logits that lands near -6, which is all the ranking needs (the
ordering of people's products barely depends on the exact value)."""


class OracleRecommender(Recommender):
    """Ranks by the planted truth of a synthetic dataset (needs ``ground_truth/``)."""

    source_name = "oracle"

    def __init__(self, *, life_event_boost: float = 0.6) -> None:
        self.life_event_boost = life_event_boost

    def _fit(self, data: TrainingData) -> None:
        gt = data.dataset.ground_truth
        missing = [t for t in REQUIRED if t not in gt]
        if missing:
            raise ValueError(f"the oracle needs ground_truth tables {missing}: not synthetic data")
        config = data.dataset.manifest.get("config", {})
        products = data.dataset.products
        leaf_codes, leaves = pd.factorize(products["category_path"].astype(str))
        leaf_index = {p: i for i, p in enumerate(leaves)}
        appeal = gt["product_appeal"].set_index("product_id")["appeal"]
        appeal = appeal.reindex(data.items.ids).fillna(appeal.median()).to_numpy()
        leaf_total = np.bincount(leaf_codes, weights=appeal, minlength=len(leaves))
        self.view_share_ = appeal / leaf_total[leaf_codes]
        self.leaf_ = leaf_codes
        interests = gt["user_interests"]
        u = data.users.lookup(interests["user_id"].to_numpy(np.int64))
        cols = interests["category_path"].astype(str).map(leaf_index).fillna(-1).to_numpy(int)
        keep = cols >= 0
        weights = sp.csr_array(
            (interests["weight"].to_numpy(float)[keep], (u[keep], cols[keep])),
            shape=(data.n_users, len(leaves)),
        )
        self.interest_ = weights.toarray().astype(np.float32)
        self._add_life_events(data, gt, leaf_index)
        latent = gt["user_latent"].set_index("user_id").reindex(data.users.ids)
        self.price_offset_ = latent["price_offset"].fillna(0.0).to_numpy()
        price = products["price"].to_numpy(dtype=float, na_value=np.nan)
        median = pd.Series(price).groupby(leaf_codes).transform("median").to_numpy()
        self.log_price_ = np.log(np.where(np.isfinite(price) & (price > 0), price, 1.0))
        self.log_median_ = np.log(np.where(np.isfinite(median) & (median > 0), median, 1.0))
        self.interest_strength_ = float(config.get("interest_strength", 3.0))
        self.price_sensitivity_ = float(config.get("price_sensitivity", 1.0))
        self.log_appeal_ = np.log(np.maximum(appeal, 1e-9))

    def _add_life_events(self, data, gt, leaf_index) -> None:
        """People whose life event runs after the cut-off want its categories."""
        self.event_boost_ = np.zeros_like(self.interest_)
        events, event_leaves = gt.get("user_life_events"), gt.get("life_event_leaves")
        if events is None or event_leaves is None:
            return
        now = data.now
        active = events[events["end_ts"] > now]
        merged = active.merge(event_leaves, on="event")
        u = data.users.lookup(merged["user_id"].to_numpy(np.int64), missing="ignore")
        leaf = merged["category_path"].astype(str).map(leaf_index).fillna(-1).to_numpy(int)
        ok = (u >= 0) & (leaf >= 0)
        self.event_boost_[u[ok], leaf[ok]] = self.life_event_boost

    def _score(self, users: np.ndarray) -> np.ndarray:
        match = self.interest_[users][:, self.leaf_] + self.event_boost_[users][:, self.leaf_]
        pref = self.log_median_[None, :] + self.price_offset_[users][:, None]
        price_fit = -((self.log_price_[None, :] - pref) ** 2) / (2 * 0.6**2)
        logit = (
            self.interest_strength_ * match
            + 0.3 * self.log_appeal_[None, :]
            + self.price_sensitivity_ * price_fit
        )
        p_buy = 1.0 / (1.0 + np.exp(-(logit + FUNNEL_INTERCEPT)))
        return (match * self.view_share_[None, :] * p_buy).astype(np.float32)

    def _explain(self, user: int, items: np.ndarray) -> list[list[Reason]]:
        return [
            [Reason("oracle", "Planted truth of the generator", {}, self.source_name)]
            for _ in items
        ]
