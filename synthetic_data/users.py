"""Stage 1: people — demographics, latent interests shaped by them, activity, KOLs, life events."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from synthetic_data.config import GeneratorConfig
from synthetic_data.sampling import dedupe_pairs
from synthetic_data.timeline import Timeline
from synthetic_data.vocab import AGE_BANDS, Vocabulary

GENDERS = ("female", "male")
AGE_SHARES = np.array([0.07, 0.30, 0.35, 0.17, 0.11])
TIER_SHARES = np.array([0.12, 0.20, 0.25, 0.23, 0.20])


@dataclass
class Users:
    """The users table plus the latent state later stages need (index = user id)."""

    frame: pd.DataFrame
    gender: np.ndarray
    age: np.ndarray
    tier: np.ndarray
    is_kol: np.ndarray
    shares: np.ndarray
    activity: np.ndarray
    interest_indptr: np.ndarray
    interest_leaf: np.ndarray
    interest_weight: np.ndarray
    community: np.ndarray
    price_offset: np.ndarray
    event: np.ndarray
    """Index of the user's life event, -1 for none."""
    event_day: np.ndarray
    signup_us: np.ndarray

    @property
    def n(self) -> int:
        return len(self.gender)


def make_users(
    config: GeneratorConfig, vocab: Vocabulary, timeline: Timeline, *, rng: np.random.Generator
) -> Users:
    """Draw ``config.n_users`` people and their latent tastes."""
    n = config.n_users
    demo_rng, interest_rng, event_rng, handle_rng = rng.spawn(4)
    gender = (demo_rng.random(n) >= config.female_share).astype(np.int64)
    age = demo_rng.choice(len(AGE_SHARES), size=n, p=AGE_SHARES)
    tier = demo_rng.choice(len(TIER_SHARES), size=n, p=TIER_SHARES) + 1
    is_kol = np.zeros(n, dtype=bool)
    is_kol[demo_rng.choice(n, size=config.n_kols, replace=False)] = True
    activity = demo_rng.lognormal(-0.5, 1.0, size=n)
    activity[is_kol] *= 3.0
    mobile = demo_rng.random(n) < config.mobile_share
    shares = (demo_rng.random(n) < config.share_purchases_rate) | is_kol
    signup_us = timeline.start_us - (
        demo_rng.random(n) * config.signup_years * 365 * 86_400e6
    ).astype(np.int64)
    price_offset = demo_rng.normal(0.0, 0.3, size=n) + 0.08 * (3 - tier) + 0.05 * (age - 2)

    indptr, leaf, weight = _draw_interests(config, vocab, gender, age, tier, interest_rng)
    community = leaf[indptr[:-1]]  # the strongest interest, first in each row
    event, event_day = _draw_life_events(config, vocab, gender, age, event_rng)
    handles = _make_handles(vocab, is_kol, handle_rng)
    frame = pd.DataFrame(
        {
            "user_id": np.arange(n, dtype=np.int64),
            "handle": handles,
            "gender": pd.Categorical.from_codes(gender, GENDERS).astype(str),
            "age_band": pd.Categorical.from_codes(age, AGE_BANDS).astype(str),
            "city_tier": tier.astype(np.int64),
            "device": np.where(mobile, "mobile", "desktop"),
            "is_kol": is_kol,
            "share_purchases": shares,
            "signup_ts": timeline.to_timestamps(signup_us),
        }
    )
    return Users(
        frame=frame,
        gender=gender,
        age=age,
        tier=tier,
        is_kol=is_kol,
        shares=shares,
        activity=activity,
        interest_indptr=indptr,
        interest_leaf=leaf,
        interest_weight=weight,
        community=community,
        price_offset=price_offset,
        event=event,
        event_day=event_day,
        signup_us=signup_us,
    )


def _taste(vocab: Vocabulary, gender: int, age: int, tier: int) -> np.ndarray:
    taste = vocab.popularity * vocab.taste_gender[:, gender] * vocab.taste_age[:, age]
    return taste * np.exp(vocab.taste_tier * (3 - tier))


def _draw_interests(config, vocab, gender, age, tier, rng):
    """Each person's interest leaves and weights; the strongest comes first in each row.

    Demographics pick which leaves are likely (explicit information shapes taste); the
    weights are Dirichlet, so some people are focused and others broad.
    """
    n = len(gender)
    k = 1 + rng.poisson(max(config.interests_per_user - 1, 0), size=n)
    k = np.minimum(k, vocab.n_leaves)
    draws_per_user = k + 4
    segment = (gender * len(AGE_BANDS) + age) * 5 + (tier - 1)
    n_segments = 2 * len(AGE_BANDS) * 5
    cdfs = np.stack(
        [np.cumsum(_taste(vocab, s // 25, (s // 5) % 5, s % 5 + 1)) for s in range(n_segments)]
    )
    cdfs /= cdfs[:, -1:]
    users = np.repeat(np.arange(n), draws_per_user)
    u = rng.random(len(users))
    seg_of = segment[users]
    leaf = _search_rows(cdfs, seg_of, u)
    users, leaf = dedupe_pairs(users, leaf, vocab.n_leaves)
    # Shuffle within each user, then keep the first k distinct draws.
    priority = users * (1 << 31) + rng.integers(0, 1 << 31, size=len(users))
    order = np.argsort(priority)
    users, leaf = users[order], leaf[order]
    rank = np.arange(len(users)) - np.searchsorted(users, users, side="left")
    keep = rank < k[users]
    users, leaf = users[keep], leaf[keep]
    weight = rng.gamma(config.interest_concentration, size=len(users))
    counts = np.bincount(users, minlength=n)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    totals = np.add.reduceat(weight, indptr[:-1])
    weight = weight / totals[users]
    order = np.lexsort((-weight, users))
    return indptr, leaf[order], weight[order]


def _search_rows(cdfs: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling where each draw uses its own row of ``cdfs`` (rows sum to 1)."""
    width = cdfs.shape[1]
    shifted = (cdfs + np.arange(len(cdfs))[:, None]).ravel()
    pos = np.searchsorted(shifted, rows + u * (1 - 1e-12), side="right")
    return np.clip(pos - rows * width, 0, width - 1)


def _draw_life_events(config, vocab, gender, age, rng):
    n = len(gender)
    n_events = len(vocab.events)
    event = np.full(n, -1, dtype=np.int64)
    has = rng.random(n) < config.life_event_rate
    idx = np.flatnonzero(has)
    if n_events and len(idx):
        weights = vocab.event_gender[:, gender[idx]].T * vocab.event_age[:, age[idx]].T
        cdfs = np.cumsum(weights, axis=1)
        cdfs /= cdfs[:, -1:]
        u = rng.random(len(idx))
        event[idx] = (cdfs < u[:, None]).sum(axis=1).clip(0, n_events - 1)
    # An event starts early enough in the period that its posts can precede its purchases.
    event_day = rng.integers(0, max(1, config.n_days - 3), size=n)
    event_day[event < 0] = -1
    return event, event_day


def _make_handles(vocab: Vocabulary, is_kol: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(is_kol)
    first = pa.array(vocab.general["handle_first"])
    second = pa.array(vocab.general["handle_second"])
    kol = pa.array(vocab.general["kol_handle_suffix"])
    a = first.take(pa.array(rng.integers(0, len(first), n)))
    b = second.take(pa.array(rng.integers(0, len(second), n)))
    k = kol.take(pa.array(rng.integers(0, len(kol), n)))
    b = pc.if_else(pa.array(is_kol), k, b)
    handles = pc.binary_join_element_wise(a, b, "")
    # Weibo handles are unique: add a number where the two words collide.
    dup = pd.Series(handles.to_numpy(zero_copy_only=False)).duplicated(keep="first").to_numpy()
    numbers = pc.cast(pa.array(np.arange(n)), pa.string())
    with_num = pc.binary_join_element_wise(handles, numbers, "")
    out = pc.if_else(pa.array(dup), with_num, handles).to_numpy(zero_copy_only=False)
    still = pd.Series(out).duplicated(keep="first").to_numpy()
    out[still] = [f"{h}_{i}" for h, i in zip(out[still], np.flatnonzero(still), strict=True)]
    return out
