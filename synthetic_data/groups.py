"""Stage 3: interest and shopping groups, joined by people who share their topic."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthetic_data.config import GeneratorConfig
from synthetic_data.sampling import dedupe_pairs, sample_segments, segment_cdf
from synthetic_data.users import Users
from synthetic_data.vocab import Vocabulary


@dataclass
class Groups:
    frame: pd.DataFrame
    members: pd.DataFrame
    topic_leaf: np.ndarray


def make_groups(
    config: GeneratorConfig, vocab: Vocabulary, users: Users, *, rng: np.random.Generator
) -> Groups:
    """Groups about category leaves; people join groups about their own interests."""
    n_groups = max(1, round(users.n * config.groups_per_1000_users / 1000))
    topic_rng, name_rng, member_rng = rng.spawn(3)
    cdf = np.cumsum(vocab.popularity)
    topic = np.searchsorted(cdf, topic_rng.random(n_groups) * cdf[-1], side="right")
    topic = np.minimum(topic, vocab.n_leaves - 1)
    templates = vocab.general["group_templates"]
    tmpl = name_rng.integers(0, len(templates), n_groups)
    names = [
        templates[t].format(topic=vocab.words[leaf].name)
        for t, leaf in zip(tmpl, topic, strict=True)
    ]
    # Disambiguate repeated names the way people do: a number after the name.
    names = pd.Series(names)
    rank = names.groupby(names).cumcount().to_numpy()
    names = np.where(rank > 0, names + " " + (rank + 1).astype(str), names)
    frame = pd.DataFrame(
        {
            "group_id": np.arange(n_groups, dtype=np.int64),
            "name": names,
            "topic": [vocab.leaves[leaf] for leaf in topic],
        }
    )
    members = _memberships(config, users, topic, n_groups, vocab.n_leaves, member_rng)
    return Groups(frame=frame, members=members, topic_leaf=topic)


def _memberships(config, users, topic, n_groups, n_leaves, rng):
    n_join = rng.poisson(config.memberships_per_user * np.sqrt(users.activity), users.n)
    member = np.repeat(np.arange(users.n, dtype=np.int64), n_join)
    # Pick one of the person's interests, then a group about it (any group if none is).
    interest_cdf = segment_cdf(users.interest_indptr, users.interest_weight)
    leaf = users.interest_leaf[sample_segments(users.interest_indptr, interest_cdf, member, rng)]
    by_leaf = np.argsort(topic, kind="stable")
    leaf_indptr = np.concatenate([[0], np.cumsum(np.bincount(topic, minlength=n_leaves))])
    size = leaf_indptr[leaf + 1] - leaf_indptr[leaf]
    pos = leaf_indptr[leaf] + np.floor(rng.random(len(leaf)) * size).astype(np.int64)
    group = np.where(
        size > 0, by_leaf[np.minimum(pos, len(by_leaf) - 1)], rng.integers(0, n_groups, len(leaf))
    )
    group, member = dedupe_pairs(group, member, users.n)
    return pd.DataFrame({"group_id": group, "user_id": member})
