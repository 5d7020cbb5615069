"""Content source: the contract, planted posts in English and Chinese, live posts, decay."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recommender.content import ContentSource
from recommender.dataset import Dataset
from recommender.errors import UnknownIdError
from recommender.text import analyze, readable_words, tfidf_from_arrays
from tests.recommender.contract import CUTOFF, RecommenderContract

LOSE_WEIGHT = "trying to lose weight before summer #减肥#"
LOSE_WEIGHT_ZH = "夏天之前一定要瘦下来 #减肥#"
WEIGHT_LOSS = "Health/Weight loss/"
NOW = pd.Timestamp(CUTOFF, tz="UTC")


class TestContentContract(RecommenderContract):
    def make_model(self) -> ContentSource:
        return ContentSource(half_life_days=14.0, profile_posts=50)

    @pytest.fixture
    def some_users(self, fitted: ContentSource) -> np.ndarray:
        # People whose posts match some product: the only ones this source recommends to.
        # (An empty recommendation frame has object columns, which the contract's
        # one-by-one concatenation cannot compare.)
        users = fitted.users_.ids
        return users[np.isfinite(fitted.score(users)).any(axis=1)][:40]


# ------------------------------------------------------------------ helpers
@pytest.fixture(scope="module")
def tiny_zh() -> Dataset:
    from synthetic_data import generate, make_config

    return generate(make_config("tiny", seed=0, lang="zh"))


def silent_users(dataset: Dataset) -> np.ndarray:
    """People who never post."""
    users = dataset.users["user_id"].to_numpy()
    return users[~np.isin(users, dataset.posts["user_id"].to_numpy())]


def with_posts(dataset: Dataset, rows: list[dict]) -> tuple[Dataset, list[int]]:
    """A copy of ``dataset`` with more posts (column dtypes kept) and their new ids."""
    posts = dataset.posts
    first = int(posts["post_id"].max()) + 1
    ids = list(range(first, first + len(rows)))
    extra = pd.DataFrame(
        [
            {
                "post_id": post_id,
                "hashtags": [],
                "mentions": [],
                "repost_of": None,
                "product_id": None,
                **row,
            }
            for post_id, row in zip(ids, rows, strict=True)
        ]
    )
    extra["created_ts"] = pd.to_datetime(extra["created_ts"], utc=True)
    extra = extra[posts.columns].astype(posts.dtypes.to_dict())
    return dataclasses.replace(dataset, posts=pd.concat([posts, extra], ignore_index=True)), ids


def categories(dataset: Dataset, recs: pd.DataFrame) -> pd.Series:
    return recs["product_id"].map(dataset.products.set_index("product_id")["category_path"])


def weight_loss_in_top5(dataset: Dataset, recs: pd.DataFrame) -> int:
    return int(categories(dataset, recs.head(5)).str.startswith(WEIGHT_LOSS).sum())


# ----------------------------------------------------------- planted posts
def test_planted_post_brings_weight_loss_products_first(tiny_dataset: Dataset) -> None:
    user = int(silent_users(tiny_dataset)[0])
    planted, (post_id,) = with_posts(
        tiny_dataset,
        [
            {
                "user_id": user,
                "created_ts": "2026-03-20 12:00",
                "text": LOSE_WEIGHT,
                "hashtags": ["减肥"],
            }
        ],
    )
    planted.validate()
    recs = ContentSource().fit(planted, until=CUTOFF).recommend([user], k=5)
    assert weight_loss_in_top5(planted, recs) >= 3
    reason = recs["reasons"].iloc[0][0]
    assert reason["type"] == "post_match"
    assert reason["source"] == "content"
    assert reason["evidence"]["post_id"] == post_id
    assert reason["evidence"]["post_text"] == "trying to lose weight before summer"
    matched = reason["evidence"]["matched_words"]
    assert any("weight" in word for word in matched)
    assert reason["text"].startswith('Matches your post: "trying to lose weight before summer" (')
    assert all(word in reason["text"] for word in matched)


def test_live_post_changes_recommendations(tiny_dataset: Dataset) -> None:
    model = ContentSource().fit(tiny_dataset, until=CUTOFF)
    # User 1 wrote once, three weeks before the cut-off, about a new car.
    before = model.recommend([1], k=5)
    assert len(before) == 5 and weight_loss_in_top5(tiny_dataset, before) == 0
    model.add_post(1, LOSE_WEIGHT, hashtags=["减肥"], post_id=10**9)
    after = model.recommend([1], k=5)
    assert set(after["product_id"]) != set(before["product_id"])
    assert weight_loss_in_top5(tiny_dataset, after) >= 3
    evidence = after["reasons"].iloc[0][0]["evidence"]
    assert evidence["post_id"] == 10**9
    assert any("weight" in word for word in evidence["matched_words"])
    # Other people are untouched.
    pd.testing.assert_frame_equal(model.recommend([5], k=5), model.recommend([5], k=5))


def test_live_post_reaches_a_silent_user(tiny_dataset: Dataset) -> None:
    model = ContentSource().fit(tiny_dataset, until=CUTOFF)
    user = int(silent_users(tiny_dataset)[0])
    assert model.recommend([user], k=5).empty
    model.add_post(user, LOSE_WEIGHT)
    recs = model.recommend([user], k=5)
    assert weight_loss_in_top5(tiny_dataset, recs) >= 3
    assert recs["reasons"].iloc[0][0]["evidence"]["post_id"] is None


def test_add_post_rejects_unknown_user(tiny_dataset: Dataset) -> None:
    model = ContentSource().fit(tiny_dataset, until=CUTOFF)
    with pytest.raises(UnknownIdError, match="unknown user id"):
        model.add_post(10**12, LOSE_WEIGHT)


def test_chinese_post_brings_weight_loss_products_first(tiny_zh: Dataset) -> None:
    user = int(silent_users(tiny_zh)[0])
    planted, (post_id,) = with_posts(
        tiny_zh,
        [
            {
                "user_id": user,
                "created_ts": "2026-03-20 12:00",
                "text": LOSE_WEIGHT_ZH,
                "hashtags": ["减肥"],
            }
        ],
    )
    recs = ContentSource().fit(planted, until=CUTOFF).recommend([user], k=5)
    assert weight_loss_in_top5(planted, recs) >= 3
    weight_loss = categories(planted, recs).str.startswith(WEIGHT_LOSS).to_numpy()
    reason = recs["reasons"].iloc[int(np.argmax(weight_loss))][0]
    assert reason["evidence"]["post_id"] == post_id
    assert reason["evidence"]["post_text"] == "夏天之前一定要瘦下来"
    assert "瘦" in reason["evidence"]["matched_words"]


def test_repost_counts_the_reposted_text(tiny_dataset: Dataset) -> None:
    author, reposter = (int(u) for u in silent_users(tiny_dataset)[:2])
    rows = [
        {"user_id": author, "created_ts": "2026-03-19", "text": LOSE_WEIGHT},
        {"user_id": reposter, "created_ts": "2026-03-20", "text": "so true"},
    ]
    planted, (original, repost) = with_posts(tiny_dataset, rows)
    planted.posts.loc[planted.posts["post_id"] == repost, "repost_of"] = original
    recs = ContentSource().fit(planted, until=CUTOFF).recommend([reposter], k=5)
    assert weight_loss_in_top5(planted, recs) >= 3
    reason = recs["reasons"].iloc[0][0]
    assert reason["evidence"]["post_id"] == repost
    assert reason["text"].startswith('Matches a post you reposted: "trying to lose weight')
    no_reposts = ContentSource(use_reposts=False).fit(planted, until=CUTOFF)
    assert no_reposts.recommend([reposter], k=5).empty


# -------------------------------------------------------------- time decay
@pytest.mark.parametrize(
    ("old", "recent", "expected"),
    [
        ("my cat needs a new litter box", LOSE_WEIGHT, WEIGHT_LOSS),
        (LOSE_WEIGHT, "my cat needs a new litter box", "Pets/"),
    ],
)
def test_recent_post_outweighs_an_old_one(tiny_dataset, old, recent, expected) -> None:
    model = ContentSource(half_life_days=7.0).fit(tiny_dataset, until=CUTOFF)
    user = int(silent_users(tiny_dataset)[0])
    model.add_post(user, old, created_ts=NOW - pd.Timedelta(days=28), post_id=1)
    model.add_post(user, recent, created_ts=NOW - pd.Timedelta(days=1), post_id=2)
    recs = model.recommend([user], k=5)
    assert categories(tiny_dataset, recs).str.startswith(expected).all()
    assert all(r[0]["evidence"]["post_id"] == 2 for r in recs["reasons"])


def test_profile_keeps_only_the_most_recent_posts(tiny_dataset: Dataset) -> None:
    model = ContentSource(profile_posts=1).fit(tiny_dataset, until=CUTOFF)
    assert np.bincount(model.post_users_).max() == 1
    user = int(silent_users(tiny_dataset)[0])
    model.add_post(user, LOSE_WEIGHT, created_ts=NOW - pd.Timedelta(days=2))
    model.add_post(user, "my cat needs a new litter box", created_ts=NOW - pd.Timedelta(days=3))
    recs = model.recommend([user], k=5)
    assert categories(tiny_dataset, recs).str.startswith(WEIGHT_LOSS).all()


def test_profile_keeps_its_strongest_terms(tiny_dataset: Dataset) -> None:
    full = ContentSource(profile_terms=None).fit(tiny_dataset, until=CUTOFF)
    cut = ContentSource(profile_terms=3).fit(tiny_dataset, until=CUTOFF)
    sizes = np.diff(cut.user_profiles_.indptr)
    assert sizes.max() == 3 and np.diff(full.user_profiles_.indptr).max() > 3
    user = int(np.flatnonzero(np.diff(full.user_profiles_.indptr) > 3)[0])
    row = full.user_profiles_[[user]]
    strongest = row.indices[np.lexsort((row.indices, -row.data))[:3]]
    kept = cut.user_profiles_[[user]]
    assert sorted(kept.indices.tolist()) == sorted(strongest.tolist())
    np.testing.assert_allclose(np.linalg.norm(kept.data), 1.0, rtol=1e-5)
    # A live post's profile is cut the same way.
    cut.add_post(int(cut.users_.raw(user)), LOSE_WEIGHT + " and yoga and running shoes")
    assert cut.user_profiles_[[user]].nnz == 3


# ------------------------------------------------------------ other output
def test_silent_users_get_no_recommendations(tiny_dataset: Dataset) -> None:
    model = ContentSource().fit(tiny_dataset, until=CUTOFF)
    silent = silent_users(tiny_dataset)[:3]
    assert np.isneginf(model.score(silent)).all()
    assert model.recommend(silent, k=5).empty
    items, _ = model.candidates(model.users_.lookup(silent), 5)
    assert (items == -1).all()


def test_similar_items_share_the_category(tiny_dataset: Dataset) -> None:
    model = ContentSource().fit(tiny_dataset, until=CUTOFF)
    paths = tiny_dataset.products["category_path"].to_numpy()
    item = int(np.flatnonzero(paths == "Pets/Cat litter")[0])
    items, scores = model.similar_items(item, 5)
    assert len(items) == 5 and item not in items
    assert (paths[items] == "Pets/Cat litter").all()
    assert (np.diff(scores) <= 0).all() and (scores > 0).all()
    with pytest.raises(IndexError, match="item == 1500"):
        model.similar_items(len(paths), 5)


def test_vectorizer_rebuilds_from_arrays(tiny_dataset: Dataset) -> None:
    model = ContentSource().fit(tiny_dataset, until=CUTOFF)
    rebuilt = tfidf_from_arrays(model.vocabulary_, model.idf_)
    texts = [LOSE_WEIGHT, LOSE_WEIGHT_ZH, "my cat needs a new litter box"]
    expected = model.vectorizer_.transform(texts).toarray()
    np.testing.assert_allclose(rebuilt.transform(texts).toarray(), expected, rtol=1e-6)
    assert model.item_vectors_.shape == (1500, len(model.vocabulary_))


# ---------------------------------------------------------------- the text
def test_analyzer_splits_latin_words_and_chinese_characters() -> None:
    terms = analyze("Trying to LOSE weight #减肥# @someone123 in 2026, 夏天")
    assert terms == [
        "trying",
        "lose",
        "weight",
        "trying lose",
        "lose weight",
        "减",
        "肥",
        "减肥",
        "夏",
        "天",
        "夏天",
    ]
    assert analyze("瘦身茶", cjk_ngram_range=(2, 2)) == ["瘦身", "身茶"]


def test_readable_words_merge_overlapping_characters() -> None:
    weights = {"瘦身": 0.3, "身茶": 0.2, "减肥": 0.4, "weight": 0.35, "一": 0.01}
    words = readable_words(weights, "每天一杯瘦身茶 #减肥#", "瘦身茶 减肥 weight")
    assert words == ["瘦身茶", "减肥", "weight"]


# -------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"half_life_days": 0}, r"half_life_days == 0, must be > 0\."),
        ({"profile_posts": 0}, r"profile_posts == 0, must be an int >= 1\."),
        ({"profile_terms": 0}, r"profile_terms == 0, must be an int >= 1\."),
        ({"repost_weight": -1.0}, r"repost_weight == -1.0, must be >= 0\."),
        ({"hashtag_weight": -0.5}, r"hashtag_weight == -0.5, must be >= 0\."),
        ({"category_weight": -1}, r"category_weight == -1, must be >= 0\."),
        ({"max_features": 0}, r"max_features == 0, must be an int >= 1\."),
        ({"min_df": 0}, r"min_df == 0, must be an int >= 1"),
        ({"min_df": 1.5}, r"min_df == 1.5, must be an int >= 1 or a float in \(0, 1\]\."),
        ({"word_ngram_range": (2, 1)}, r"word_ngram_range == \(2, 1\), must be \(lo, hi\)"),
        ({"cjk_ngram_range": (0, 2)}, r"cjk_ngram_range == \(0, 2\), must be \(lo, hi\)"),
    ],
)
def test_rejects_bad_parameters(tiny_dataset: Dataset, params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ContentSource(**params).fit(tiny_dataset, until=CUTOFF)
