"""Social source: the contract, planted answers, privacy over every user, KOL picks,
live updates and share targets."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from recommender.data import TrainingData
from recommender.errors import UnknownIdError
from recommender.social import COMPONENTS, SocialSource
from recommender.ties import tie_strength
from tests.recommender.contract import CUTOFF, RecommenderContract
from tests.recommender.factories import make_valid_dataset

PLANT_TS = pd.Timestamp("2026-03-20 12:00", tz="UTC")
"""A moment just before the contract's cut-off, for planted rows."""

PRIVATE_TYPES = {"friends_purchased", "friends_engaged"}
"""Reason types that reveal what someone bought, carted or favourited."""


def _social_actors(dataset, until=CUTOFF) -> np.ndarray:
    """Users who shared a purchase, cart or favourite before ``until``."""
    inter = dataset.interactions
    events = inter[
        (inter["ts"] < pd.Timestamp(until, tz="UTC"))
        & inter["event"].astype(str).isin(["purchase", "cart", "favorite"])
    ]
    public = dataset.users.loc[dataset.users["share_purchases"], "user_id"]
    return np.intersect1d(events["user_id"].unique(), public)


class TestSocialContract(RecommenderContract):
    def make_model(self) -> SocialSource:
        return SocialSource()

    @pytest.fixture
    def some_users(self, tiny_dataset) -> np.ndarray:
        """Users following at least five people with shared events (not vacuous)."""
        follows = tiny_dataset.follows
        reached = follows[follows["followee_id"].isin(_social_actors(tiny_dataset))]
        counts = reached.groupby("follower_id").size()
        return np.sort(counts[counts >= 5].index.to_numpy())[:40]


@pytest.fixture(scope="module")
def social(tiny_dataset) -> SocialSource:
    """A fitted source shared by read-only tests."""
    return SocialSource().fit(tiny_dataset, until=CUTOFF)


def _fresh_product(dataset) -> int:
    """A product nobody touched or linked (so planted evidence is all there is)."""
    used = set(dataset.interactions["product_id"]) | set(dataset.posts["product_id"].dropna())
    return int(next(p for p in dataset.products["product_id"] if p not in used))


def _purchases(dataset, buyers, product: int) -> pd.DataFrame:
    inter = dataset.interactions
    rows = pd.DataFrame(
        {
            "user_id": np.asarray(buyers, dtype=np.int64),
            "product_id": product,
            "event": "purchase",
            "ts": PLANT_TS,
            "via_post_id": None,
        }
    )
    rows = rows.astype({c: t for c, t in inter.dtypes.items() if c in rows})
    return pd.concat([inter, rows], ignore_index=True)


def _reasons(recs: pd.DataFrame, product: int) -> dict[str, dict]:
    row = recs.loc[recs["product_id"] == product]
    assert len(row) == 1, f"product {product} not recommended"
    return {r["type"]: r for r in row["reasons"].iloc[0]}


# ------------------------------------------------------------------ planted answers
def test_product_all_followees_bought_comes_first_naming_them(tiny_dataset) -> None:
    users = tiny_dataset.users.set_index("user_id")
    follows = tiny_dataset.follows
    out_degree = follows.groupby("follower_id")["followee_id"].apply(list)
    private = set(users.index[~users["share_purchases"]])
    person, followees = next(
        (u, f) for u, f in out_degree.items() if 5 <= len(f) <= 15 and private & set(f)
    )
    product = _fresh_product(tiny_dataset)
    planted = dataclasses.replace(
        tiny_dataset, interactions=_purchases(tiny_dataset, followees, product)
    )
    model = SocialSource().fit(planted, until=CUTOFF)
    recs = model.recommend([person], k=10)
    assert recs["product_id"].iloc[0] == product
    reason = _reasons(recs, product)["friends_purchased"]
    public = [f for f in followees if f not in private]
    assert reason["evidence"]["count"] == len(public)
    # The strongest three ties among the public buyers are named, strongest first.
    data = TrainingData.from_dataset(planted, until=CUTOFF)
    row = tie_strength(data)[data.users.lookup([person])][:, data.users.lookup(public)]
    strength = row.toarray().ravel()
    expected = [public[k] for k in np.lexsort((data.users.lookup(public), -strength))[:3]]
    assert reason["evidence"]["user_ids"] == expected
    assert reason["evidence"]["handles"] == users.loc[expected, "handle"].tolist()
    assert reason["text"].startswith(f"{len(public)} people you follow bought this: @")
    for handle in users.loc[expected, "handle"]:
        assert f"@{handle}" in reason["text"]


def test_hand_made_dataset_reasons() -> None:
    """The factory's 6 users, every reason checked by hand (see ``make_valid_dataset``)."""
    model = SocialSource().fit(make_valid_dataset())
    recs = model.recommend([1, 2, 4, 5, 6], k=5)
    by_user = {u: g for u, g in recs.groupby("user_id")}
    # hao follows xiao, who bought product 103 and showed it off in post 204.
    hao = _reasons(by_user[5], 103)
    assert hao["friends_purchased"]["text"] == "1 person you follow bought this: @xiao"
    assert hao["friends_posted"]["evidence"]["post_ids"] == [204]
    assert hao["friends_posted"]["text"] == "@xiao posted about this"
    # xiao follows the KOL, whose guide post 201 links product 101.
    kol = _reasons(by_user[4], 101)["kol_pick"]
    assert kol["text"] == "KOL @lin_kol recommends this"
    assert kol["evidence"] == {
        "user_ids": [2],
        "handles": ["lin_kol"],
        "count": 1,
        "post_ids": [201],
    }
    # ying follows mei, who carted and bought 101: the purchase supersedes the cart.
    assert set(_reasons(by_user[6], 101)) == {"friends_purchased"}
    # mei follows the KOL (who carted 102) and jun, whose purchase of 101 is private.
    assert by_user[1]["product_id"].tolist() == [102]
    assert set(_reasons(by_user[1], 102)) == {"friends_engaged"}
    # The KOL follows nobody: no social evidence, no rows (the hybrid falls back).
    assert 2 not in by_user
    assert model.recommend([2], k=5).empty


def test_components_add_up_to_the_score(social, tiny_dataset) -> None:
    users = tiny_dataset.users["user_id"].to_numpy()[:50]
    parts = social.score_components(users)
    assert set(parts) == {*COMPONENTS, "followees_engaged"}
    total = sum(parts[c] for c in COMPONENTS)
    score = social.score(users)
    finite = np.isfinite(score)
    assert finite.any()
    np.testing.assert_allclose(score[finite], total[finite], rtol=1e-5)
    assert (total[~finite] == 0).all()
    assert (parts["followees_engaged"][finite] >= 1).all()


# ------------------------------------------------------------------------- privacy
def test_no_reason_reveals_a_private_person(social, tiny_dataset) -> None:
    users = tiny_dataset.users
    private = users.loc[~users["share_purchases"]]
    private_ids = set(private["user_id"].tolist())
    private_handles = set(private["handle"].tolist())
    recs = social.recommend(users["user_id"].to_numpy(), k=10)
    assert recs["user_id"].nunique() > 0.5 * len(users)
    for reasons in recs["reasons"]:
        for r in reasons:
            handles = set(re.findall(r"@(\w+)", r["text"])) | set(r["evidence"]["handles"])
            ids = set(r["evidence"]["user_ids"])
            if r["type"] in PRIVATE_TYPES:
                assert not ids & private_ids, r
                assert not handles & private_handles, r
            else:  # a private person may be named only for a public post
                assert "bought" not in r["text"] and "cart" not in r["text"]
    # Not vacuous: private people did buy, and are followed by people who got lists.
    private_buyers = set(_private_shoppers(tiny_dataset))
    followers = tiny_dataset.follows.loc[
        tiny_dataset.follows["followee_id"].isin(private_buyers), "follower_id"
    ]
    assert private_buyers and set(followers) & set(recs["user_id"])


def _private_shoppers(dataset) -> np.ndarray:
    inter = dataset.interactions
    users = dataset.users
    private = users.loc[~users["share_purchases"], "user_id"]
    shopping = inter["event"].astype(str).isin(["purchase", "cart", "favorite"])
    before = inter["ts"] < pd.Timestamp(CUTOFF, tz="UTC")
    return np.intersect1d(inter.loc[shopping & before, "user_id"].unique(), private)


def test_private_events_change_nothing(social, tiny_dataset) -> None:
    """Dropping every private person's events leaves the evidence exactly as it was."""
    private = set(_private_shoppers(tiny_dataset))
    inter = tiny_dataset.interactions
    kept = inter[~inter["user_id"].isin(private)]
    other = SocialSource().fit(dataclasses.replace(tiny_dataset, interactions=kept), until=CUTOFF)
    for c in COMPONENTS:
        assert (social.evidence_[c] != other.evidence_[c]).nnz == 0, c


def test_share_targets_never_reveal_private_purchases(social, tiny_dataset) -> None:
    inter = tiny_dataset.interactions
    bought = inter[(inter["event"] == "purchase") & (inter["ts"] < pd.Timestamp(CUTOFF, tz="UTC"))]
    bought = bought[bought["user_id"].isin(_private_shoppers(tiny_dataset))]
    follows = tiny_dataset.follows.merge(bought, left_on="followee_id", right_on="user_id")
    cases = follows.drop_duplicates(["follower_id", "product_id"]).head(60)
    assert len(cases) >= 20
    private = set(_private_shoppers(tiny_dataset)) | set(
        tiny_dataset.users.loc[~tiny_dataset.users["share_purchases"], "user_id"]
    )
    for case in cases.itertuples():
        targets = social.share_targets(case.follower_id, case.product_id, n=1000)
        # The private buyer is not left out (that would tell the asker they bought it).
        assert case.followee_id in set(targets["user_id"])
        for target in targets.itertuples():
            if target.user_id in private:
                types = {r["type"] for r in target.reasons}
                assert types <= {"category_poster", "mutual_friends", "close_contact", "follows"}
                assert not any("bought" in r["text"] for r in target.reasons)


def test_share_targets_hand_made() -> None:
    model = SocialSource().fit(make_valid_dataset())
    # mei shares the shake (101): the KOL posted in its category and mei mentions her;
    # jun bought it privately and stays a target, as a mutual friend only.
    targets = model.share_targets(1, 101).set_index("handle")
    assert set(targets.index) == {"lin_kol", "jun"}
    kol = {r["type"]: r["text"] for r in targets.loc["lin_kol", "reasons"]}
    assert kol == {
        "category_poster": "@lin_kol posted about this category once",
        "close_contact": "you and @lin_kol @-mention each other",
    }
    jun = [r["type"] for r in targets.loc["jun", "reasons"]]
    assert jun == ["mutual_friends"]
    # hao follows xiao, who bought the shoes (103) openly: nobody left to tell.
    assert model.share_targets(5, 103).empty
    # ying follows mei, who bought from the category of a new shake (106).
    ds = make_valid_dataset()
    shake = ds.products.iloc[[0]].assign(product_id=106, title="Vanilla shake")
    ds = dataclasses.replace(ds, products=pd.concat([ds.products, shake], ignore_index=True))
    mei = SocialSource().fit(ds).share_targets(6, 106).iloc[0]
    assert mei["handle"] == "mei"
    assert mei["reasons"][0]["text"] == "@mei bought from this category once"
    assert mei["reasons"][0]["evidence"]["category"] == "Health/Weight loss/Meal replacement"


# --------------------------------------------------------------------------- KOLs
def test_kol_guide_post_gives_a_kol_pick(tiny_dataset) -> None:
    users = tiny_dataset.users
    kol = int(users.loc[users["is_kol"], "user_id"].iloc[0])
    fans = tiny_dataset.follows.loc[tiny_dataset.follows["followee_id"] == kol, "follower_id"]
    fan = int(fans.iloc[0])
    product = _fresh_product(tiny_dataset)
    posts = tiny_dataset.posts
    post_id = int(posts["post_id"].max()) + 1
    values = {
        "post_id": post_id,
        "user_id": kol,
        "created_ts": PLANT_TS,
        "text": "my pick of the week",
        "hashtags": pa.array([[]], pa.list_(pa.string())),
        "mentions": pa.array([[]], pa.list_(pa.int64())),
        "repost_of": None,
        "product_id": product,
    }
    guide = pd.DataFrame(
        {
            c: pd.Series(v if isinstance(v, pa.Array) else [v], dtype=posts[c].dtype)
            for c, v in values.items()
        }
    )
    planted = dataclasses.replace(tiny_dataset, posts=pd.concat([posts, guide], ignore_index=True))
    model = SocialSource().fit(planted, until=CUTOFF)
    recs = model.recommend([fan], k=len(tiny_dataset.products))
    reason = _reasons(recs, product)["kol_pick"]
    handle = users.set_index("user_id").loc[kol, "handle"]
    assert reason["text"] == f"KOL @{handle} recommends this"
    assert reason["evidence"]["post_ids"] == [post_id]


def test_kol_picks_occur_in_the_tiny_dataset(social, tiny_dataset) -> None:
    fans = tiny_dataset.follows.loc[
        tiny_dataset.follows["followee_id"].isin(
            tiny_dataset.users.loc[tiny_dataset.users["is_kol"], "user_id"]
        ),
        "follower_id",
    ].unique()[:100]
    recs = social.recommend(fans, k=10)
    types = {r["type"] for reasons in recs["reasons"] for r in reasons}
    assert "kol_pick" in types


# ---------------------------------------------------------------------- live updates
@pytest.fixture
def live(tiny_dataset):
    """A private fitted model to mutate, a follower, a public followee, a fresh product."""
    model = SocialSource().fit(tiny_dataset, until=CUTOFF)
    users = tiny_dataset.users.set_index("user_id")
    follows = tiny_dataset.follows
    public = follows[follows["followee_id"].map(users["share_purchases"])]
    follower, followee = (int(x) for x in public.iloc[0][["follower_id", "followee_id"]])
    return model, follower, followee, _fresh_product(tiny_dataset), users


def _products(model, user: int) -> set[int]:
    return set(model.recommend([user], k=len(model.data_.dataset.products))["product_id"])


def test_live_purchase_follow_and_unfollow(live) -> None:
    model, follower, followee, product, users = live
    assert product not in _products(model, follower)
    model.add_event(followee, product, "purchase")
    recs = model.recommend([follower], k=len(model.data_.dataset.products))
    reason = _reasons(recs, product)["friends_purchased"]
    assert reason["evidence"]["user_ids"] == [followee]
    assert f"@{users.loc[followee, 'handle']}" in reason["text"]
    model.remove_follow(follower, followee)
    assert product not in _products(model, follower)
    model.add_follow(follower, followee)
    assert product in _products(model, follower)
    # The buyer's own list drops what they just bought.
    model.add_event(follower, product, "purchase")
    assert product not in _products(model, follower)


def test_live_private_purchase_stays_private(live) -> None:
    model, _, _, product, users = live
    follows = model.data_.dataset.follows
    private = follows[~follows["followee_id"].map(users["share_purchases"])]
    fan, person = (int(x) for x in private.iloc[0][["follower_id", "followee_id"]])
    model.add_event(person, product, "purchase")
    model.add_event(person, product, "cart")
    assert product not in _products(model, fan)


def test_live_post_and_views(live) -> None:
    model, follower, followee, product, _ = live
    model.add_event(followee, product, "view")  # no social proof
    assert product not in _products(model, follower)
    model.add_post(10**9, followee, product_id=product, mentions=[follower])
    recs = model.recommend([follower], k=len(model.data_.dataset.products))
    assert _reasons(recs, product)["friends_posted"]["evidence"]["post_ids"] == [10**9]
    mentions, _ = model.ties_.contact(*model.users_.lookup([follower, followee]))
    assert mentions > 0


def test_live_cart_then_purchase_moves_the_reason(live) -> None:
    model, follower, followee, product, _ = live
    model.add_event(followee, product, "cart")
    recs = model.recommend([follower], k=len(model.data_.dataset.products))
    assert set(_reasons(recs, product)) == {"friends_engaged"}
    model.add_event(followee, product, "purchase", ts=PLANT_TS)
    recs = model.recommend([follower], k=len(model.data_.dataset.products))
    assert set(_reasons(recs, product)) == {"friends_purchased"}


def test_live_unknown_ids_raise(live) -> None:
    model, follower, followee, product, _ = live
    with pytest.raises(UnknownIdError, match="unknown user id"):
        model.add_event(10**12, product, "purchase")
    with pytest.raises(UnknownIdError, match="unknown product id"):
        model.add_event(follower, 10**12, "purchase")
    with pytest.raises(UnknownIdError, match="unknown user id"):
        model.add_follow(follower, 10**12)
    with pytest.raises(UnknownIdError, match="unknown user id"):
        model.remove_follow(10**12, followee)
    with pytest.raises(UnknownIdError, match="unknown post id"):
        model.add_post(10**9, followee, repost_of=10**12)
    with pytest.raises(UnknownIdError, match="unknown user id"):
        model.add_post(10**9, followee, mentions=[10**12])
    with pytest.raises(UnknownIdError, match="unknown product id"):
        model.share_targets(follower, 10**12)
    with pytest.raises(ValueError, match="event == 'like'"):
        model.add_event(follower, product, "like")


def test_rejects_bad_hyperparameters(tiny_dataset) -> None:
    with pytest.raises(ValueError, match=r"cart_weight == -1, must be >= 0"):
        SocialSource(cart_weight=-1).fit(tiny_dataset, until=CUTOFF)
    with pytest.raises(ValueError, match=r"half_life_days == 0, must be > 0"):
        SocialSource(half_life_days=0).fit(tiny_dataset, until=CUTOFF)


def test_live_repost_and_mention_strengthen_the_tie() -> None:
    model = SocialSource().fit(make_valid_dataset())
    xiao, kol = model.users_.lookup([4, 2])
    before = model.ties_.strength(xiao, kol)
    model.add_post(301, 4, repost_of=201)  # xiao reposts the KOL's guide
    after_repost = model.ties_.strength(xiao, kol)
    model.add_post(302, 2, mentions=[4], repost_of=301)  # the KOL answers, reposting it
    assert model.ties_.strength(xiao, kol) > after_repost > before
    assert model.ties_.rows([xiao])[0, kol] == pytest.approx(model.ties_.strength(xiao, kol))
