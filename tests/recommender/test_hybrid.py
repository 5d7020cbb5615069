"""The hybrid: the contract, the post-changes-recommendations journey, live updates,
persistence, privacy over every user, and a quality guard."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from recommender.category import CategorySource
from recommender.collaborative import ALSSource
from recommender.content import ContentSource
from recommender.dataset import Dataset
from recommender.evaluation import evaluate, temporal_split
from recommender.hybrid import HybridRecommender
from recommender.persistence import ModelFormatError
from recommender.popularity import PopularitySource
from recommender.social import SocialSource
from tests.recommender.contract import CUTOFF, RecommenderContract

LOSE_WEIGHT = "trying to lose weight before summer"


def small_hybrid(**params) -> HybridRecommender:
    sources = [
        ("content", ContentSource()),
        ("social", SocialSource()),
        ("collaborative", ALSSource(factors=16, iterations=5, num_threads=1)),
        ("category", CategorySource()),
        ("popularity", PopularitySource()),
    ]
    ranker = HistGradientBoostingClassifier(max_iter=30, early_stopping=False, random_state=0)
    return HybridRecommender(sources=sources, ranker=ranker, max_train_users=200, **params)


@pytest.fixture(scope="module")
def hybrid(tiny_dataset: Dataset) -> HybridRecommender:
    return small_hybrid().fit(tiny_dataset, until=CUTOFF)


class TestHybridContract(RecommenderContract):
    def make_model(self) -> HybridRecommender:
        return small_hybrid()


def test_params_of_sources_are_nested() -> None:
    params = small_hybrid().get_params()
    assert params["content__half_life_days"] == 14.0
    model = small_hybrid().set_params(collaborative__factors=8)
    assert dict(model.sources)["collaborative"].factors == 8


def test_weight_loss_post_changes_recommendations(hybrid: HybridRecommender, tiny_dataset) -> None:
    products = tiny_dataset.products.set_index("product_id")["category_path"]
    user = 1
    before = hybrid.recommend([user], k=10)
    hybrid.add_post(user, LOSE_WEIGHT, hashtags=["减肥"], post_id=10**9)
    after = hybrid.recommend([user], k=10)
    weight_loss = after["product_id"].map(products).str.startswith("Health/Weight loss")
    assert weight_loss.sum() >= 1
    assert set(after["product_id"]) != set(before["product_id"])
    first = after[weight_loss].iloc[0]
    types = [r["type"] for r in first["reasons"]]
    assert "post_match" in types


def test_live_purchase_by_a_followee_reaches_the_follower(tiny_dataset) -> None:
    model = small_hybrid().fit(tiny_dataset, until=CUTOFF)
    users = tiny_dataset.users
    sharing = set(users.loc[users["share_purchases"], "user_id"])
    follows = tiny_dataset.follows
    edge = follows[follows["followee_id"].isin(sharing)].iloc[0]
    follower, followee = int(edge["follower_id"]), int(edge["followee_id"])
    product = int(tiny_dataset.products["product_id"].iloc[-1])
    model.add_event(followee, product, "purchase")
    social = model._source("social")
    recs = social.recommend([follower], k=50)
    assert product in set(recs["product_id"])
    model.add_event(follower, product, "purchase")
    assert product not in set(model.recommend([follower], k=50)["product_id"])


def test_save_load_round_trip(hybrid: HybridRecommender, tiny_dataset, tmp_path) -> None:
    model = small_hybrid().fit(tiny_dataset, until=CUTOFF)
    users = tiny_dataset.users["user_id"].to_numpy()[:10]
    before = model.recommend(users, k=10)
    model.save(tmp_path / "model")
    loaded = HybridRecommender.load(tmp_path / "model", tiny_dataset)
    pd.testing.assert_frame_equal(before, loaded.recommend(users, k=10))


def test_load_refuses_another_format_version(hybrid, tiny_dataset, tmp_path) -> None:
    path = hybrid.save(tmp_path / "model")
    meta = json.loads((path / "model.json").read_text())
    meta["format_version"] = 99
    (path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFormatError, match="format version 99"):
        HybridRecommender.load(path, tiny_dataset)


def test_load_refuses_another_dataset(hybrid, tmp_path) -> None:
    from synthetic_data import generate, make_config

    path = hybrid.save(tmp_path / "model")
    other = generate(make_config("tiny", seed=5))
    other.save(tmp_path / "other")
    with pytest.raises(ModelFormatError, match="trained on dataset"):
        HybridRecommender.load(path, Dataset.load(tmp_path / "other"))


def test_no_reason_names_a_private_buyer(hybrid: HybridRecommender, tiny_dataset) -> None:
    users = tiny_dataset.users
    private = users.loc[~users["share_purchases"], ["user_id", "handle"]]
    private_ids = set(private["user_id"].astype(int))
    private_handles = set(private["handle"].astype(str))
    recs = hybrid.recommend(users["user_id"].to_numpy(), k=10)
    for reasons in recs["reasons"]:
        for reason in reasons:
            if reason["type"] not in ("friends_purchased", "friends_engaged"):
                continue
            assert not private_ids & set(reason["evidence"].get("user_ids", []))
            named = set(re.findall(r"@([^\s,:]+)", reason["text"]))
            assert not private_handles & named


def test_similar_products_and_groups(hybrid: HybridRecommender, tiny_dataset) -> None:
    product = int(tiny_dataset.products["product_id"].iloc[0])
    similar = hybrid.similar_products(product, k=5)
    assert product not in set(similar["product_id"])
    assert len(similar) == 5 and similar["score"].is_monotonic_decreasing
    members = tiny_dataset.users["user_id"].to_numpy()[:3]
    avg = hybrid.recommend_group(members, k=5, strategy="average")
    misery = hybrid.recommend_group(members, k=5, strategy="least_misery")
    assert len(avg) == 5
    assert (misery["score"] > 0).all()
    with pytest.raises(ValueError, match="strategy == 'max'"):
        hybrid.recommend_group(members, strategy="max")


def test_quality_guard_hybrid_beats_popularity(tiny_dataset) -> None:
    split = temporal_split(tiny_dataset, test_days=5)
    results = evaluate(split, {"popularity": PopularitySource, "hybrid": small_hybrid})
    ndcg = {r.name: r.metrics["ndcg@10"] for r in results}
    assert ndcg["hybrid"] > 1.5 * ndcg["popularity"]
    assert np.isfinite(ndcg["hybrid"])
