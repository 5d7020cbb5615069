"""Category-affinity source: the contract and its defining behaviour."""

from __future__ import annotations

import pytest

from recommender.category import CategorySource
from tests.recommender.contract import CUTOFF, RecommenderContract


class TestCategoryContract(RecommenderContract):
    def make_model(self) -> CategorySource:
        return CategorySource()


def test_recommends_only_from_categories_the_person_engages_with(tiny_dataset) -> None:
    model = CategorySource().fit(tiny_dataset, until=CUTOFF)
    user = 0
    engaged = set(model.categories_[model.affinity_[[user]].indices])
    recs = model.recommend([user], k=10)
    products = tiny_dataset.products.set_index("product_id")
    assert set(recs["product_id"].map(products["category_path"])) <= engaged
    reason = recs["reasons"].iloc[0][0]
    assert reason["type"] == "popular_in_your_category"
    assert reason["evidence"]["category_path"] in engaged


def test_rejects_bad_half_life(tiny_dataset) -> None:
    with pytest.raises(ValueError, match=r"half_life_days == -1, must be > 0\."):
        CategorySource(half_life_days=-1).fit(tiny_dataset, until=CUTOFF)
