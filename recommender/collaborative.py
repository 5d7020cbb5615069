"""Collaborative filtering: implicit-feedback matrix factorisation with ``implicit``'s ALS.

Events are weighted by type (:data:`recommender.data.EVENT_WEIGHTS`) into a confidence
matrix ``C = 1 + alpha * log1p(weight)`` (Hu, Koren & Volinsky 2008, with the log damping
they recommend for heavy counts). It is also the main baseline.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from recommender.base import Reason, Recommender
from recommender.data import TrainingData

BM25_K1 = 100.0
BM25_B = 0.8
"""BM25 weighting of the interactions (``implicit``'s ``bm25_weight``)."""


class ALSSource(Recommender):
    """Implicit ALS over the event-weighted user-item matrix.

    Parameters
    ----------
    factors : int, default=128
        Latent dimensions.
    regularization : float, default=30.0
        L2 penalty on the factors (high, as BM25 confidences are large).
    alpha : float, default=1.0
        Confidence scale of observed pairs.
    iterations : int, default=30
        ALS sweeps.
    weighting : {"log", "bm25"}, default="bm25"
        Confidence from the event weights: ``alpha * log1p(weight)``, or BM25 over the
        binarised matrix (``implicit``'s ``bm25_weight(K1=100, B=0.8)`` times ``alpha``),
        which wins on LastFM (docs/lastfm_research.md) and on the synthetic data alike.
    warm_iterations : int, default=8
        ALS sweeps of :meth:`refit`, which starts from an earlier fit's factors.
    random_state : int, default=0
        Seed of the factor initialisation.
    num_threads : int, default=0
        Threads for ``implicit`` (0 = all cores).
    """

    source_name = "collaborative"
    _persist = ("user_factors_", "item_factors_")

    def __init__(
        self,
        *,
        factors: int = 128,
        regularization: float = 30.0,
        alpha: float = 1.0,
        iterations: int = 30,
        weighting: str = "bm25",
        warm_iterations: int = 8,
        random_state: int = 0,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.weighting = weighting
        self.warm_iterations = warm_iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def _fit(self, data: TrainingData) -> None:
        if self.factors < 1:
            raise ValueError(f"factors == {self.factors}, must be >= 1.")
        if self.iterations < 1:
            raise ValueError(f"iterations == {self.iterations}, must be >= 1.")
        if self.warm_iterations < 1:
            raise ValueError(f"warm_iterations == {self.warm_iterations}, must be >= 1.")
        if self.regularization < 0:
            raise ValueError(f"regularization == {self.regularization}, must be >= 0.")
        if not self.alpha > 0:
            raise ValueError(f"alpha == {self.alpha}, must be > 0.")
        if self.weighting not in ("log", "bm25"):
            raise ValueError(f"weighting == {self.weighting!r}, must be 'log' or 'bm25'.")
        self.confidence_ = self._confidence(data.user_items)
        init, self._init_factors = getattr(self, "_init_factors", None), None
        warm = init is not None and init[0].shape == (data.n_users, self.factors)
        warm = warm and init[1].shape == (data.n_items, self.factors)
        model = self._new_model(self.warm_iterations if warm else self.iterations)
        if warm:
            model.user_factors, model.item_factors = init[0].copy(), init[1].copy()
        with threadpool_limits(1, "blas"):
            model.fit(sp.csr_matrix(self.confidence_), show_progress=False)
        self.model_ = model
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        norms = np.linalg.norm(self.item_factors_, axis=1)
        self.item_unit_ = self.item_factors_ / np.maximum(norms, 1e-9)[:, None]

    def _rebuild(self, data: TrainingData) -> None:
        """Restore the ``implicit`` model around the stored factors (no refit)."""
        self.confidence_ = self._confidence(data.user_items)
        model = self._new_model()
        self.user_factors_ = np.ascontiguousarray(self.user_factors_, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(self.item_factors_, dtype=np.float32)
        model.user_factors, model.item_factors = self.user_factors_, self.item_factors_
        self.model_ = model
        norms = np.linalg.norm(self.item_factors_, axis=1)
        self.item_unit_ = self.item_factors_ / np.maximum(norms, 1e-9)[:, None]

    def warm_start(self) -> ALSSource:
        """An unfitted copy whose next ``fit`` starts from these factors (a warm start).

        The hybrid fits its sources twice — on the data before the ranker's window, then on
        everything — and the second ALS fit, starting close to its optimum, needs only
        ``warm_iterations`` sweeps instead of ``iterations``. The copy holds the factors
        only, not the data of this fit.
        """
        check_is_fitted(self, "user_factors_")
        new = clone(self)
        new._init_factors = (self.user_factors_, self.item_factors_)
        return new

    def _shares(self) -> np.ndarray:
        """``share_purchases`` of every person, in index order (cached)."""
        shares = getattr(self, "_shares_cache", None)
        if shares is None or len(shares) != self.data_.n_users:
            users = self.data_.dataset.users.set_index("user_id")["share_purchases"]
            shares = users.reindex(self.data_.users.ids).fillna(True).to_numpy(dtype=bool)
            self._shares_cache = shares
        return shares

    def refit(self, data: TrainingData) -> ALSSource:
        """A new source fitted on ``data`` from these factors (see :meth:`warm_start`)."""
        return self.warm_start().fit(data)

    def _new_model(self, iterations: int | None = None) -> AlternatingLeastSquares:
        # implicit parallelises over users itself (BLAS threads are limited around fit);
        # its constructor warns about the process-wide BLAS setting regardless.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="OpenBLAS is configured")
            return AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,  # the confidence matrix already carries alpha
                iterations=self.iterations if iterations is None else iterations,
                random_state=self.random_state,
                num_threads=self.num_threads,
            )

    def _confidence(self, user_items: sp.csr_array) -> sp.csr_array:
        """Confidence of the whole user × item matrix (fit, load). BM25 takes statistics
        from the whole matrix (each item's inverse document frequency, the mean row
        length): they are kept here for the rows a live event re-weighs."""
        if self.weighting == "bm25":
            binary = sp.csr_array(user_items, dtype=np.float32, copy=True)
            binary.sum_duplicates()
            n_users, n_items = binary.shape
            idf = np.log(float(n_users)) - np.log1p(np.bincount(binary.indices, minlength=n_items))
            lengths = np.diff(binary.indptr).astype(np.float32)
            mean_length = lengths.mean() if lengths.sum() > 0 else np.float32(1.0)
            self._bm25_stats = (idf, mean_length)
        return self._row_confidence(user_items)

    def _row_confidence(self, rows: sp.csr_array) -> sp.csr_array:
        """Confidence of some rows (the whole matrix, or a person's row after a live
        event). BM25 weighs them with the statistics :meth:`_confidence` took from the whole
        matrix — a lone row's own would give every item the idf ``log(1) - log(2)`` < 0 —
        in the arithmetic of ``implicit``'s ``bm25_weight`` (the same float32 values)."""
        conf = sp.csr_array(rows, dtype=np.float32, copy=True)
        if self.weighting != "bm25":
            conf.data = self.alpha * np.log1p(conf.data)
            return conf
        idf, mean_length = self._bm25_stats
        conf.sum_duplicates()
        lengths = np.diff(conf.indptr).astype(np.float32)
        norm = (1.0 - BM25_B) + BM25_B * lengths / mean_length
        row = np.repeat(np.arange(conf.shape[0]), np.diff(conf.indptr))
        ones = np.ones(conf.nnz, dtype=np.float32)  # BM25 here counts presence, not weight
        weight = ones * (BM25_K1 + 1.0) / (BM25_K1 * norm[row] + ones) * idf[conf.indices]
        conf.data = weight.astype(np.float32)
        conf.data *= self.alpha
        return conf

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    def _score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``_score`` of ``(users[r], items[r, c])`` only (``-1`` pads score ``-inf``)."""
        safe = np.maximum(items, 0)
        rows = self.user_factors_[users]
        scores = np.empty(items.shape, dtype=np.float32)
        for r in range(len(rows)):  # a product per row: the gathered rows stay small
            scores[r] = self.item_factors_[safe[r]] @ rows[r]
        return np.where(items >= 0, scores, -np.inf).astype(np.float32)

    def candidates(self, users, n, *, exclude=None, blocked=None):
        """The base class's top-``n`` without scoring every item: items are scanned in
        blocks of decreasing factor norm, and a person's scan stops once no later item can
        reach their ``n``-th best score (``u · i <= |u| |i|``, Cauchy–Schwarz)."""
        check_is_fitted(self, "user_factors_")
        users = np.asarray(users, dtype=np.int64)
        return _pruned_top(self.user_factors_[users], self._by_norm(), n, exclude, blocked)

    def _by_norm(self) -> _NormIndex:
        """Item factors sorted by decreasing norm (rebuilt when the factors change)."""
        index = getattr(self, "_norm_index", None)
        if index is None or index.source is not self.item_factors_:
            index = _NormIndex.build(self.item_factors_)
            self._norm_index = index
        return index

    def _titles(self) -> np.ndarray:
        """Product titles by item index (read once: a pandas look-up per reason is slow)."""
        products = self.data_.dataset.products
        cached = getattr(self, "_title_cache", None)
        if cached is None or cached[0] is not products:
            cached = (products, products["title"].astype(object).astype(str).to_numpy())
            self._title_cache = cached
        return cached[1]

    def _explain(self, user: int, items: np.ndarray) -> list[list[Reason]]:
        history = self.data_.rows("user_items", [user])
        if not self._shares()[user]:
            # A person who keeps purchases private is never told "because you liked X": a
            # reason is shown to whoever reads the list, and it would name their history.
            history = sp.csr_array(history.shape, dtype=history.dtype)
        items = np.asarray(items, dtype=np.int64)
        past, strength = history.indices, np.log1p(history.data)
        if len(past) and len(items):
            # The strongest liked item (bought > carted > viewed) most similar to each
            # recommended one, itself left out: one product for every item of the list.
            sims = self.item_unit_[past] @ self.item_unit_[items].T
            weighted = sims * strength[:, None]
            weighted[past[:, None] == items[None, :]] = -np.inf
            best_rows = np.argmax(weighted, axis=0)
            found = np.isfinite(weighted[best_rows, np.arange(len(items))])
        else:
            found = np.zeros(len(items), dtype=bool)
        reasons = []
        for col in range(len(items)):
            if found[col]:
                row = int(best_rows[col])
                best = int(past[row])
                title = _short(self._titles()[best])
                reasons.append(
                    [
                        Reason(
                            "similar_to_purchased",
                            f"Because you liked {title}",
                            {
                                "product_id": int(self.items_.raw(best)),
                                "similarity": float(sims[row, col]),
                            },
                            self.source_name,
                        )
                    ]
                )
            else:
                reasons.append(
                    [
                        Reason(
                            "collaborative",
                            "People with similar taste liked this",
                            {},
                            self.source_name,
                        )
                    ]
                )
        return reasons

    def add_events(self, user_id: int, product_ids, weights, *, refresh: bool = True) -> None:
        """Fold a person's new events in: their factors are re-solved against the fixed
        item factors (``implicit``'s ``recalculate_user``), no refit. ``refresh=False``
        leaves the re-solve to a later :meth:`refresh_users` (many events, one solve)."""
        u = int(self.users_.lookup(user_id)[0])
        items = self.items_.lookup(np.atleast_1d(product_ids))
        self.data_.add_live("user_items", u, items, np.asarray(weights, dtype=np.float32))
        if refresh:
            self._resolve(np.array([u]))

    def refresh_users(self, user_ids) -> None:
        """Re-solve the factors of these people from their rows as they are now, in one
        batched solve: the same factors as a re-solve after each of their events."""
        self._resolve(np.unique(self.users_.lookup(np.atleast_1d(user_ids))))

    def _resolve(self, users: np.ndarray) -> None:
        if len(users) == 0:
            return
        conf = self._row_confidence(self.data_.rows("user_items", users))
        factors = self.model_.recalculate_user(users, sp.csr_matrix(conf))
        self.user_factors_[users] = np.asarray(factors, dtype=np.float32).reshape(len(users), -1)


@dataclass(frozen=True)
class _NormIndex:
    source: np.ndarray  # the item factors it was built from
    order: np.ndarray  # item indices by decreasing norm
    position: np.ndarray  # inverse of ``order``
    factors: np.ndarray  # ``source[order]``, contiguous
    norms: np.ndarray  # float64, decreasing

    @classmethod
    def build(cls, factors: np.ndarray) -> _NormIndex:
        norms = np.linalg.norm(factors.astype(np.float64), axis=1)
        order = np.argsort(-norms, kind="stable")
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        sorted_factors = np.ascontiguousarray(factors[order], dtype=np.float32)
        return cls(factors, order, position, sorted_factors, norms[order])


PRUNE_BLOCK = 8192
"""Items scored per step of the pruned top-n scan."""


def _pruned_top(user_factors, index: _NormIndex, n, exclude, blocked):
    """Exact top-``n`` of ``user_factors @ item_factors.T`` (masked like
    :meth:`Recommender.candidates`), scoring only the items that can still make a list.

    Each step scores one block of items (by decreasing norm) for the people still
    scanning, updates their ``n``-th best score ``t`` and keeps the entries ``>= t`` (a
    superset of the final lists, ties included); a person stops when the bound on every
    later item is below ``t`` (with a margin for rounding). The kept entries are then
    ordered like :func:`~recommender.base.top_n`: score, then item index.
    """
    m, n_items = len(user_factors), len(index.order)
    items = np.full((m, n), -1, dtype=np.int64)
    scores = np.full((m, n), -np.inf, dtype=np.float32)
    n = min(n, n_items)
    if m == 0 or n == 0:
        return items, scores
    user_norms = np.linalg.norm(user_factors.astype(np.float64), axis=1)
    ex_rows, ex_pos = _excluded_positions(exclude, index.position, m)
    blocked_sorted = None if blocked is None else np.asarray(blocked, bool)[index.order]
    best = np.full((m, n), -np.inf, dtype=np.float32)  # running n best values, unordered
    kept_rows, kept_pos, kept_scores = [], [], []
    # A zero factor (a person without events) scores every item exactly 0, so no bound
    # ever stops its scan and every item ties: its list is the first n items by index
    # that are not masked, read off directly (the scan took 30 ms on large).
    zero = user_norms == 0
    for r in np.flatnonzero(zero):
        allowed = np.ones(n_items, dtype=bool) if blocked is None else ~np.asarray(blocked, bool)
        allowed[index.order[ex_pos[ex_rows == r]]] = False
        first = np.flatnonzero(allowed)[:n]
        items[r, : len(first)] = first
        scores[r, : len(first)] = 0.0
    active = np.flatnonzero(~zero)
    if len(active) == 0:
        return items, scores
    for start in range(0, n_items, PRUNE_BLOCK):
        stop = min(start + PRUNE_BLOCK, n_items)
        block = user_factors[active] @ index.factors[start:stop].T
        if blocked_sorted is not None:
            block[:, blocked_sorted[start:stop]] = -np.inf
        lo, hi = np.searchsorted(ex_pos, [start, stop])
        if hi > lo:
            slot = np.full(m, -1)
            slot[active] = np.arange(len(active))
            r, c = slot[ex_rows[lo:hi]], ex_pos[lo:hi] - start
            block[r[r >= 0], c[r >= 0]] = -np.inf
        merged = np.concatenate([best[active], block], axis=1)
        best[active] = -np.partition(-merged, n - 1, axis=1)[:, :n]
        threshold = best[active].min(axis=1)
        r, c = np.nonzero((block >= threshold[:, None]) & (block > -np.inf))
        kept_rows.append(active[r])
        kept_pos.append(start + c)
        kept_scores.append(block[r, c])
        if stop < n_items:
            bound = user_norms[active] * index.norms[stop]
            active = active[~(bound * (1 + 1e-4) + 1e-6 < threshold)]
        if len(active) == 0:
            break
    rows = np.concatenate(kept_rows)
    item = index.order[np.concatenate(kept_pos)]
    value = np.concatenate(kept_scores)
    order = np.lexsort((item, -value, rows))
    rows, item, value = rows[order], item[order], value[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
    take = rank < n
    items[rows[take], rank[take]] = item[take]
    scores[rows[take], rank[take]] = value[take]
    return items, scores


def _excluded_positions(exclude, position: np.ndarray, m: int):
    """(row, position in norm order) of every excluded pair, sorted by position."""
    if exclude is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ex = sp.csr_array(exclude)
    rows = np.repeat(np.arange(m), np.diff(ex.indptr))
    pos = position[ex.indices]
    order = np.argsort(pos, kind="stable")
    return rows[order], pos[order]


def _short(title: str) -> str:
    return title if len(title) <= 40 else title[:39] + "…"
