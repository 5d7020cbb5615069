"""Tie strength: each signal raises it, recency decays it, and the vectorised build agrees
with a plain loop over the tiny dataset."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recommender.data import TrainingData
from recommender.ties import Ties, tie_strength
from tests.recommender.contract import CUTOFF
from tests.recommender.factories import make_valid_dataset

NOTHING_BUT = dict(mutual_weight=0.0, mention_weight=0.0, repost_weight=0.0, group_weight=0.0)


def _strength(dataset, **weights) -> callable:
    """A lookup ``edge(u, v)`` of the tie strength matrix by raw user ids."""
    data = TrainingData.from_dataset(dataset)
    ties = tie_strength(data, **weights)

    def edge(u: int, v: int) -> float:
        a, b = data.users.lookup([u, v])
        return float(ties[a, b])

    return edge


def test_aligned_with_follows(tiny_dataset) -> None:
    data = TrainingData.from_dataset(tiny_dataset, until=CUTOFF)
    ties = tie_strength(data)
    follows = data.follows.tocsr()
    follows.sum_duplicates()
    np.testing.assert_array_equal(ties.indptr, follows.indptr)
    np.testing.assert_array_equal(ties.indices, follows.indices)
    assert ties.dtype == np.float32
    assert (ties.data >= 1.0).all()


def test_base_is_one_per_follow() -> None:
    edge = _strength(make_valid_dataset(), **NOTHING_BUT)
    assert edge(4, 2) == edge(1, 3) == 1.0
    assert edge(2, 4) == 0.0  # no follow, no tie


def test_mutual_beats_one_way() -> None:
    weights = {**NOTHING_BUT, "mutual_weight": 1.0}
    edge = _strength(make_valid_dataset(), **weights)
    assert edge(1, 3) == edge(3, 1) == 2.0  # users 1 and 3 follow each other
    assert edge(4, 2) == 1.0


def test_mentions_raise_strength_both_ways() -> None:
    edge = _strength(make_valid_dataset(), **{**NOTHING_BUT, "mention_weight": 1.0})
    assert edge(1, 2) > edge(4, 2) == 1.0  # post 202: user 1 mentions the KOL
    # The same mention counts for the edge in the other direction.
    ds = make_valid_dataset()
    back = pd.DataFrame(
        {"follower_id": [2], "followee_id": [1], "created_ts": ds.follows["created_ts"][:1]}
    )
    ds = dataclasses.replace(ds, follows=pd.concat([ds.follows, back], ignore_index=True))
    edge = _strength(ds, **{**NOTHING_BUT, "mention_weight": 1.0})
    assert edge(2, 1) == edge(1, 2) > 1.0


def test_reposts_raise_strength() -> None:
    edge = _strength(make_valid_dataset(), **{**NOTHING_BUT, "repost_weight": 1.0})
    assert edge(3, 2) > edge(4, 2) == 1.0  # post 203: user 3 reposts the KOL's post 201


def test_shared_groups_raise_strength() -> None:
    edge = _strength(make_valid_dataset(), **{**NOTHING_BUT, "group_weight": 1.0})
    # Users 2 and 3 share group 1; users 4 and 2 share none; users 1 and 3 share one.
    assert edge(3, 2) == pytest.approx(1 + np.log1p(1))
    assert edge(4, 2) == 1.0


def test_recent_contact_counts_more() -> None:
    def mention_on(day: int) -> float:
        ds = make_valid_dataset()
        posts = ds.posts.copy()
        moment = pd.Timestamp("2024-03-01", tz="UTC") + pd.Timedelta(days=day)
        posts.loc[posts["post_id"] == 202, "created_ts"] = moment
        edge = _strength(
            dataclasses.replace(ds, posts=posts),
            **{**NOTHING_BUT, "mention_weight": 1.0},
            half_life_days=5.0,
        )
        return edge(1, 2)

    assert mention_on(29) > mention_on(15) > mention_on(1) > 1.0


def test_matches_a_plain_loop(tiny_dataset) -> None:
    """Every feature of every edge of the tiny dataset, recomputed one post at a time."""
    data = TrainingData.from_dataset(tiny_dataset, until=CUTOFF)
    ties = Ties.from_data(data, half_life_days=30.0)
    index = dict(zip(tiny_dataset.users["user_id"], range(data.n_users), strict=True))
    author = dict(zip(tiny_dataset.posts["post_id"], tiny_dataset.posts["user_id"], strict=True))
    mentions: dict[tuple[int, int], float] = {}
    reposts: dict[tuple[int, int], float] = {}
    for post in data.posts.itertuples():
        age = max((data.now - post.created_ts).total_seconds() / 86_400, 0.0)
        weight = 0.5 ** (age / 30.0)
        others = [(mentions, index[m]) for m in post.mentions]
        if not pd.isna(post.repost_of):
            others.append((reposts, index[author[post.repost_of]]))
        for counts, other in others:
            if other != post.u:
                pair = (min(post.u, other), max(post.u, other))
                counts[pair] = counts.get(pair, 0.0) + weight
    groups = tiny_dataset.group_members.groupby("user_id")["group_id"].apply(set).to_dict()
    users = tiny_dataset.users["user_id"].to_numpy()
    follows = data.follows.tocoo()
    edges = set(zip(follows.row.tolist(), follows.col.tolist(), strict=True))
    expected_rows = []
    for u, v in sorted(edges):
        pair = (min(u, v), max(u, v))
        shared = groups.get(users[u], set()) & groups.get(users[v], set())
        expected_rows.append(
            ((v, u) in edges, mentions.get(pair, 0.0), reposts.get(pair, 0.0), len(shared))
        )
    expected = np.array(expected_rows, dtype=float)
    features = ties.edge_features()
    got = np.column_stack(list(features.values())).astype(float)
    assert list(features) == ["mutual", "mentions", "reposts", "shared_groups"]
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert (expected > 0).sum(axis=0).min() > 0  # every signal occurs: not vacuous


def test_live_follow_contact_and_unfollow() -> None:
    data = TrainingData.from_dataset(make_valid_dataset())
    ties = Ties.from_data(data, mention_weight=1.0)
    kol, xiao = data.users.lookup([2, 4])
    before = ties.strength(xiao, kol)
    ties.add_follow(kol, xiao)  # the KOL follows back: both directions become mutual
    assert ties.strength(kol, xiao) == ties.strength(xiao, kol) == before + 1.0
    assert ties.matrix()[kol, xiao] == ties.rows([kol])[0, xiao] == before + 1.0
    ties.add_contact(kol, xiao, mentions=1.0)
    assert ties.rows([xiao])[0, kol] == pytest.approx(before + 1.0 + np.log1p(1.0))
    ties.remove_follow(kol, xiao)
    assert ties.rows([kol]).nnz == 0
    assert ties.strength(xiao, kol) == pytest.approx(before + np.log1p(1.0))
    ties.remove_follow(kol, xiao)  # idempotent
    assert not ties.follows_edge(kol, xiao)
    with pytest.raises(ValueError, match="cannot follow themselves"):
        ties.add_follow(kol, kol)


@pytest.mark.parametrize("name", ["mutual_weight", "mention_weight", "group_weight"])
def test_rejects_negative_weight(name: str) -> None:
    data = TrainingData.from_dataset(make_valid_dataset())
    with pytest.raises(ValueError, match=rf"{name} == -1, must be >= 0"):
        Ties.from_data(data, **{name: -1})


def test_rejects_bad_half_life() -> None:
    data = TrainingData.from_dataset(make_valid_dataset())
    with pytest.raises(ValueError, match=r"half_life_days == 0, must be > 0"):
        Ties.from_data(data, half_life_days=0)
