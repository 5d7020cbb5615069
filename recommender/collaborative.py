"""Collaborative filtering: implicit-feedback matrix factorisation with ``implicit``'s ALS.

Events are weighted by type (:data:`recommender.data.EVENT_WEIGHTS`) into a confidence
matrix ``C = 1 + alpha * log1p(weight)`` (Hu, Koren & Volinsky 2008, with the log damping
they recommend for heavy counts). It is also the main baseline.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from recommender.base import Reason, Recommender
from recommender.data import TrainingData


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
        random_state: int = 0,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.weighting = weighting
        self.random_state = random_state
        self.num_threads = num_threads

    def _fit(self, data: TrainingData) -> None:
        if self.factors < 1:
            raise ValueError(f"factors == {self.factors}, must be >= 1.")
        if self.iterations < 1:
            raise ValueError(f"iterations == {self.iterations}, must be >= 1.")
        if self.regularization < 0:
            raise ValueError(f"regularization == {self.regularization}, must be >= 0.")
        if not self.alpha > 0:
            raise ValueError(f"alpha == {self.alpha}, must be > 0.")
        if self.weighting not in ("log", "bm25"):
            raise ValueError(f"weighting == {self.weighting!r}, must be 'log' or 'bm25'.")
        self.confidence_ = self._confidence(data.user_items)
        model = self._new_model()
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

    def _new_model(self) -> AlternatingLeastSquares:
        # implicit parallelises over users itself (BLAS threads are limited around fit);
        # its constructor warns about the process-wide BLAS setting regardless.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="OpenBLAS is configured")
            return AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,  # the confidence matrix already carries alpha
                iterations=self.iterations,
                random_state=self.random_state,
                num_threads=self.num_threads,
            )

    def _confidence(self, user_items: sp.csr_array) -> sp.csr_array:
        conf = sp.csr_array(user_items, dtype=np.float32, copy=True)
        if self.weighting == "bm25":
            from implicit.nearest_neighbours import bm25_weight

            conf.data[:] = 1.0
            weighted = bm25_weight(sp.coo_matrix(conf), K1=100, B=0.8).tocsr()
            conf = sp.csr_array(weighted, dtype=np.float32)
            conf.data *= self.alpha
            return conf
        conf.data = self.alpha * np.log1p(conf.data)
        return conf

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    def _explain(self, user: int, items: np.ndarray) -> list[list[Reason]]:
        history = self.data_.user_items[[user]]
        reasons = []
        for item in items:
            # The strongest liked item (bought > carted > viewed) most similar to this one.
            keep = history.indices != item
            past, strength = history.indices[keep], np.log1p(history.data[keep])
            if len(past):
                sims = self.item_unit_[past] @ self.item_unit_[item]
                best = int(past[np.argmax(sims * strength)])
                raw = int(self.items_.raw(best))
                title = _title(self.data_, best)
                reasons.append(
                    [
                        Reason(
                            "similar_to_purchased",
                            f"Because you liked {title}",
                            {"product_id": raw, "similarity": float(sims[past == best][0])},
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

    def add_events(self, user_id: int, product_ids, weights) -> None:
        """Fold a person's new events in: their factors are re-solved against the fixed
        item factors (``implicit``'s ``recalculate_user``), no refit."""
        u = int(self.users_.lookup(user_id)[0])
        items = self.items_.lookup(np.atleast_1d(product_ids))
        row = sp.csr_array(
            (np.asarray(weights, dtype=np.float32), (np.zeros(len(items), int), items)),
            shape=(1, self.data_.n_items),
        )
        history = self.data_.user_items[[u]] + row
        full_row = sp.csr_array(
            (row.data, (np.full(len(row.data), u), row.indices)), shape=self.data_.user_items.shape
        )
        self.data_.user_items = sp.csr_array(self.data_.user_items + full_row)
        conf = self._confidence(sp.csr_array(history))
        factors = self.model_.recalculate_user(u, sp.csr_matrix(conf))
        self.user_factors_[u] = np.asarray(factors, dtype=np.float32).ravel()


def _title(data: TrainingData, item: int) -> str:
    title = str(data.dataset.products["title"].iloc[item])
    return title if len(title) <= 40 else title[:39] + "…"
