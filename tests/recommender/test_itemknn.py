"""Item-kNN baseline: the contract and similar products."""

from __future__ import annotations

import pytest

from recommender.itemknn import ItemKNNSource
from tests.recommender.contract import CUTOFF, RecommenderContract


class TestItemKNNContract(RecommenderContract):
    def make_model(self) -> ItemKNNSource:
        return ItemKNNSource(neighbours=50)


def test_similar_items_excludes_the_item_and_is_sorted(tiny_dataset) -> None:
    model = ItemKNNSource(neighbours=20).fit(tiny_dataset, until=CUTOFF)
    items, scores = model.similar_items(0, n=5)
    assert 0 not in items
    assert list(scores) == sorted(scores, reverse=True)


def test_rejects_unknown_similarity(tiny_dataset) -> None:
    with pytest.raises(ValueError, match="similarity == 'jaccard', must be one of"):
        ItemKNNSource(similarity="jaccard").fit(tiny_dataset, until=CUTOFF)
