"""Popularity source: the contract, plus segment-aware cold start."""

from __future__ import annotations

import numpy as np

from recommender.popularity import PopularitySource
from tests.recommender.contract import CUTOFF, RecommenderContract


class TestPopularityContract(RecommenderContract):
    def make_model(self) -> PopularitySource:
        return PopularitySource(half_life_days=7.0, segment_weight=0.5)


def test_segment_trend_leads_for_its_segment(tiny_dataset) -> None:
    model = PopularitySource(segment_weight=1.0).fit(tiny_dataset, until=CUTOFF)
    users = tiny_dataset.users
    women = users.loc[users["gender"] == "female", "user_id"].to_numpy()[:1]
    recs = model.recommend(women, k=3)
    assert recs["reasons"].map(lambda r: r[0]["type"]).eq("trending_in_segment").all()
    assert "women" in recs["reasons"].iloc[0][0]["text"]


def test_rejects_bad_half_life(tiny_dataset) -> None:
    import pytest

    with pytest.raises(ValueError, match=r"half_life_days == 0, must be > 0"):
        PopularitySource(half_life_days=0).fit(tiny_dataset, until=CUTOFF)


def test_scores_decay_with_age(tiny_dataset) -> None:
    fast = PopularitySource(half_life_days=0.5, segment_weight=0.0).fit(tiny_dataset, until=CUTOFF)
    slow = PopularitySource(half_life_days=1e6, segment_weight=0.0).fit(tiny_dataset, until=CUTOFF)
    assert not np.allclose(fast.overall_, slow.overall_)
