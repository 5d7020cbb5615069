"""Features of (person, candidate product) pairs for the learned ranker.

Beside each source's score and rank (added by the hybrid), the ranker sees how many of the
people the person follows engaged with the product (and how many of them are KOLs or
mutual friends, and how many bought it in the last few days — still in the person's feed),
the person's affinity for the product's category, the product's price
against the person's usual spend, the product's popularity and recency, and the person's
activity. All are computed for a batch of pairs with sparse algebra.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.data import TrainingData, binary, compact, row_positions, take_rows

PAIR_FEATURES = (
    "followees_engaged",
    "followees_bought",
    "mutual_engaged",
    "kols_engaged",
    "category_affinity",
    "category_events",
    "log_price_gap",
    "item_popularity",
    "item_recent_popularity",
    "item_days_since_last",
    "user_activity",
    "user_followees",
    "user_viewed_item",
    "followees_bought_recent",
)


@dataclass
class FeatureContext:
    """Per-model look-ups the features need, computed once per fit."""

    engaged: sp.csr_array
    """users × items: 1 where the person engaged, private people included (the features
    weigh the engaging side by :attr:`visible`)."""
    visible: np.ndarray
    """1 for people who share their activity, 0 for those who keep it private."""
    bought: sp.csr_array
    follows: sp.csr_array
    mutual: sp.csr_array
    kol_follows: sp.csr_array
    user_leaf: sp.csr_array
    user_leaf_events: sp.csr_array
    item_leaf: np.ndarray
    log_price: np.ndarray
    user_log_price: np.ndarray
    item_popularity: np.ndarray
    item_recent: np.ndarray
    item_days_since: np.ndarray
    user_activity: np.ndarray
    user_followees: np.ndarray
    user_items: sp.csr_array
    endorsed: sp.csr_array
    """users × items: products a person bought visibly or linked in a post."""
    bought_recent: sp.csr_array
    """users × items: visible purchases of the last ``feed_days`` (still in followers' feeds)."""

    @classmethod
    def build(
        cls, data: TrainingData, *, recent_days: float = 7.0, feed_days: float = 3.0
    ) -> FeatureContext:
        products = data.dataset.products
        users = data.dataset.users
        engaged = binary(data.user_items)
        bought = data.purchased.copy()
        bought.data[:] = 1.0
        private = ~users["share_purchases"].to_numpy(bool)
        # People who keep purchases private never count as social proof.
        sharing = (~private).astype(np.float32)
        bought_visible = sp.csr_array(sp.diags_array(sharing) @ bought)
        follows = data.follows
        if not (
            follows.dtype == np.float32
            and follows.has_canonical_format
            and (follows.data == 1).all()
        ):
            follows = sp.csr_array((follows > 0).astype(np.float32))
        # else: the graph itself (0/1 already, read-only after the fit), not a third copy
        mutual = sp.csr_array(follows.multiply(follows.T))
        is_kol = users["is_kol"].to_numpy(bool)
        kol_follows = sp.csr_array(follows @ sp.diags_array(is_kol.astype(np.float32)))
        leaf_codes = pd.factorize(products["category_path"].astype(str))[0]
        item_leaf = sp.csr_array(
            (np.ones(data.n_items, np.float32), (np.arange(data.n_items), leaf_codes)),
        )
        user_leaf_events = compact(sp.csr_array(data.user_items @ item_leaf))
        totals = np.asarray(user_leaf_events.sum(axis=1)).ravel()
        user_leaf = compact(
            sp.csr_array(sp.diags_array(1.0 / np.maximum(totals, 1e-9)) @ user_leaf_events)
        )
        price = products["price"].to_numpy(dtype=float, na_value=np.nan)
        log_price = np.log(np.where(np.isfinite(price) & (price > 0), price, np.nan))
        filled = np.nan_to_num(
            log_price, nan=np.nanmean(log_price) if np.isfinite(log_price).any() else 0.0
        )
        weights = sp.csr_array(data.user_items)
        spend = weights @ filled
        user_log_price = np.where(totals > 0, spend / np.maximum(totals, 1e-9), np.nan)
        inter = data.interactions
        items = inter["i"].to_numpy()
        popularity = np.log1p(np.bincount(items, minlength=data.n_items))
        age_days = (data.now - inter["ts"]).dt.total_seconds().to_numpy() / 86_400
        recent = np.log1p(np.bincount(items[age_days <= recent_days], minlength=data.n_items))
        last = np.full(data.n_items, np.inf)
        np.minimum.at(last, items, age_days)
        posts = data.posts
        linked = posts[posts["product_id"].notna()]
        link_items = data.items.lookup(
            linked["product_id"].to_numpy(np.int64, na_value=-1), missing="ignore"
        )
        links = _indicator(linked["u"].to_numpy(), link_items, link_items >= 0, data)
        endorsed = compact(sp.csr_array(((bought_visible + links) > 0).astype(np.float32)))
        # Purchases still in followers' feeds: the fresh social cue (older ones mostly say
        # "similar taste", which followees_bought already carries).
        fresh_buy = (inter["event"].astype(str) == "purchase").to_numpy() & (
            ~private[inter["u"].to_numpy()] & (age_days <= feed_days)
        )
        return cls(
            bought_recent=_indicator(inter["u"].to_numpy(), items, fresh_buy, data),
            endorsed=endorsed,
            engaged=engaged,
            visible=sharing,
            bought=bought_visible,
            follows=follows,
            mutual=mutual,
            kol_follows=kol_follows,
            user_leaf=user_leaf,
            user_leaf_events=user_leaf_events,
            item_leaf=leaf_codes,
            log_price=log_price,
            user_log_price=user_log_price,
            item_popularity=popularity,
            item_recent=recent,
            item_days_since=np.where(np.isfinite(last), last, 365.0),
            user_activity=np.log1p(np.diff(data.user_items.indptr)),
            user_followees=np.log1p(np.diff(follows.indptr)),
            user_items=sp.csr_array(data.user_items),
        )

    def _sharing(self, people: sp.csr_array) -> sp.csr_array:
        """Rows of people-to-people ties with the ties to private people weighed 0: their
        engagement is not social proof (a fresh matrix; ``people`` is left alone)."""
        data = people.data * self.visible[people.indices]
        return sp.csr_array((data, people.indices, people.indptr), shape=people.shape)

    def pair_features(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Features of each ``(users[j], items[j])`` pair: shape (len(users), n_features)."""
        uniq, row = np.unique(users, return_inverse=True)
        followees = take_rows(self.follows, uniq)
        f_engaged = pair_products(self._sharing(followees), self.engaged, row, items)
        f_bought = pair_products(followees, self.bought, row, items)
        mutual = self._sharing(take_rows(self.mutual, uniq))
        m_engaged = pair_products(mutual, self.engaged, row, items)
        kols = self._sharing(take_rows(self.kol_follows, uniq))
        k_engaged = pair_products(kols, self.engaged, row, items)
        leaf = self.item_leaf[items]
        affinity = pair_values(take_rows(self.user_leaf, uniq), row, leaf)
        own = pair_values(take_rows(self.user_items, uniq), row, items)
        category_events = pair_values(take_rows(self.user_leaf_events, uniq), row, leaf)
        f_recent = pair_products(followees, self.bought_recent, row, items)
        gap = np.abs(self.log_price[items] - self.user_log_price[users])
        return np.column_stack(
            [
                f_engaged,
                f_bought,
                m_engaged,
                k_engaged,
                affinity,
                np.log1p(category_events),
                gap,
                self.item_popularity[items],
                self.item_recent[items],
                self.item_days_since[items],
                self.user_activity[users],
                self.user_followees[users],
                np.log1p(own),
                f_recent,
            ]
        ).astype(np.float32)


def _indicator(rows: np.ndarray, cols: np.ndarray, keep: np.ndarray, data: TrainingData):
    """users × items 0/1 matrix of the kept ``(rows, cols)`` pairs."""
    out = sp.csr_array(
        (np.ones(int(keep.sum()), np.float32), (rows[keep], cols[keep])),
        shape=(data.n_users, data.n_items),
    )
    out.sum_duplicates()
    out.data[:] = 1.0
    return out


def pair_products(left, right, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values ``(left @ right)[rows[j], cols[j]]`` without forming the product.

    Every entry ``left[r, k]`` meets the entries of ``right``'s row ``k``; only those in a
    wanted pair's column are kept, by a binary search among the wanted pairs. The product
    itself would collect each row over the whole width of ``right`` and sort it: on
    ``large`` a person's followees' products run to 100,000 entries, for 70 wanted pairs."""
    out = np.zeros(len(rows), dtype=np.float32)
    left, right = sp.csr_array(left), sp.csr_array(right)
    if len(rows) == 0 or left.nnz == 0 or right.nnz == 0:
        return out
    n_cols = np.int64(right.shape[1])
    # Positions in right of every gathered entry: each left entry's row of right, in turn.
    gathered_ptr, pos = row_positions(right.indptr, left.indices)
    if len(pos) == 0:
        return out
    lengths = np.diff(gathered_ptr)
    left_row = np.repeat(np.arange(left.shape[0], dtype=np.int64), np.diff(left.indptr))
    keys = np.repeat(left_row, lengths) * n_cols + right.indices[pos]
    want = np.asarray(rows, dtype=np.int64) * n_cols + np.asarray(cols, dtype=np.int64)
    order = np.argsort(want, kind="stable")
    wanted = want[order]
    at = np.minimum(np.searchsorted(wanted, keys), len(wanted) - 1)
    hit = wanted[at] == keys
    values = np.repeat(left.data, lengths)[hit] * right.data[pos[hit]]
    sums = np.bincount(at[hit], weights=values, minlength=len(wanted))
    # Repeated wanted pairs: the search finds the first of each run; copy it to the rest.
    first = np.searchsorted(wanted, wanted)
    out[order] = sums[first]
    return out


def pair_values(matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values ``matrix[rows[j], cols[j]]`` of a sparse matrix (0 where absent).

    A binary search among the sorted entries: scipy's own pair indexing scans whole rows of
    an unsorted product (a person's followees' items run to thousands)."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float32)
    m = sp.csr_array(matrix)
    m.sum_duplicates()  # canonical: indices sorted within each row
    n_cols = np.int64(m.shape[1])
    keys = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * n_cols
    keys += m.indices
    want = np.asarray(rows, dtype=np.int64) * n_cols + np.asarray(cols, dtype=np.int64)
    out = np.zeros(len(want), dtype=np.float32)
    if len(keys):
        pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
        hit = keys[pos] == want
        out[hit] = m.data[pos[hit]]
    return out
