"""Category affinity: what is popular in the categories a person engages with.

Score = the person's (time-decayed, event-weighted) share of activity in the product's
category × the product's share of that category's recent demand. It nominates the
best-selling products of one's own categories, which neither collaborative filtering (on
sparse histories) nor global popularity reliably does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from recommender.base import Reason, Recommender, sparse_pairs, sparse_top_n
from recommender.data import TrainingData, compact, take_rows


class CategorySource(Recommender):
    """Popular products of the categories a person engages with.

    Parameters
    ----------
    half_life_days : float, default=14.0
        Decay of the person's activity when measuring category affinity.
    popularity_half_life_days : float, default=7.0
        Decay of demand when measuring a product's popularity within its category.
    """

    source_name = "category"

    def __init__(
        self, *, half_life_days: float = 14.0, popularity_half_life_days: float = 7.0
    ) -> None:
        self.half_life_days = half_life_days
        self.popularity_half_life_days = popularity_half_life_days

    def _fit(self, data: TrainingData) -> None:
        for name in ("half_life_days", "popularity_half_life_days"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} == {getattr(self, name)}, must be > 0.")
        paths = data.dataset.products["category_path"].astype(str)
        self.item_category_, self.categories_ = pd.factorize(paths)
        inter = data.interactions
        age = (data.now - inter["ts"]).dt.total_seconds().to_numpy() / 86_400
        strength = inter["event"].astype(str).map(data.event_weights).to_numpy(float)
        u, i = inter["u"].to_numpy(), inter["i"].to_numpy()
        cat = self.item_category_[i]
        n_cat = len(self.categories_)
        user_decay = 0.5 ** (np.maximum(age, 0) / self.half_life_days)
        affinity = sp.csr_array(
            (strength * user_decay, (u, cat)), shape=(data.n_users, n_cat), dtype=np.float64
        )
        affinity.sum_duplicates()
        totals = np.asarray(affinity.sum(axis=1)).ravel()
        self.affinity_ = compact(
            sp.csr_array(
                sp.diags_array(1.0 / np.maximum(totals, 1e-12)) @ affinity, dtype=np.float32
            )
        )
        pop_decay = 0.5 ** (np.maximum(age, 0) / self.popularity_half_life_days)
        demand = np.bincount(i, weights=strength * pop_decay, minlength=data.n_items)
        per_cat = np.bincount(self.item_category_, weights=demand, minlength=n_cat)
        share = demand / np.maximum(per_cat[self.item_category_], 1e-12)
        self.share_ = share.astype(np.float32)
        self.category_items_ = sp.csr_array(
            (self.share_, (self.item_category_, np.arange(data.n_items))),
            shape=(n_cat, data.n_items),
        )
        # Each category's products best first (share, then index): a person's top-n lies
        # among the first few of each of their categories.
        self._ranked = np.lexsort((np.arange(data.n_items), -self.share_, self.item_category_))
        self._ranked_ptr = np.searchsorted(
            self.item_category_[self._ranked], np.arange(n_cat + 1), side="left"
        )

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = (self.affinity_[users] @ self.category_items_).toarray().astype(np.float32)
        scores[scores <= 0] = -np.inf
        return scores

    def _all_scores(self, users: np.ndarray) -> sp.csr_array:
        """The finite entries of :meth:`_score` (positive ones) as a sparse matrix: every
        product of every category a person engages with."""
        return _positive(self.affinity_[users] @ self.category_items_)

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``affinity[user, category(item)] * share[item]`` of each pair (no catalogue pass)."""
        users = np.asarray(users, dtype=np.int64)
        safe = np.maximum(items, 0)
        affinity = sparse_pairs(take_rows(self.affinity_, users), self.item_category_[safe])
        scores = np.where(affinity > -np.inf, affinity, 0).astype(np.float32)
        scores = scores * self.share_[safe]
        return np.where((items >= 0) & (scores > 0), scores, -np.inf).astype(np.float32)

    def candidates(self, users, n, *, exclude=None, blocked=None):
        """Each person's top-``n`` from the head of each of their categories: the first
        ``n`` + (their excluded items) products of a category by share are the only ones of
        it that can make the list. With ``blocked`` (a filter that may empty a category's
        head) every product of the person's categories is scored."""
        check_is_fitted(self, "affinity_")
        users = np.asarray(users, dtype=np.int64)
        if blocked is not None or n <= 0:
            return sparse_top_n(self._all_scores(users), n, exclude=exclude, blocked=blocked)
        rows = take_rows(self.affinity_, users)
        exclude = None if exclude is None else sp.csr_array(exclude)
        extra = np.zeros(len(users), np.int64) if exclude is None else np.diff(exclude.indptr)
        owner = np.repeat(np.arange(len(users)), np.diff(rows.indptr))
        cats = rows.indices
        start = self._ranked_ptr[cats]
        take = np.minimum(self._ranked_ptr[cats + 1] - start, n + extra[owner])
        # Expand the (row, category) heads into one entry per product.
        entry_owner = np.repeat(np.arange(len(cats)), take)
        offset = np.arange(int(take.sum())) - np.repeat(np.cumsum(take) - take, take)
        items = self._ranked[start[entry_owner] + offset]
        values = rows.data[entry_owner].astype(np.float32) * self.share_[items]
        scores = _positive(
            sp.csr_array(
                (values, (owner[entry_owner], items)), shape=(len(users), self.data_.n_items)
            )
        )
        return sparse_top_n(scores, n, exclude=exclude)

    def _explain(self, user: int, items: np.ndarray) -> list[list[Reason]]:
        a, b = self.affinity_.indptr[user], self.affinity_.indptr[user + 1]  # the row, no copy
        affinity = dict(
            zip(
                self.affinity_.indices[a:b].tolist(), self.affinity_.data[a:b].tolist(), strict=True
            )
        )
        reasons = []
        for item in items:
            cat = int(self.item_category_[item])
            path = str(self.categories_[cat])
            leaf = path.rsplit("/", 1)[-1]
            reasons.append(
                [
                    Reason(
                        "popular_in_your_category",
                        f"Popular in {leaf}, which you browse",
                        {"category_path": path, "affinity": round(affinity.get(cat, 0.0), 4)},
                        self.source_name,
                    )
                ]
            )
        return reasons


def _positive(scores) -> sp.csr_array:
    """The positive entries of a score matrix (the finite scores of :meth:`_score`)."""
    scores = sp.csr_array(scores, dtype=np.float32)
    scores.data[~(scores.data > 0)] = 0.0
    scores.eliminate_zeros()
    return scores
