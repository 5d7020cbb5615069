"""Where a day's product views come from: interests, trending products, friends and KOLs.

Each function returns a :class:`Views` batch. Social views are *pushed* along follows from
what happened earlier — recent purchases of people followed, product posts — so social
influence in the simulation is causal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthetic_data.sampling import sample_segments

CAUSES = ("interest", "life_event", "popularity", "friends", "kol")
INTEREST, LIFE_EVENT, POPULARITY, FRIENDS, KOL = range(len(CAUSES))


@dataclass
class Views:
    """A batch of product views: who, what, when, why, and how strongly socially pushed."""

    user: np.ndarray
    product: np.ndarray
    ts: np.ndarray
    cause: np.ndarray
    via_post: np.ndarray
    tie: np.ndarray
    """Strength of the social push (0 for none; mutual follows push harder)."""

    @classmethod
    def concat(cls, batches: list[Views]) -> Views:
        return cls(
            *(np.concatenate([getattr(b, f) for b in batches]) for f in cls.__dataclass_fields__)
        )

    def __len__(self) -> int:
        return len(self.user)


def _views(user, product, ts, cause, via_post=None, tie=None) -> Views:
    m = len(user)
    return Views(
        user=user.astype(np.int64),
        product=product.astype(np.int64),
        ts=ts.astype(np.int64),
        cause=np.full(m, cause, dtype=np.int8) if np.isscalar(cause) else cause.astype(np.int8),
        via_post=np.full(m, -1, dtype=np.int64) if via_post is None else via_post,
        tie=np.zeros(m) if tie is None else tie,
    )


def interest_views(world, day_start: int, day_us: int, rng: np.random.Generator) -> Views:
    """Browsing driven by each person's own interests (and, during a life event, its needs)."""
    cfg, users, cat = world.config, world.users, world.catalogue
    rate = cfg.views_per_user_day * (1 - cfg.popularity_view_share) * users.activity
    counts = rng.poisson(rate)
    user = np.repeat(np.arange(users.n, dtype=np.int64), counts)
    leaf = users.interest_leaf[
        sample_segments(users.interest_indptr, world.interest_cdf, user, rng)
    ]
    cause = np.full(len(user), INTEREST, dtype=np.int8)
    in_event = world.in_event(user, day_start)
    focus = in_event & (rng.random(len(user)) < cfg.life_event_focus)
    ev = users.event[user[focus]]
    pick = rng.integers(0, 1 << 30, len(ev)) % world.event_leaf_len[ev]
    leaf[focus] = world.event_leaf_table[ev, pick]
    cause[focus] = LIFE_EVENT
    product = sample_segments(cat.leaf_indptr, cat.leaf_cdf, leaf, rng)
    ts = day_start + (rng.random(len(user)) * day_us).astype(np.int64)
    return _views(user, product, ts, cause)


def popularity_views(world, trending_cdf, day_start, day_us, rng) -> Views:
    """Browsing of what is trending (home-page charts), whatever one's interests."""
    cfg, users = world.config, world.users
    counts = rng.poisson(cfg.views_per_user_day * cfg.popularity_view_share * users.activity)
    user = np.repeat(np.arange(users.n, dtype=np.int64), counts)
    draws = rng.random(len(user)) * trending_cdf[-1]
    product = np.minimum(np.searchsorted(trending_cdf, draws, side="right"), len(trending_cdf) - 1)
    ts = day_start + (rng.random(len(user)) * day_us).astype(np.int64)
    return _views(user, product, ts, POPULARITY)


def pushed_views(world, source, product, post, start_ts, rate, cause, day_end, rng) -> Views:
    """Followers of each ``source`` person see ``product`` (a purchase or a product post).

    Each of the source's followers sees it with probability ``rate`` (a binomial count of
    followers drawn with replacement), mutual followers with twice the push.
    """
    graph = world.graph
    in_deg = graph.in_indptr[source + 1] - graph.in_indptr[source]
    rate = np.broadcast_to(np.asarray(rate, dtype=float), source.shape)
    k = rng.binomial(in_deg, rate)
    rep = np.repeat(np.arange(len(source)), k)
    if len(rep) == 0:
        empty = np.zeros(0, dtype=np.int64)
        no_cause = cause if np.isscalar(cause) else np.asarray(cause)[:0]
        return _views(empty, empty, empty, no_cause)
    edge = graph.in_edges[
        graph.in_indptr[source[rep]] + np.floor(rng.random(len(rep)) * in_deg[rep]).astype(np.int64)
    ]
    follower = graph.follower[edge]
    tie = np.where(graph.mutual[edge], 2.0, 1.0)
    delay = (rng.exponential(4 * 3600e6, len(rep))).astype(np.int64)
    ts = np.minimum(start_ts[rep] + delay, day_end)
    cause_arr = cause[rep] if not np.isscalar(cause) else cause
    return _views(follower, product[rep], ts, cause_arr, post[rep], tie)
