"""Live additions to the training matrices (:meth:`TrainingData.add_live`): rows read
through :meth:`TrainingData.rows` see them at once, the matrix itself is rebuilt only when
they are folded in, and folding changes no value."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import data as data_module
from recommender.data import TrainingData
from recommender.dataset import Dataset
from recommender.hybrid import HybridRecommender
from tests.recommender.contract import CUTOFF


@pytest.fixture
def data(tiny_dataset: Dataset) -> TrainingData:
    return TrainingData.from_dataset(tiny_dataset, until=CUTOFF)


def test_rows_see_live_additions_without_rebuilding_the_matrix(data: TrainingData) -> None:
    before = data.user_items
    expected = data.user_items.toarray()
    users = np.array([3, 0, 3, 7])
    data.add_live("user_items", 3, [5, 9], [2.0, 1.0])
    data.add_live("user_items", 3, [5], [0.5])
    data.add_live("user_items", 7, [1], [4.0])
    expected[3, 5] += 2.5
    expected[3, 9] += 1.0
    expected[7, 1] += 4.0
    assert data.user_items is before  # below the fold threshold: no O(nnz) rebuild
    np.testing.assert_allclose(data.rows("user_items", users).toarray(), expected[users])
    # Another matrix is untouched by these additions.
    np.testing.assert_array_equal(
        data.rows("purchased", users).toarray(), data.purchased[users].toarray()
    )


def test_folding_keeps_every_value(data: TrainingData, monkeypatch) -> None:
    monkeypatch.setattr(data_module, "LIVE_FOLD_MIN", 3)
    monkeypatch.setattr(data_module, "LIVE_FOLD_SHARE", 0.0)
    expected = data.purchased.toarray()
    before = data.purchased
    for user, item in [(1, 2), (1, 3), (2, 2)]:
        data.add_live("purchased", user, [item], [1.0])
        expected[user, item] += 1.0
    assert data.purchased is not before  # the third addition folded them in
    assert data.live_added.get("purchased", {}) == {}
    np.testing.assert_allclose(data.purchased.toarray(), expected)
    np.testing.assert_allclose(data.rows("purchased", [1, 2]).toarray(), expected[[1, 2]])


def test_a_live_purchase_is_excluded_from_the_next_list(tiny_dataset: Dataset) -> None:
    model = HybridRecommender(ranker="none").fit(tiny_dataset, until=CUTOFF)
    user = int(tiny_dataset.users["user_id"].iloc[0])
    first = int(model.recommend([user], k=5, explain=False)["product_id"].iloc[0])
    model.add_event(user, first, "purchase")
    after = model.recommend([user], k=5, explain=False)["product_id"].tolist()
    assert first not in after
