"""Item-kNN: products co-engaged with what the person engaged with (a baseline, and the
co-engagement half of "similar products").

Neighbourhoods come from ``implicit``'s C++ item-item recommenders (cosine or BM25 over
the event-weighted user-item matrix, ``K`` neighbours per item).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender
from threadpoolctl import threadpool_limits

from recommender.base import Reason, Recommender
from recommender.data import TrainingData


class ItemKNNSource(Recommender):
    """Score = the person's event weights times the item-item similarity.

    Parameters
    ----------
    neighbours : int, default=100
        Neighbours kept per item.
    similarity : {"cosine", "bm25"}, default="cosine"
    damping : bool, default=True
        Use ``log1p`` of the event weights, so one heavily viewed item does not drown the
        rest.
    """

    source_name = "item_knn"

    def __init__(
        self, *, neighbours: int = 100, similarity: str = "cosine", damping: bool = True
    ) -> None:
        self.neighbours = neighbours
        self.similarity = similarity
        self.damping = damping

    def _fit(self, data: TrainingData) -> None:
        if self.neighbours < 1:
            raise ValueError(f"neighbours == {self.neighbours}, must be >= 1.")
        kinds = {"cosine": CosineRecommender, "bm25": BM25Recommender}
        if self.similarity not in kinds:
            raise ValueError(f"similarity == {self.similarity!r}, must be one of {sorted(kinds)}.")
        self.weights_ = self._weights(data.user_items)
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="OpenBLAS is configured")
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model = kinds[self.similarity](K=self.neighbours, num_threads=0)
            model.fit(sp.csr_matrix(self.weights_), show_progress=False)
        similarity = sp.csr_array(model.similarity, dtype=np.float32)
        similarity.setdiag(0)
        similarity.eliminate_zeros()
        self.similarity_ = similarity

    def _weights(self, user_items: sp.csr_array) -> sp.csr_array:
        weights = sp.csr_array(user_items, dtype=np.float32, copy=True)
        if self.damping:
            weights.data = np.log1p(weights.data)
        return weights

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = (self.weights_[users] @ self.similarity_).toarray().astype(np.float32)
        scores[scores <= 0] = -np.inf  # no co-engagement evidence
        return scores

    def _explain(self, user: int, items: np.ndarray) -> list[list[Reason]]:
        row = self.weights_[[user]]
        reasons = []
        for item in items:
            contrib = row.data * self.similarity_[row.indices][:, [item]].toarray().ravel()
            best = int(row.indices[np.argmax(contrib)])
            title = str(self.data_.dataset.products["title"].iloc[best])[:40]
            reasons.append(
                [
                    Reason(
                        "similar_to_purchased",
                        f"People who liked {title} also liked this",
                        {"product_id": int(self.items_.raw(best))},
                        self.source_name,
                    )
                ]
            )
        return reasons

    def similar_items(self, item: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` most co-engaged products of one product (index space)."""
        row = self.similarity_[[item]]
        order = np.argsort(-row.data, kind="stable")[:n]
        return row.indices[order], row.data[order]
