"""Stage 6: shopping behaviour, simulated day by day so that social influence is causal.

Every day people view products (from their interests, a life event's needs, trending
charts, and what people they follow bought or posted the day before), then a funnel
decides carts, favourites and purchases. The chance to engage rises with interest match,
the strength of the tie to whoever pushed the product, KOL endorsement, the product's
appeal and how well its price fits the person. Purchases are pushed to the buyers'
followers the next day, and some buyers post a show-off linking what they bought.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from synthetic_data.catalogue import Catalogue
from synthetic_data.config import GeneratorConfig
from synthetic_data.exposure import (
    CAUSES,
    FRIENDS,
    KOL,
    Views,
    interest_views,
    popularity_views,
    pushed_views,
)
from synthetic_data.graph import FollowGraph
from synthetic_data.posts import REPOST, SHOWOFF, Posts
from synthetic_data.sampling import segment_cdf
from synthetic_data.timeline import DAY_US, Timeline
from synthetic_data.users import Users
from synthetic_data.vocab import Vocabulary

EVENTS = ("view", "click", "favorite", "cart", "purchase")
VIEW, CLICK, FAVORITE, CART, PURCHASE = range(len(EVENTS))
# Taobao UserBehavior: view : cart : favorite : purchase = 89.6 : 5.5 : 2.9 : 2.0.
CART_PER_VIEW = 5.5 / 89.6
FAVORITE_PER_VIEW = 2.9 / 89.6
PURCHASE_PER_VIEW = 2.0 / 89.6


@dataclass
class World:
    """Everything drawn so far, plus look-up structures the daily simulation shares."""

    config: GeneratorConfig
    vocab: Vocabulary
    timeline: Timeline
    users: Users
    graph: FollowGraph
    catalogue: Catalogue
    posts: Posts
    interest_cdf: np.ndarray = field(init=False)
    event_leaf_table: np.ndarray = field(init=False)
    event_leaf_len: np.ndarray = field(init=False)
    event_leaf_mask: np.ndarray = field(init=False)
    interest_leaf_pad: np.ndarray = field(init=False)
    interest_weight_pad: np.ndarray = field(init=False)
    mean_in_degree: float = field(init=False)

    def __post_init__(self) -> None:
        u, v = self.users, self.vocab
        self.interest_cdf = segment_cdf(u.interest_indptr, u.interest_weight)
        width = max(len(x) for x in v.event_leaves)
        self.event_leaf_table = np.array([np.resize(x, width) for x in v.event_leaves])
        self.event_leaf_len = np.array([len(x) for x in v.event_leaves])
        self.event_leaf_mask = np.zeros((len(v.events), v.n_leaves), dtype=bool)
        for e, leaves in enumerate(v.event_leaves):
            self.event_leaf_mask[e, leaves] = True
        # Interests padded to a fixed width: a vectorised row compare finds a person's
        # weight for a leaf faster than a search over millions of (user, leaf) keys.
        counts = np.diff(u.interest_indptr)
        width = int(counts.max()) if len(counts) else 1
        self.interest_leaf_pad = np.full((u.n, width), -1, dtype=np.int16)
        self.interest_weight_pad = np.zeros((u.n, width), dtype=np.float32)
        rows = np.repeat(np.arange(u.n), counts)
        cols = np.arange(len(rows)) - u.interest_indptr[rows]
        self.interest_leaf_pad[rows, cols] = u.interest_leaf
        self.interest_weight_pad[rows, cols] = u.interest_weight
        self.mean_in_degree = max(self.graph.n_edges / u.n, 1.0)

    def in_event(self, user: np.ndarray, day_start: int) -> np.ndarray:
        day = (day_start - self.timeline.start_us) // DAY_US
        start = self.users.event_day[user]
        return (start >= 0) & (day >= start) & (day < start + self.config.life_event_days)

    def interest_match(self, user: np.ndarray, product: np.ndarray) -> np.ndarray:
        """The person's latent interest weight in the product's category leaf (0 if none)."""
        leaf = self.catalogue.leaf[product].astype(np.int16)
        hit = self.interest_leaf_pad[user] == leaf[:, None]
        return (self.interest_weight_pad[user] * hit).sum(axis=1).astype(np.float64)


@dataclass
class Behaviour:
    interactions: pd.DataFrame
    purchase_causes: pd.DataFrame
    showoff_posts: pd.DataFrame


def simulate_behaviour(
    world: World,
    *,
    rng: np.random.Generator,
    progress: Callable[[int], None] | None = None,
) -> Behaviour:
    """Simulate ``config.n_days`` days of browsing and buying."""
    cfg, tl = world.config, world.timeline
    day_rngs = rng.spawn(cfg.n_days)
    recent = np.zeros(world.catalogue.n)  # decayed purchase counts: what is trending
    pending: dict[int, list[Views]] = {}  # friends' purchases waiting in people's feeds
    next_post_id = world.posts.n
    chunks, cause_chunks, showoff_chunks = [], [], []
    linked = np.flatnonzero(world.posts.product >= 0)
    for day in range(cfg.n_days):
        r = day_rngs[day]
        day_start = int(tl.day_start(day))
        day_end = day_start + DAY_US - 1
        trending = np.cumsum(world.catalogue.appeal * (1.0 + recent))
        batches = [
            interest_views(world, day_start, DAY_US, r),
            popularity_views(world, trending, day_start, DAY_US, r),
            *pending.pop(day, []),
            _views_from_posts(world, linked, day_start, day_end, r),
        ]
        views = Views.concat(batches)
        events, bought = _funnel(world, views, day_end, r)
        chunks.append(events)
        buyer, product, ts, cause, via = bought
        cause_chunks.append((buyer, product, ts, cause, via))
        showoff = _showoffs(world, buyer, product, ts, next_post_id, day_end, r)
        next_post_id += len(showoff["post_id"])
        showoff_chunks.append(showoff)
        today = (buyer, product, ts, showoff["post_map"])
        pushed = _views_from_purchases(world, today, day_end + 1, day_end + DAY_US, r)
        _schedule(pending, pushed, day, tl, r)
        recent = recent * 0.8 + np.bincount(product, minlength=world.catalogue.n)
        if progress is not None:
            progress(1)
    return Behaviour(
        interactions=_interactions_frame(chunks, tl),
        purchase_causes=_causes_frame(cause_chunks, tl),
        showoff_posts=_showoff_frame(world, showoff_chunks),
    )


FEED_PERSISTENCE = 0.35
"""Chance per day that a friend's purchase still waiting in someone's feed is seen that
day: it is seen after a geometric number of days (mean about three), so what friends bought
last week still matters this week."""

FEED_MAX_DAYS = 14


def _schedule(pending: dict, pushed: Views, day: int, timeline: Timeline, rng) -> None:
    """Spread tomorrow's pushed views over the following days."""
    if len(pushed) == 0:
        return
    delay = np.minimum(rng.geometric(FEED_PERSISTENCE, len(pushed)) - 1, FEED_MAX_DAYS)
    pushed.ts = pushed.ts + delay * DAY_US
    target = day + 1 + delay
    order = np.argsort(target, kind="stable")
    days, starts = np.unique(target[order], return_index=True)
    bounds = np.r_[starts, len(order)]
    for d, lo, hi in zip(days, bounds[:-1], bounds[1:], strict=True):
        if d >= timeline.n_days:
            break
        idx = order[lo:hi]
        batch = Views(*(getattr(pushed, f)[idx] for f in Views.__dataclass_fields__))
        pending.setdefault(int(d), []).append(batch)


def _views_from_purchases(world, purchases, day_start, day_end, rng) -> Views:
    """A day's purchases reach the buyers' followers — unless a buyer keeps them private.

    A purchase with a show-off post is pushed harder and carries the post, so purchases it
    leads to are attributed to it (``via_post_id``).
    """
    buyer, product, ts, post = purchases
    shared = world.users.shares[buyer] if len(buyer) else np.zeros(0, dtype=bool)
    buyer, product, post = buyer[shared], product[shared], post[shared]
    cfg = world.config
    reach = np.where(post >= 0, cfg.friend_reach + cfg.showoff_reach, cfg.friend_reach)
    # Reach grows with the square root of the buyer's following, so a KOL's purchase is seen
    # by many more people, but each purchase leads to well under one more on average (the
    # cascade dies out rather than exploding).
    in_deg = world.graph.in_indptr[buyer + 1] - world.graph.in_indptr[buyer]
    expected = reach * np.sqrt(np.maximum(in_deg, 1) / world.mean_in_degree)
    rate = np.minimum(expected / np.maximum(in_deg, 1), 1.0)
    start = np.full(len(buyer), day_start, dtype=np.int64)
    return pushed_views(world, buyer, product, post, start, rate, FRIENDS, day_end, rng)


def _views_from_posts(world, linked, day_start, day_end, rng) -> Views:
    """Today's organic posts that link a product (KOL guides, reposts, people's picks)."""
    posts = world.posts
    created = posts.created_us[linked]
    today = linked[(created >= day_start) & (created <= day_end)]
    author = posts.author[today]
    is_kol = world.users.is_kol[author]
    cfg = world.config
    rate = np.where(is_kol, cfg.kol_exposure, min(0.5 * cfg.friend_reach / world.mean_in_degree, 1))
    rate = np.where(posts.kind[today] == REPOST, rate * 0.5, rate)
    cause = np.where(is_kol, KOL, FRIENDS).astype(np.int8)
    return pushed_views(
        world,
        author,
        posts.product[today],
        today,
        posts.created_us[today],
        rate,
        cause,
        day_end,
        rng,
    )


def _funnel(world: World, views: Views, day_end: int, rng: np.random.Generator):
    """Carts, favourites and purchases of a day's views; returns events and purchases."""
    cfg, cat, users = world.config, world.catalogue, world.users
    u, p = views.user, views.product
    match = world.interest_match(u, p)
    if len(world.vocab.events):
        ev = users.event[u]
        active = world.in_event(u, day_end - DAY_US + 1) & (ev >= 0)
        event_hit = active & world.event_leaf_mask[np.maximum(ev, 0), cat.leaf[p]]
        match = match + 0.6 * event_hit
    log_price_pref = np.log(world.vocab.price_median[cat.leaf[p]]) + users.price_offset[u]
    price_fit = -((np.log(cat.price[p]) - log_price_pref) ** 2) / (2 * 0.6**2)
    social = cfg.influence_strength * views.tie
    kol = np.where(views.cause == KOL, cfg.kol_influence, 0.0)
    score = (
        cfg.interest_strength * match
        + social
        + kol
        + 0.3 * np.log(cat.appeal[p])
        + cfg.price_sensitivity * price_fit
    )
    p_buy = _calibrated(score, cfg.purchase_rate)
    p_cart = _calibrated(0.8 * score, cfg.purchase_rate * CART_PER_VIEW / PURCHASE_PER_VIEW)
    p_fav = _calibrated(0.6 * score, cfg.purchase_rate * FAVORITE_PER_VIEW / PURCHASE_PER_VIEW)
    buy = rng.random(len(u)) < p_buy
    cart = rng.random(len(u)) < p_cart
    fav = rng.random(len(u)) < p_fav
    clicked = views.via_post >= 0  # a click-through from the post to the product page
    later = lambda mean: np.minimum(  # noqa: E731
        views.ts + rng.exponential(mean, len(u)).astype(np.int64), day_end
    )
    parts = [
        (clicked, views.ts, CLICK),
        (np.ones(len(u), dtype=bool), np.minimum(views.ts + 1, day_end), VIEW),
        (fav, later(300e6), FAVORITE),
        (cart, later(600e6), CART),
        (buy, later(1800e6), PURCHASE),
    ]
    user = np.concatenate([u[m] for m, _, _ in parts])
    product = np.concatenate([p[m] for m, _, _ in parts])
    ts = np.concatenate([t[m] for m, t, _ in parts])
    event = np.concatenate([np.full(int(m.sum()), e, dtype=np.int8) for m, _, e in parts])
    via = np.concatenate([views.via_post[m] for m, _, _ in parts])
    events = (user.astype(np.int32), product.astype(np.int32), ts, event, via)
    ts_buy = ts[event == PURCHASE]
    bought = (u[buy], p[buy], ts_buy, views.cause[buy], views.via_post[buy])
    return events, bought


def _calibrated(score: np.ndarray, target: float) -> np.ndarray:
    """``sigmoid(b + score)`` with the intercept ``b`` solved so the mean is ``target``.

    Solving per day keeps the event mix on target whatever the day's mix of views, while
    the *relative* effects of interest, ties, KOLs, appeal and price stay as drawn.
    """
    if len(score) == 0:
        return score
    lo, hi = -30.0, 10.0
    sample = score if len(score) <= 200_000 else score[:: len(score) // 200_000 + 1]
    for _ in range(35):
        b = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(b + sample)))) < target:
            lo = b
        else:
            hi = b
    return 1 / (1 + np.exp(-((lo + hi) / 2 + score)))


def _showoffs(world, buyer, product, ts, first_id, day_end, rng):
    """Some buyers who share their purchases post about them, linking the product."""
    cfg = world.config
    # Only people who post at all show off, and only those who share their purchases.
    sharing = world.users.shares[buyer] & world.posts.poster[buyer]
    posting = sharing & (rng.random(len(buyer)) < cfg.showoff_rate)
    idx = np.flatnonzero(posting)
    ids = first_id + np.arange(len(idx), dtype=np.int64)
    post_map = np.full(len(buyer), -1, dtype=np.int64)
    post_map[idx] = ids
    created = np.minimum(ts[idx] + rng.exponential(3600e6, len(idx)).astype(np.int64), day_end)
    return {
        "post_map": post_map,
        "post_id": ids,
        "user_id": buyer[idx],
        "product_id": product[idx],
        "created_us": created,
        "seed": rng.integers(0, 1 << 62),
    }


def _interactions_frame(chunks: list, timeline: Timeline) -> pd.DataFrame:
    """Concatenate the daily chunks column by column, freeing each day's arrays as it goes
    (the interactions of ``large`` are tens of millions of rows)."""
    columns = [list(col) for col in zip(*chunks, strict=True)]
    chunks.clear()

    def take(i: int, dtype=None) -> np.ndarray:
        parts, columns[i] = columns[i], []
        out = np.concatenate(parts)
        del parts
        return out if dtype is None else out.astype(dtype, copy=False)

    user, product = take(0, np.int64), take(1, np.int64)
    ts = timeline.to_timestamps(take(2))
    event = pd.Categorical.from_codes(take(3), EVENTS)
    via = take(4)
    via_arr = pa.array(via, mask=via < 0, type=pa.int64())
    del via
    return pd.DataFrame(
        {
            "user_id": user,
            "product_id": product,
            "event": event,
            "ts": ts,
            "via_post_id": pd.Series(pd.arrays.ArrowExtensionArray(via_arr)),
        },
        copy=False,
    )


def _causes_frame(chunks, timeline: Timeline) -> pd.DataFrame:
    user, product, ts, cause, via = (np.concatenate(x) for x in zip(*chunks, strict=True))
    return pd.DataFrame(
        {
            "user_id": user.astype(np.int64),
            "product_id": product.astype(np.int64),
            "ts": timeline.to_timestamps(ts),
            "cause": pd.Categorical.from_codes(cause.astype(np.int64), CAUSES).astype(str),
            "via_post_id": pd.Series(pd.arrays.ArrowExtensionArray(pa.array(via, mask=via < 0))),
        }
    )


def _showoff_frame(world: World, chunks) -> pd.DataFrame:
    from synthetic_data.post_text import showoff_texts

    ids = np.concatenate([c["post_id"] for c in chunks])
    user = np.concatenate([c["user_id"] for c in chunks])
    product = np.concatenate([c["product_id"] for c in chunks])
    created = np.concatenate([c["created_us"] for c in chunks])
    text_rng = np.random.default_rng([int(c["seed"]) for c in chunks] or [0])
    texts = showoff_texts(world.vocab, world.catalogue, product, text_rng)
    return pd.DataFrame(
        {
            "post_id": ids,
            "user_id": user,
            "created_us": created,
            "product_id": product,
            "text": texts,
            "kind": SHOWOFF,
        }
    )
