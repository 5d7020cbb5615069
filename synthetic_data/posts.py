"""Stage 5: microblog posts and reposts over the simulated days.

Most accounts never post and a few write most posts (log-normal posting rates). A post is
everyday chatter, talk about one of the author's interests, a life event that signals
buying intent ("trying to lose weight before summer"), a KOL shopping guide linking a
product, or a repost of a post by someone the author follows — so reposts cascade along
follows, and most posts are never reposted. Buyers' show-off posts are written later, by
the behaviour stage, when the purchase happens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from synthetic_data.catalogue import Catalogue
from synthetic_data.config import GeneratorConfig
from synthetic_data.graph import FollowGraph
from synthetic_data.sampling import sample_segments, segment_cdf
from synthetic_data.timeline import DAY_US, Timeline
from synthetic_data.users import Users
from synthetic_data.vocab import Vocabulary

KINDS = ("chatter", "interest", "life_event", "guide", "repost", "showoff")
CHATTER, INTEREST, LIFE_EVENT, GUIDE, REPOST, SHOWOFF = range(len(KINDS))


@dataclass
class Posts:
    """Posts as columns (index = post id, ordered by time) plus their latent kind."""

    author: np.ndarray
    created_us: np.ndarray
    kind: np.ndarray
    leaf: np.ndarray
    """The category leaf a post is about, -1 for none."""
    product: np.ndarray
    """Linked product, -1 for none."""
    repost_of: np.ndarray
    """Parent post, -1 for none."""
    text: pa.Array
    hashtags: pa.Array
    mentions: pa.Array
    poster: np.ndarray
    """Per user: whether this person posts at all (silent accounts never do)."""

    @property
    def n(self) -> int:
        return len(self.author)

    def frame(self, timeline: Timeline) -> pd.DataFrame:
        def nullable(values: np.ndarray) -> pd.Series:
            return pd.Series(pd.array(np.where(values >= 0, values, 0), dtype="Int64")).where(
                values >= 0, pd.NA
            )

        return pd.DataFrame(
            {
                "post_id": np.arange(self.n, dtype=np.int64),
                "user_id": self.author,
                "created_ts": timeline.to_timestamps(self.created_us),
                "text": pd.Series(pd.arrays.ArrowExtensionArray(self.text)),
                "hashtags": pd.Series(pd.arrays.ArrowExtensionArray(self.hashtags)),
                "mentions": pd.Series(pd.arrays.ArrowExtensionArray(self.mentions)),
                "repost_of": nullable(self.repost_of),
                "product_id": nullable(self.product),
            }
        )


def make_posts(
    config: GeneratorConfig,
    vocab: Vocabulary,
    users: Users,
    graph: FollowGraph,
    catalogue: Catalogue,
    timeline: Timeline,
    *,
    rng: np.random.Generator,
) -> Posts:
    """Draw every organic post of the simulated period."""
    count_rng, time_rng, kind_rng, topic_rng, repost_rng, text_rng = rng.spawn(6)
    author, created, forced, poster = _post_slots(config, users, timeline, count_rng, time_rng)
    kind, leaf, product = _post_topics(
        config, vocab, users, catalogue, author, created, forced, timeline, kind_rng, topic_rng
    )
    order = np.argsort(created, kind="stable")
    author, created, kind, leaf, product = (
        a[order] for a in (author, created, kind, leaf, product)
    )
    repost_of = _repost_parents(users.n, graph, author, created, kind, repost_rng)
    kind[(kind == REPOST) & (repost_of < 0)] = CHATTER
    # A repost shares what the original links: follow each chain to its root first.
    root = np.arange(len(repost_of))
    pending = np.flatnonzero(repost_of >= 0)
    while len(pending):
        root[pending] = repost_of[root[pending]]
        pending = pending[repost_of[root[pending]] >= 0]
    product, leaf = product[root], leaf[root]
    text, hashtags, mentions = write_texts(
        config, vocab, users, graph, catalogue, author, kind, leaf, product, text_rng
    )
    return Posts(author, created, kind, leaf, product, repost_of, text, hashtags, mentions, poster)


def _post_slots(config, users, timeline, count_rng, time_rng):
    """Who posts how often: most never, a few very often (log-normal rates)."""
    n = users.n
    poster = (count_rng.random(n) >= config.silent_share) | users.is_kol
    sigma = config.poster_concentration
    mean_extra = max(config.posts_per_poster - 1, 0.0)
    rate = count_rng.lognormal(np.log(max(mean_extra, 1e-9)) - sigma**2 / 2, sigma, n)
    rate *= np.sqrt(users.activity / users.activity.mean())
    rate[users.is_kol] *= 5
    counts = np.where(poster, 1 + count_rng.poisson(np.minimum(rate, 50 * timeline.n_days)), 0)
    author = np.repeat(np.arange(n, dtype=np.int64), counts)
    created = timeline.start_us + (time_rng.random(len(author)) * timeline.n_days * DAY_US).astype(
        np.int64
    )
    # Everyone living through a life event who posts at all writes about it on its first day.
    event_posters = np.flatnonzero(poster & (users.event >= 0))
    event_time = timeline.day_start(users.event_day[event_posters]) + (
        time_rng.random(len(event_posters)) * DAY_US
    ).astype(np.int64)
    forced = np.r_[np.zeros(len(author), dtype=bool), np.ones(len(event_posters), dtype=bool)]
    return np.r_[author, event_posters], np.r_[created, event_time], forced, poster


def _post_topics(
    config, vocab, users, catalogue, author, created, forced, timeline, kind_rng, topic_rng
):
    m = len(author)
    u = kind_rng.random(m)
    kind = np.full(m, CHATTER, dtype=np.int64)
    kind[u < config.interest_post_share] = INTEREST
    kind[
        (u >= config.interest_post_share) & (u < config.interest_post_share + config.repost_share)
    ] = REPOST
    kol = users.is_kol[author]
    kind[kol & (kind_rng.random(m) < config.kol_guide_share)] = GUIDE
    # Posts during someone's life event are often about it; the forced first-day post is.
    day = (created - timeline.start_us) // DAY_US
    ev = users.event[author]
    in_event = (
        (ev >= 0)
        & (day >= users.event_day[author])
        & (day < users.event_day[author] + config.life_event_days)
    )
    kind[in_event & (kind_rng.random(m) < 0.4) & (kind != GUIDE)] = LIFE_EVENT
    kind[forced] = LIFE_EVENT

    leaf = np.full(m, -1, dtype=np.int64)
    product = np.full(m, -1, dtype=np.int64)
    topical = (kind == INTEREST) | (kind == GUIDE)
    interest_cdf = segment_cdf(users.interest_indptr, users.interest_weight)
    pos = sample_segments(users.interest_indptr, interest_cdf, author[topical], topic_rng)
    leaf[topical] = users.interest_leaf[pos]
    events = kind == LIFE_EVENT
    width = max(len(x) for x in vocab.event_leaves)
    table = np.array([np.resize(x, width) for x in vocab.event_leaves])  # padded by repeats
    lengths = np.array([len(x) for x in vocab.event_leaves])
    ev_idx = ev[events]
    pick = topic_rng.integers(0, 1 << 30, events.sum()) % lengths[ev_idx]
    leaf[events] = table[ev_idx, pick]
    linking = (kind == GUIDE) | (
        (kind == INTEREST) & (topic_rng.random(m) < config.interest_link_rate)
    )
    product[linking] = sample_segments(
        catalogue.leaf_indptr, catalogue.leaf_cdf, leaf[linking], topic_rng
    )
    return kind, leaf, product


def _repost_parents(n_users, graph, author, created, kind, rng):
    """Each repost shares a recent post of someone the author follows (maybe itself a repost)."""
    m = len(author)
    repost_of = np.full(m, -1, dtype=np.int64)
    slots = np.flatnonzero(kind == REPOST)
    out_len = graph.indptr[author[slots] + 1] - graph.indptr[author[slots]]
    slots, out_len = slots[out_len > 0], out_len[out_len > 0]
    if len(slots) == 0:
        return repost_of
    followee = graph.followee[
        graph.indptr[author[slots]] + np.floor(rng.random(len(slots)) * out_len).astype(np.int64)
    ]
    seconds = (created - created.min()) // 1_000_000
    span = int(seconds.max()) + 2
    by_author = np.lexsort((seconds, author))
    keys = author[by_author] * span + seconds[by_author]
    first = np.searchsorted(author[by_author], np.arange(n_users))
    pos = np.searchsorted(keys, followee * span + seconds[slots], side="left")
    before = pos - first[followee]
    ok = before > 0
    back = 1 + np.floor(rng.random(ok.sum()) * np.minimum(before[ok], 5)).astype(np.int64)
    repost_of[slots[ok]] = by_author[pos[ok] - back]
    return repost_of


def write_texts(config, vocab, users, graph, catalogue, author, kind, leaf, product, rng):
    """Text, hashtags and mentions of each post, assembled with Arrow string kernels."""
    from synthetic_data.post_text import assemble_texts

    return assemble_texts(config, vocab, users, graph, catalogue, author, kind, leaf, product, rng)
