"""Post text: phrases, hashtags and @mentions assembled with Arrow string kernels.

Millions of posts are written by ``take``-ing from small phrase pools and joining columns in
C++, not by formatting strings one by one in Python; only posts that name a specific
product (KOL guides, buyers' show-offs) go through ``str.format``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from synthetic_data.posts import CHATTER, GUIDE, INTEREST, LIFE_EVENT, REPOST

HASHTAG_FACTOR = {CHATTER: 0.25, INTEREST: 1.0, LIFE_EVENT: 2.0, GUIDE: 1.5, REPOST: 0.0}


class Pool:
    """Phrase lists flattened into one Arrow array with per-group offsets."""

    def __init__(self, groups: list[tuple[str, ...]] | tuple[tuple[str, ...], ...]) -> None:
        self.values = pa.array([s for g in groups for s in g], type=pa.string())
        self.lengths = np.array([len(g) for g in groups], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])

    def draw_index(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.offsets[group] + rng.integers(0, 1 << 30, len(group)) % self.lengths[group]

    def draw(self, group: np.ndarray, rng: np.random.Generator) -> pa.Array:
        return self.values.take(pa.array(self.draw_index(group, rng)))


def assemble_texts(config, vocab, users, graph, catalogue, author, kind, leaf, product, rng):
    """Return ``(text, hashtags, mentions)`` Arrow arrays for the given posts."""
    m = len(author)
    g = vocab.general
    phrase_rng, tag_rng, mention_rng, guide_rng = rng.spawn(4)
    text = pa.nulls(m, pa.string())

    def fill(mask: np.ndarray, values: pa.Array) -> pa.Array:
        if not mask.any():
            return text
        positions = np.where(mask, np.cumsum(mask) - 1, 0)
        return pc.if_else(pa.array(mask), values.take(pa.array(positions)), text)

    def zeros(mask: np.ndarray) -> np.ndarray:
        return np.zeros(int(mask.sum()), dtype=np.int64)

    chatter, interest, events = kind == CHATTER, kind == INTEREST, kind == LIFE_EVENT
    reposts, guides = kind == REPOST, kind == GUIDE
    text = fill(chatter, Pool([g["chatter"]]).draw(zeros(chatter), phrase_rng))
    text = fill(interest, Pool([w.phrases for w in vocab.words]).draw(leaf[interest], phrase_rng))
    text = fill(events, Pool(vocab.event_phrases).draw(users.event[author[events]], phrase_rng))
    text = fill(reposts, Pool([g["repost"]]).draw(zeros(reposts), phrase_rng))
    guide_text = guide_texts(vocab, catalogue, product[guides], guide_rng)
    text = fill(guides, pa.array(guide_text, pa.string()))

    hashtags, first_tag, has_tag = _hashtags(config, vocab, users, author, kind, leaf, tag_rng)
    if has_tag.any():
        suffix = "#" if vocab.lang == "zh" else ""
        written = pc.binary_join_element_wise(pa.scalar("#"), first_tag, pa.scalar(suffix), "")
        joined = (
            pc.binary_join_element_wise(written, text, " ")
            if vocab.lang == "zh"
            else pc.binary_join_element_wise(text, written, " ")
        )
        text = pc.if_else(pa.array(has_tag), joined, text)

    mentions, mention_handle = _mentions(config, users, graph, author, kind, mention_rng)
    has_mention = mention_handle is not None
    if has_mention:
        mask = np.asarray(pc.list_value_length(mentions).to_numpy(zero_copy_only=False)) > 0
        template = Pool([g["mention"]])
        # "{handle}" templates are filled by splitting around the placeholder.
        chosen = template.draw_index(np.zeros(m, dtype=np.int64), mention_rng)
        parts = [str(s).split("{handle}", 1) for s in template.values.to_pylist()]
        before = pa.array([p[0] for p in parts]).take(pa.array(chosen))
        after = pa.array([p[1] if len(p) > 1 else "" for p in parts]).take(pa.array(chosen))
        mention_text = pc.binary_join_element_wise(before, mention_handle, after, "")
        joined = pc.binary_join_element_wise(text, mention_text, " ")
        text = pc.if_else(pa.array(mask), joined, text)
    return text, hashtags, mentions


def _hashtags(config, vocab, users, author, kind, leaf, rng):
    m = len(author)
    factor = np.zeros(m)
    for k, f in HASHTAG_FACTOR.items():
        factor[kind == k] = f
    has = rng.random(m) < np.minimum(config.hashtag_rate * factor, 1.0)
    tag_index = np.full(m, -1, dtype=np.int64)
    leaf_tags = Pool([w.hashtags for w in vocab.words])
    event_tags = Pool(vocab.event_hashtags)
    chatter_tags = Pool([vocab.general["chatter_hashtags"]])
    n_leaf = len(leaf_tags.values)
    n_event = len(event_tags.values)
    topical = has & (leaf >= 0) & (kind != LIFE_EVENT)
    tag_index[topical] = leaf_tags.draw_index(leaf[topical], rng)
    ev = has & (kind == LIFE_EVENT)
    tag_index[ev] = n_leaf + event_tags.draw_index(users.event[author[ev]], rng)
    plain = has & (tag_index < 0)
    tag_index[plain] = (
        n_leaf + n_event + chatter_tags.draw_index(np.zeros(plain.sum(), dtype=np.int64), rng)
    )
    all_tags = pa.concat_arrays([leaf_tags.values, event_tags.values, chatter_tags.values])
    present = tag_index >= 0
    values = all_tags.take(pa.array(tag_index[present]))
    offsets = np.concatenate([[0], np.cumsum(present)]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), values)
    first = pc.if_else(
        pa.array(present), all_tags.take(pa.array(np.maximum(tag_index, 0))), pa.scalar("")
    )
    return lists, first, present


def _mentions(config, users, graph, author, kind, rng):
    """@mention one person the author follows, in a share of original posts."""
    m = len(author)
    out_len = graph.indptr[author + 1] - graph.indptr[author]
    has = (rng.random(m) < config.mention_rate) & (out_len > 0) & (kind != REPOST)
    idx = np.flatnonzero(has)
    target = graph.followee[
        graph.indptr[author[idx]] + np.floor(rng.random(len(idx)) * out_len[idx]).astype(np.int64)
    ]
    offsets = np.concatenate([[0], np.cumsum(has)]).astype(np.int32)
    mentions = pa.ListArray.from_arrays(pa.array(offsets), pa.array(target, pa.int64()))
    if not len(idx):
        return mentions, None
    handles = pa.array(np.asarray(users.frame["handle"].to_numpy(), dtype=object), pa.string())
    mentioned = np.zeros(m, dtype=np.int64)
    mentioned[idx] = target
    return mentions, handles.take(pa.array(mentioned))


def guide_texts(vocab, catalogue, products: np.ndarray, rng: np.random.Generator) -> list[str]:
    """KOL shopping-guide posts naming a product, its brand and price."""
    templates = vocab.general["guide"]
    return _product_texts(templates, catalogue, products, rng)


def showoff_texts(vocab, catalogue, products: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Buyers showing off what they bought."""
    return _product_texts(vocab.general["showoff"], catalogue, products, rng)


def _product_texts(templates, catalogue, products, rng) -> list[str]:
    frame = catalogue.frame
    titles = catalogue.noun[products]
    brands = frame["brand"].to_numpy()[products]
    prices = catalogue.price[products]
    picks = rng.integers(0, len(templates), len(products))
    return [
        templates[t].format(product=title, brand=brand, price=f"{price:g}")
        for t, title, brand, price in zip(picks, titles, brands, prices, strict=True)
    ]
