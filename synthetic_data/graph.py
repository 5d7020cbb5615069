"""Stage 2: the directed follow graph.

A vectorised Chung–Lu-style stub sampler with three kinds of follow choices:

- *global*: a followee drawn in proportion to a heavy-tailed attractiveness (KOLs boosted);
- *homophily*: the same, restricted to people whose strongest interest is the follower's;
- *triadic closure*: a followee of someone already followed (friends of friends), which
  gives clustering far above a random graph with the same degrees.

Out-degrees follow a capped power law (the platform's follow cap), so both degree tails are
heavy. A small share of follows is returned (mutual follows), calibrated to the target edge
reciprocity, far below Twitter's. Duplicates and self-follows are removed by sorting packed
int64 keys, which is much faster than hashing at tens of millions of edges.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from synthetic_data.config import GeneratorConfig
from synthetic_data.sampling import pareto_weights, powerlaw_counts, rank_within_groups
from synthetic_data.timeline import Timeline
from synthetic_data.users import Users

CIRCLE_SIZE = 100
"""People per circle of peers (a Dunbar-sized group of acquaintances)."""

CIRCLE_SHARE = 0.8
"""Of the homophilous follows, the share made within one's circle (the rest go to the
stars of one's main interest)."""

MAX_FOLLOWER_SHARE = 0.05
"""The most-followed account's expected followers, as a share of all people."""


@dataclass
class FollowGraph:
    """The follows table and the adjacency later stages need.

    Edges are sorted by follower, then followee; ``indptr`` indexes followees by follower
    and ``in_indptr``/``in_edges`` index edges by followee (edge positions, for followers).
    """

    follower: np.ndarray
    followee: np.ndarray
    mutual: np.ndarray
    created_us: np.ndarray
    indptr: np.ndarray

    @functools.cached_property
    def _by_followee(self) -> tuple[np.ndarray, np.ndarray]:
        return _transpose(self.follower, self.followee, len(self.indptr) - 1)

    @property
    def in_indptr(self) -> np.ndarray:
        """Edges indexed by followee (built on first use, by the behaviour stage)."""
        return self._by_followee[0]

    @property
    def in_edges(self) -> np.ndarray:
        return self._by_followee[1]

    @property
    def n_edges(self) -> int:
        return len(self.follower)

    def frame(self, timeline: Timeline) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "follower_id": self.follower,
                "followee_id": self.followee,
                "created_ts": timeline.to_timestamps(self.created_us),
            },
            copy=False,
        )


def make_follow_graph(
    config: GeneratorConfig, users: Users, timeline: Timeline, *, rng: np.random.Generator
) -> FollowGraph:
    """Draw the follow graph for ``users``."""
    degree_rng, urn_rng, stub_rng, triad_rng, recip_rng, time_rng = rng.spawn(6)
    n = users.n
    out_degree = _out_degrees(config, users, degree_rng)
    attract = _attractiveness(config, users, urn_rng)
    urn = _build_urn(attract, users.community, out_degree.sum(), urn_rng)
    circles = _circles(users, urn_rng)

    # Split each person's follows into direct choices and friends-of-friends.
    n_triadic = stub_rng.binomial(np.maximum(out_degree - 1, 0), config.triadic_closure)
    n_direct = out_degree - n_triadic
    follower = np.repeat(np.arange(n, dtype=np.int64), n_direct)
    choose = functools.partial(_direct_choices, config, users=users, urn=urn, circles=circles)
    followee = _in_halves(lambda part, r: choose(part, rng=r), follower, stub_rng)
    direct_indptr = np.concatenate([[0], np.cumsum(n_direct)])
    t_follower, t_followee = _triadic_choices(n_triadic, direct_indptr, followee, triad_rng)

    follower = np.concatenate([follower, t_follower])
    followee = np.concatenate([followee, t_followee])
    del t_follower, t_followee
    keys = _unique_sorted_keys(follower, followee, n)
    del follower, followee
    keys = _top_up(config, users, keys, out_degree, urn, circles, n, stub_rng)
    del urn
    keys, mutual = _add_reciprocity(config, users, keys, n, recip_rng)
    follower, followee = keys // n, keys % n
    del keys
    counts = np.bincount(follower, minlength=n)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    edges = np.arange(len(follower))
    created = _in_halves(
        lambda part, r: _created_times(follower[part], followee[part], users, timeline, r),
        edges,
        time_rng,
    )
    return FollowGraph(follower, followee, mutual, created, indptr)


def _in_halves(func, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``func(part, rng)`` on the two halves of ``items`` on two threads, concatenated.

    numpy releases the GIL in its random draws, gathers and arithmetic, so the halves run
    in parallel; each half has its own spawned stream, so the result does not depend on
    thread timing.
    """
    half = len(items) // 2
    streams = rng.spawn(2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(func, (items[:half], items[half:]), streams))
    return np.concatenate(parts)


def _out_degrees(config: GeneratorConfig, users: Users, rng: np.random.Generator) -> np.ndarray:
    # Returned follows add to out-degrees later; aim the first draw below the mean for that.
    mean = config.mean_followees / (1 + config.reciprocity / 2)
    mean = min(mean, (users.n - 1) / 2)
    cap = min(config.max_followees, users.n - 1)
    degrees = np.sort(powerlaw_counts(users.n, mean, config.out_exponent, cap, rng))
    # More active people follow more: assign the sorted degrees by a noisy activity rank.
    order = np.argsort(np.log(users.activity) + rng.normal(0, 1.0, users.n))
    out = np.empty(users.n, dtype=np.int64)
    out[order] = degrees
    return out


def _attractiveness(config: GeneratorConfig, users: Users, rng: np.random.Generator) -> np.ndarray:
    attract = pareto_weights(users.n, config.in_exponent, rng)
    attract[users.is_kol] *= config.kol_boost
    # The largest accounts reach a few percent of everyone, as Weibo's top accounts do.
    expected_in = attract / attract.sum() * users.n * config.mean_followees
    cap = MAX_FOLLOWER_SHARE * users.n
    return np.where(expected_in > cap, attract * cap / np.maximum(expected_in, 1e-12), attract)


def _build_urn(attract, community, n_stubs, rng):
    """An array of people, each repeated in proportion to attractiveness, grouped by
    community: a uniform draw from the whole urn (or from one community's slice) is a draw
    in proportion to attractiveness, at the cost of one memory gather."""
    order = np.argsort(community, kind="stable")
    expected = attract[order] / attract.sum() * max(n_stubs, 1)
    copies = np.floor(expected + rng.random(len(expected))).astype(np.int64)
    urn = np.repeat(order.astype(np.int32), copies)
    size = np.bincount(community[order], weights=copies, minlength=int(community.max()) + 1)
    size = size.astype(np.int64)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    return urn, start, size


def _circles(users: Users, rng: np.random.Generator):
    """Small circles of people who share their main interest and city tier.

    People follow peers in their circle uniformly, whatever their fame; circles of fixed
    size keep clustering the same at every scale.
    """
    order = np.lexsort((rng.random(users.n), users.tier, users.community))
    circle = np.empty(users.n, dtype=np.int64)
    circle[order] = np.arange(users.n) // CIRCLE_SIZE
    members = order.astype(np.int32)
    size = np.bincount(circle)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    return circle, members, start, size


def _direct_choices(config, follower, *, users, urn, circles, rng):
    """A followee for each follower: a circle peer, a star of the follower's interest, or
    anyone, in proportion to attractiveness.

    Each kind is computed only on its own subset, with float32 draws: at fifty million
    follows the stage is bound by memory traffic, not arithmetic.
    """
    urn, comm_start, comm_size = urn
    circle, members, circle_start, circle_size = circles
    m = len(follower)
    u = rng.random(m, dtype=np.float32)
    r = rng.random(m, dtype=np.float32)
    h = config.homophily
    interest = u < h * (1 - CIRCLE_SHARE)
    peer = u >= 1 - h * CIRCLE_SHARE
    pick = np.empty(m, dtype=np.int64)
    anywhere = ~(interest | peer)
    pick[anywhere] = urn[(r[anywhere] * np.float64(len(urn))).astype(np.int64)]
    own = users.community[follower[interest]]
    pick[interest] = urn[comm_start[own] + (r[interest] * comm_size[own]).astype(np.int64)]
    c = circle[follower[peer]]
    pick[peer] = members[circle_start[c] + (r[peer] * circle_size[c]).astype(np.int64)]
    return pick


def _triadic_choices(n_triadic, direct_indptr, direct_followee, rng):
    """Friends of friends: a followee of a random direct followee of each follower."""
    n_direct = np.diff(direct_indptr)
    follower = np.repeat(np.arange(len(n_triadic), dtype=np.int64), n_triadic * (n_direct > 0))

    def choose(part: np.ndarray, r: np.random.Generator) -> np.ndarray:
        lengths = n_direct[part]
        via = direct_followee[
            direct_indptr[part] + (r.random(len(part), dtype=np.float32) * lengths).astype(np.int64)
        ]
        via_len = direct_indptr[via + 1] - direct_indptr[via]
        pick = direct_indptr[via] + (r.random(len(via), dtype=np.float32) * via_len).astype(
            np.int64
        )
        # A friend who follows no one yet gives no friend of a friend (-1, dropped below).
        return np.where(
            via_len > 0, direct_followee[np.minimum(pick, len(direct_followee) - 1)], -1
        )

    followee = _in_halves(choose, follower, rng)
    ok = followee >= 0
    return follower[ok], followee[ok]


def _top_up(config, users, keys, out_degree, urn, circles, n, rng):
    """Replace follows lost as duplicates or self-follows with fresh direct choices."""
    missing = np.maximum(out_degree - np.bincount(keys // n, minlength=n), 0)
    if missing.sum() == 0:
        return keys
    follower = np.repeat(np.arange(n, dtype=np.int64), missing)
    followee = _direct_choices(config, follower, users=users, urn=urn, circles=circles, rng=rng)
    extra = _unique_sorted_keys(follower, followee, n)
    merged = np.concatenate([keys, extra])
    merged.sort(kind="stable")  # two sorted runs: a linear merge
    unique = np.ones(len(merged), dtype=bool)
    unique[1:] = merged[1:] != merged[:-1]
    return merged[unique]


def _unique_sorted_keys(follower: np.ndarray, followee: np.ndarray, n: int) -> np.ndarray:
    """Sorted unique ``follower * n + followee`` keys without self-follows.

    Sorted in two halves on two threads (numpy releases the GIL while sorting), then merged
    by a stable sort, which is linear on two sorted runs.
    """
    keep = follower != followee
    keys = follower[keep] * n + followee[keep]
    half = len(keys) // 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(np.sort, (keys[:half], keys[half:])))
    keys = np.concatenate(parts)
    keys.sort(kind="stable")
    unique = np.ones(len(keys), dtype=bool)
    unique[1:] = keys[1:] != keys[:-1]
    return keys[unique]


def _add_reciprocity(config, users, keys, n, rng):
    """Return a share of follows so the edge reciprocity reaches ``config.reciprocity``.

    The reciprocity the sampler produced by chance is estimated on a sample of edges; KOLs
    rarely follow back, so only follows of ordinary accounts are returned.
    """
    sample = rng.choice(len(keys), size=min(len(keys), 200_000), replace=False)
    reverse = (keys[sample] % n) * n + keys[sample] // n
    pos = np.minimum(np.searchsorted(keys, reverse), len(keys) - 1)
    organic = float(np.mean(keys[pos] == reverse)) if len(sample) else 0.0
    target = config.reciprocity
    n_add = int(max(0.0, (target - organic) * len(keys) / (2 - target)))
    mutual_out = np.zeros(len(keys), dtype=bool)
    returnable = ~users.is_kol[keys % n]
    share = n_add / max(int(returnable.sum()), 1)
    if n_add == 0 or share <= 0:
        return keys, mutual_out
    # Bernoulli selection: a permutation-based choice without replacement is far slower.
    chosen = np.flatnonzero(returnable & (rng.random(len(keys)) < min(share, 1.0)))
    new_follower = keys[chosen] % n
    new_followee = keys[chosen] // n
    # Respect the follow cap: drop returns that would push someone past it.
    out_deg = np.bincount(keys // n, minlength=n)
    room = np.maximum(min(config.max_followees, n - 1) - out_deg, 0)
    ok = rank_within_groups(new_follower, rng) < room[new_follower]
    chosen, new_follower, new_followee = chosen[ok], new_follower[ok], new_followee[ok]
    new_keys = np.sort(new_follower * n + new_followee)
    mutual_out[chosen] = True
    # Merge the few returned follows into the sorted keys by insertion (linear copies),
    # cheaper than re-sorting fifty million keys.
    at = np.searchsorted(keys, new_keys)
    merged = np.insert(keys, at, new_keys)
    flags = np.insert(mutual_out, at, True)
    unique = np.ones(len(merged), dtype=bool)
    unique[1:] = merged[1:] != merged[:-1]
    # A duplicate means the follow was already returned: keep the flag of either copy.
    flags[:-1] |= ~unique[1:] & flags[1:]
    return merged[unique], flags[unique]


def _transpose(follower: np.ndarray, followee: np.ndarray, n: int):
    """Edges indexed by followee: CSR of edge positions, by a counting sort in C++."""
    # Explicit entries survive tocsc even when zero, so edge 0 needs no offset.
    edge_ids = np.arange(len(follower), dtype=np.int32)
    matrix = sp.csr_matrix(
        (
            edge_ids,
            followee,
            np.concatenate([[0], np.cumsum(np.bincount(follower, minlength=n))]),
        ),
        shape=(n, n),
    )
    csc = matrix.tocsc()
    return csc.indptr.astype(np.int64), csc.data


def _created_times(follower, followee, users, timeline, rng):
    """Follows are made before the simulated period, after both people signed up."""
    earliest = np.maximum(users.signup_us[follower], users.signup_us[followee])
    span = timeline.start_us - earliest
    earliest += (rng.random(len(follower), dtype=np.float32) * span).astype(np.int64)
    return earliest
