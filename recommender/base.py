"""The surface every recommender shares: candidate sources and the hybrid alike.

A model implements two hooks in index space — :meth:`Recommender._fit` and
:meth:`Recommender._score` (scores of every item for a batch of users) — and optionally
:meth:`Recommender._explain`. The base class gives the whole public surface on raw ids:
``fit(dataset)``, batch-first ``recommend(user_ids, k=10, ...) -> DataFrame`` with business
filters as parameters, ``candidates`` for a two-stage ranker, and reasons for every item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from recommender.data import TrainingData, as_training_data

BATCH_CELLS = 1 << 24
"""Score cells (users × items) computed at once when ranking a batch of users."""


@dataclass
class Reason:
    """Why an item is recommended: a type, the evidence, and a sentence a person can read.

    Types: ``friends_purchased``, ``friends_engaged``, ``friends_posted``, ``kol_pick``,
    ``post_match``, ``similar_to_purchased``, ``collaborative``, ``trending_in_segment``,
    ``trending``.
    """

    type: str
    text: str
    evidence: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        # Shallow on purpose: dataclasses.asdict deep-copies, a hot spot when explaining.
        return {
            "type": self.type,
            "text": self.text,
            "evidence": self.evidence,
            "source": self.source,
        }


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best columns of each row, best first (ties to the lower index), and their
    scores; ``-inf`` entries are never returned (``-1`` pads).

    ``argpartition`` finds the top ``n`` in linear time; only those ``n`` are sorted. The
    order is total (score, then index), so any faster path that computes the same scores
    for fewer items can return exactly the same lists.
    """
    n = min(n, scores.shape[1])
    if n == 0 or scores.shape[0] == 0:
        shape = (scores.shape[0], n)
        return np.full(shape, -1, dtype=np.int64), np.full(shape, -np.inf, dtype=np.float32)
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    vals = np.take_along_axis(scores, part, axis=1)
    part = _lowest_ties(scores, part, vals)
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=-1)
    top = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1)
    missing = ~np.isfinite(vals)
    top[missing] = -1
    return top, np.where(missing, -np.inf, vals).astype(np.float32)


def sparse_top_n(
    scores: sp.csr_array, n: int, *, exclude=None, blocked: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_n` of rows whose stored entries are the only finite scores (everything
    else ``-inf``), with :meth:`Recommender.candidates`' masks; never densifies a row.
    ``scores`` is put in canonical order in place (sorted columns: ties go to the lower
    index)."""
    scores = _canonical(scores)
    m, n_cols = scores.shape
    data = np.array(scores.data, dtype=np.float32)
    data[~np.isfinite(data)] = -np.inf
    if blocked is not None:
        data[np.asarray(blocked, bool)[scores.indices]] = -np.inf
    if exclude is not None and len(data):
        # Look the few exclusions up among the many entries, not the other way round.
        ex = sp.csr_array(exclude)
        ex_keys = np.repeat(np.arange(m, dtype=np.int64), np.diff(ex.indptr)) * n_cols
        ex_keys += ex.indices
        keys = _row_keys(scores)
        pos = np.minimum(np.searchsorted(keys, ex_keys), len(keys) - 1)
        data[pos[keys[pos] == ex_keys]] = -np.inf
    items = np.full((m, n), -1, dtype=np.int64)
    values = np.full((m, n), -np.inf, dtype=np.float32)
    for row in range(m):
        lo, hi = scores.indptr[row], scores.indptr[row + 1]
        if hi == lo:
            continue
        pos, top = top_n(data[None, lo:hi], n)
        ok = pos[0] >= 0
        items[row, : ok.sum()] = scores.indices[lo:hi][pos[0][ok]]
        values[row, : ok.sum()] = top[0][ok]
    return items, values


def sparse_pairs(scores: sp.csr_array, items: np.ndarray) -> np.ndarray:
    """Entries ``scores[r, items[r, c]]`` (``-inf`` where not stored or ``items < 0``).
    ``scores`` is put in canonical order in place."""
    scores = _canonical(scores)
    keys = _row_keys(scores)
    want = np.arange(len(items), dtype=np.int64)[:, None] * scores.shape[1]
    want = want + np.maximum(items, 0)
    out = np.full(items.shape, -np.inf, dtype=np.float32)
    if len(keys):
        pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
        hit = (keys[pos] == want) & (items >= 0)
        out[hit] = scores.data[pos[hit]]
    return out


def _canonical(matrix) -> sp.csr_array:
    """A CSR array with sorted, unique columns per row (sorted in place if it was not)."""
    matrix = sp.csr_array(matrix)
    if not matrix.has_canonical_format:
        matrix.sum_duplicates()
    return matrix


def _row_keys(matrix: sp.csr_array) -> np.ndarray:
    """``row * n_cols + col`` of every stored entry (ascending for a canonical matrix)."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows * matrix.shape[1] + matrix.indices


def _lowest_ties(scores: np.ndarray, part: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """``argpartition`` keeps an arbitrary few of the items tied at the ``n``-th score; keep
    the lowest-indexed ones instead (rows whose ties all made it in are left as they are)."""
    kth = vals.min(axis=1)
    n = part.shape[1]
    ties_in = (vals == kth[:, None]).sum(axis=1)
    ties_all = (scores == kth[:, None]).sum(axis=1)
    for row in np.flatnonzero((ties_all > ties_in) & np.isfinite(kth)):
        above = np.flatnonzero(scores[row] > kth[row])
        tied = np.flatnonzero(scores[row] == kth[row])[: n - len(above)]
        part[row] = np.concatenate([above, tied])
    return part


class Recommender(BaseEstimator):
    """Base class: hyperparameters as keyword-only ``__init__`` arguments (stored as given,
    validated in ``fit``); learned state in attributes ending with ``_``."""

    #: Name used in reasons, reports and the hybrid's feature names.
    source_name: str = "base"

    #: Learned attributes a model directory stores (arrays or sparse matrices); everything
    #: else is derived deterministically from the dataset and rebuilt on load.
    _persist: tuple[str, ...] = ()

    # ------------------------------------------------------------------ hooks
    def _fit(self, data: TrainingData) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score(self, users: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Scores of every item for each user index: float32 array (len(users), n_items).

        ``-inf`` (or NaN) means "cannot recommend"; any finite score ranks.
        """
        raise NotImplementedError

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``_score`` of ``(users[r], items[r, c])`` only (``-1`` pads, non-finite scores:
        ``-inf``). The default scores every item; sources override it with a direct path."""
        scores = np.asarray(self._score(np.asarray(users, dtype=np.int64)), dtype=np.float32)
        out = np.take_along_axis(scores, np.maximum(items, 0), axis=1)
        return np.where((items >= 0) & np.isfinite(out), out, -np.inf).astype(np.float32)

    def _explain(self, user: int, items: np.ndarray) -> list[list[Reason]]:
        """Reasons for each item recommended to one user (index space)."""
        return [[] for _ in items]

    def _rebuild(self, data: TrainingData) -> None:
        """Recompute derived state after loading the :attr:`_persist` attributes.

        The default refits, which suits sources whose whole state is a deterministic
        function of the data (text indexes, counts, tie strengths)."""
        self._fit(data)

    # ----------------------------------------------------------------- public
    def fit(self, data, *, until=None) -> Recommender:
        """Learn from a :class:`~recommender.dataset.Dataset` (or :class:`TrainingData`)
        as seen before ``until``. Returns ``self``."""
        data = as_training_data(data, until)
        self.data_ = data
        self.users_ = data.users
        self.items_ = data.items
        self._fit(data)
        return self

    def save(self, path, *, overwrite: bool = False):
        """Write a versioned model directory (:mod:`recommender.persistence`)."""
        from recommender.persistence import save_model

        return save_model(self, path, overwrite=overwrite)

    @classmethod
    def load(cls, path, dataset) -> Recommender:
        """Load a model directory saved by :meth:`save`, against its dataset."""
        from recommender.persistence import ModelFormatError, load_model

        model = load_model(path, dataset)
        if not isinstance(model, cls):
            raise ModelFormatError(f"{path} holds a {type(model).__name__}, not a {cls.__name__}")
        return model

    def score(self, user_ids) -> np.ndarray:
        """Scores of every product for each raw user id (rows follow ``user_ids``)."""
        check_is_fitted(self, "data_")
        return self._score(self.users_.lookup(user_ids))

    def candidates(
        self, users: np.ndarray, n: int, *, exclude=None, blocked: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` item indices and their scores per user index (``-1`` pads).

        ``exclude`` is a sparse (len(users), n_items) mask of per-user exclusions (e.g. past
        purchases); ``blocked`` a boolean mask of items excluded for everyone (filters).
        """
        check_is_fitted(self, "data_")
        users = np.asarray(users, dtype=np.int64)
        items = np.full((len(users), n), -1, dtype=np.int64)
        scores = np.full((len(users), n), -np.inf, dtype=np.float32)
        step = max(1, BATCH_CELLS // max(self.data_.n_items, 1))
        for start in range(0, len(users), step):
            block = users[start : start + step]
            s = np.array(self._score(block), dtype=np.float32)
            s[~np.isfinite(s)] = -np.inf
            if blocked is not None:
                s[:, blocked] = -np.inf
            if exclude is not None:
                ex = sp.csr_array(exclude[start : start + len(block)])
                s[np.repeat(np.arange(len(block)), np.diff(ex.indptr)), ex.indices] = -np.inf
            top, top_scores = top_n(s, n)
            items[start : start + len(block), : top.shape[1]] = top
            scores[start : start + len(block), : top.shape[1]] = top_scores
        return items, scores

    def recommend(
        self,
        user_ids,
        k: int = 10,
        *,
        exclude_purchased: bool = True,
        exclude_items=None,
        categories: list[str] | None = None,
        min_price: float | None = None,
        max_price: float | None = None,
        explain: bool = True,
    ) -> pd.DataFrame:
        """Top-``k`` products for each user: columns user_id, rank, product_id, score,
        source, reasons (list of dicts). Unknown user ids raise ``UnknownIdError``."""
        check_is_fitted(self, "data_")
        if k < 1:
            raise ValueError(f"k == {k}, must be >= 1.")
        users = self.users_.lookup(np.atleast_1d(user_ids))
        blocked = self._blocked_items(exclude_items, categories, min_price, max_price)
        exclude = self.data_.rows("purchased", users) if exclude_purchased else None
        items, scores, found = self._lists(users, k, exclude=exclude, blocked=blocked)
        valid = items >= 0
        row_of, _ = np.nonzero(valid)
        if explain:
            lists = self._explain_lists(users, items, found)
            reasons = [[r.to_dict() for r in why] for per_user in lists for why in per_user]
        else:
            reasons = [[] for _ in row_of]
        # Built column by column, typed (even when empty, so results concatenate cleanly).
        return pd.DataFrame(
            {
                "user_id": self.users_.raw(users[row_of]).astype(np.int64),
                "rank": (np.cumsum(valid, axis=1)[valid]).astype(np.int64),
                "product_id": self.items_.raw(items[valid]).astype(np.int64),
                "score": scores[valid].astype(np.float64),
                "source": pd.Series([self.source_name] * len(row_of), dtype=object),
                "reasons": pd.Series(reasons, dtype=object),
            }
        )

    def _lists(self, users, n, *, exclude=None, blocked=None):
        """:meth:`candidates` plus whatever explaining the lists needs (passed to
        :meth:`_explain_lists`; nothing by default)."""
        items, scores = self.candidates(users, n, exclude=exclude, blocked=blocked)
        return items, scores, None

    def _explain_lists(self, users, items, found) -> list[list[list[Reason]]]:
        """Reasons of each user's list (``-1`` pads dropped), from :meth:`_lists`' ``found``."""
        return [self._explain(int(u), items[row][items[row] >= 0]) for row, u in enumerate(users)]

    # ---------------------------------------------------------------- helpers
    def _blocked_items(self, exclude_items, categories, lo, hi) -> np.ndarray | None:
        """Items no one may get under these filters (None when nothing is filtered)."""
        data = self.data_
        blocked = np.zeros(data.n_items, dtype=bool)
        products = data.dataset.products
        if exclude_items is not None and len(exclude_items):
            idx = self.items_.lookup(np.asarray(exclude_items), missing="ignore")
            blocked[idx[idx >= 0]] = True
        if categories:
            paths = products["category_path"].astype(str).to_numpy().astype(str)
            ok = np.zeros(data.n_items, dtype=bool)
            for c in categories:
                ok |= (paths == c) | np.char.startswith(paths, c.rstrip("/") + "/")
            blocked |= ~ok
        if lo is not None or hi is not None:
            price = products["price"].to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                if lo is not None:
                    blocked |= ~(price >= lo)
                if hi is not None:
                    blocked |= ~(price <= hi)
        return blocked if blocked.any() else None
