"""The contract every recommender satisfies, run against each source and the hybrid.

A test module subclasses :class:`RecommenderContract` and defines ``make_model`` (an
unfitted model with fixed seeds); the tests come with the class, as in ``implicit``'s
``RecommenderBaseTestMixin``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from recommender.base import Recommender
from recommender.dataset import Dataset
from recommender.errors import UnknownIdError

CUTOFF = "2026-03-21"
"""Cut-off inside the tiny preset's 30 days (2026-03-01 .. 2026-03-30)."""


@pytest.fixture(scope="session")
def tiny_dataset() -> Dataset:
    from synthetic_data import generate, make_config

    return generate(make_config("tiny", seed=0))


_FITTED: dict[type, Recommender] = {}


class RecommenderContract:
    """Subclass and implement :meth:`make_model`."""

    def make_model(self) -> Recommender:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def fitted(self, tiny_dataset: Dataset) -> Recommender:
        """One fitted model per contract class, shared by its tests (do not mutate it)."""
        key = type(self)
        if key not in _FITTED:
            _FITTED[key] = self.make_model().fit(tiny_dataset, until=CUTOFF)
        return _FITTED[key]

    @pytest.fixture
    def some_users(self, tiny_dataset: Dataset) -> np.ndarray:
        return tiny_dataset.users["user_id"].to_numpy()[:40]

    def test_fit_returns_self(self, tiny_dataset: Dataset) -> None:
        model = self.make_model()
        assert model.fit(tiny_dataset, until=CUTOFF) is model

    def test_not_fitted_raises(self) -> None:
        with pytest.raises(NotFittedError):
            self.make_model().recommend([0], k=5)

    def test_params_round_trip(self) -> None:
        def plain(params: dict) -> dict:
            # Sub-estimators are cloned, not shared; compare their parameters instead.
            return {
                k: v
                for k, v in params.items()
                if not hasattr(v, "get_params") and not isinstance(v, list)
            }

        model = self.make_model()
        assert plain(clone(model).get_params()) == plain(model.get_params())

    def test_output_columns_sorted_unique_and_no_purchases(
        self, fitted: Recommender, some_users: np.ndarray
    ) -> None:
        recs = fitted.recommend(some_users, k=10)
        assert list(recs.columns[:4]) == ["user_id", "rank", "product_id", "score"]
        purchased = fitted.data_.purchased
        for user, group in recs.groupby("user_id"):
            assert group["rank"].tolist() == list(range(1, len(group) + 1))
            assert group["product_id"].is_unique
            assert (np.diff(group["score"].to_numpy()) <= 1e-6).all()
            u = fitted.users_.lookup(user)[0]
            bought = set(fitted.items_.raw(purchased[[u]].indices).tolist())
            assert not bought & set(group["product_id"].tolist())

    def test_every_item_has_a_reason(self, fitted: Recommender, some_users: np.ndarray) -> None:
        recs = fitted.recommend(some_users[:10], k=10)
        assert len(recs) > 0
        for reasons in recs["reasons"]:
            assert len(reasons) >= 1
            assert all(r["type"] and r["text"] for r in reasons)

    def test_batch_equals_one_by_one(self, fitted: Recommender, some_users: np.ndarray) -> None:
        batch = fitted.recommend(some_users[:8], k=10, explain=False)
        single = pd.concat(
            [fitted.recommend([u], k=10, explain=False) for u in some_users[:8]],
            ignore_index=True,
        )
        pd.testing.assert_frame_equal(
            batch.drop(columns="score"), single.drop(columns="score"), check_dtype=False
        )
        np.testing.assert_allclose(batch["score"], single["score"], rtol=1e-5, atol=1e-6)

    def test_unknown_user_raises(self, fitted: Recommender) -> None:
        with pytest.raises(UnknownIdError, match="unknown user id"):
            fitted.recommend([10**12], k=5)

    def test_same_seed_same_result(self, tiny_dataset: Dataset, some_users: np.ndarray) -> None:
        a = self.make_model().fit(tiny_dataset, until=CUTOFF).recommend(some_users[:10], k=10)
        b = self.make_model().fit(tiny_dataset, until=CUTOFF).recommend(some_users[:10], k=10)
        pd.testing.assert_frame_equal(a, b)

    def test_filters(self, fitted: Recommender, some_users: np.ndarray) -> None:
        products = fitted.data_.dataset.products.set_index("product_id")
        recs = fitted.recommend(some_users[:5], k=10, categories=["Beauty"], max_price=200.0)
        assert recs["product_id"].map(products["category_path"]).str.startswith("Beauty/").all()
        assert (recs["product_id"].map(products["price"]) <= 200.0).all()
        excluded = recs["product_id"].head(3).tolist()
        again = fitted.recommend(some_users[:5], k=10, exclude_items=excluded)
        assert not set(excluded) & set(again["product_id"])
