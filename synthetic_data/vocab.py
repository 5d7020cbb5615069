"""The generator's vocabularies: the category tree and the words of each language.

The data lives in ``synthetic_data/vocab/`` as TOML: ``categories.toml`` holds the
language-independent facts (the Taobao-like category tree, prices, demographic taste,
life events) and ``en.toml`` / ``zh.toml`` the words (product nouns, brands, hashtags,
post phrases, templates) keyed by the same category paths.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

AGE_BANDS = ("<18", "18-24", "25-34", "35-44", "45+")
LEAF_WORD_FIELDS = ("nouns", "adjectives", "brands", "hashtags", "features", "phrases")


@dataclass(frozen=True)
class LeafWords:
    name: str
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    brands: tuple[str, ...]
    hashtags: tuple[str, ...]
    features: tuple[str, ...]
    phrases: tuple[str, ...]


@dataclass(frozen=True)
class Vocabulary:
    """Category tree, taste and words of one language, as arrays indexed by leaf."""

    lang: str
    leaves: tuple[str, ...]
    top_levels: tuple[str, ...]
    leaf_top: np.ndarray
    price_median: np.ndarray
    price_sigma: np.ndarray
    popularity: np.ndarray
    taste_gender: np.ndarray
    """Shape (n_leaves, 2): multipliers for female, male."""
    taste_age: np.ndarray
    """Shape (n_leaves, 5): multipliers per age band of :data:`AGE_BANDS`."""
    taste_tier: np.ndarray
    words: tuple[LeafWords, ...]
    events: tuple[str, ...]
    event_leaves: tuple[np.ndarray, ...]
    event_gender: np.ndarray
    event_age: np.ndarray
    event_phrases: tuple[tuple[str, ...], ...]
    event_hashtags: tuple[tuple[str, ...], ...]
    general: dict[str, tuple[str, ...]]

    @property
    def n_leaves(self) -> int:
        return len(self.leaves)

    def hashtag_text(self, tag: str) -> str:
        """A hashtag as written in a post: ``#tag`` in English, ``#话题#`` on Weibo."""
        return f"#{tag}#" if self.lang == "zh" else f"#{tag}"


def _read(name: str) -> dict[str, Any]:
    text = resources.files("synthetic_data").joinpath("vocab", name).read_text(encoding="utf-8")
    return tomllib.loads(text)


@functools.cache
def load_vocabulary(lang: str) -> Vocabulary:
    """Load and cross-check the vocabulary of ``lang`` (``en`` or ``zh``)."""
    cats = _read("categories.toml")
    words = _read(f"{lang}.toml")
    leaf_specs = cats["leaf"]
    leaves = tuple(spec["path"] for spec in leaf_specs)
    tops = tuple(dict.fromkeys(path.split("/")[0] for path in leaves))
    leaf_words = []
    for path in leaves:
        entry = words["leaf"].get(path)
        if entry is None:
            raise ValueError(f"vocab/{lang}.toml: no words for category {path!r}")
        missing = [f for f in ("name", *LEAF_WORD_FIELDS) if not entry.get(f)]
        if missing:
            raise ValueError(f"vocab/{lang}.toml: category {path!r} lacks {missing}")
        leaf_words.append(LeafWords(entry["name"], *(tuple(entry[f]) for f in LEAF_WORD_FIELDS)))
    index = {path: i for i, path in enumerate(leaves)}
    events = cats["life_event"]
    for event in events:
        if event["key"] not in words["life_event"]:
            raise ValueError(f"vocab/{lang}.toml: no words for life event {event['key']!r}")
    return Vocabulary(
        lang=lang,
        leaves=leaves,
        top_levels=tops,
        leaf_top=np.array([tops.index(p.split("/")[0]) for p in leaves]),
        price_median=np.array([s["price_median"] for s in leaf_specs], dtype=float),
        price_sigma=np.array([s["price_sigma"] for s in leaf_specs], dtype=float),
        popularity=np.array([s["popularity"] for s in leaf_specs], dtype=float),
        taste_gender=np.array([[s["female"], s["male"]] for s in leaf_specs], dtype=float),
        taste_age=np.array([[s["age"][b] for b in AGE_BANDS] for s in leaf_specs], dtype=float),
        taste_tier=np.array([s.get("tier", 0.0) for s in leaf_specs], dtype=float),
        words=tuple(leaf_words),
        events=tuple(e["key"] for e in events),
        event_leaves=tuple(np.array([index[p] for p in e["leaves"]]) for e in events),
        event_gender=np.array([[e.get("female", 1.0), e.get("male", 1.0)] for e in events]),
        event_age=np.array([[e.get("age", {}).get(b, 1.0) for b in AGE_BANDS] for e in events]),
        event_phrases=tuple(tuple(words["life_event"][e["key"]]["phrases"]) for e in events),
        event_hashtags=tuple(tuple(words["life_event"][e["key"]]["hashtags"]) for e in events),
        general={k: tuple(v) for k, v in words["general"].items()},
    )
