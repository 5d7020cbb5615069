"""Vectorised samplers shared by the generator stages (no Python loops over rows)."""

from __future__ import annotations

import numpy as np


def pareto_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of a continuous Pareto with tail exponent ``exponent`` and minimum 1.

    The density falls as ``x ** -exponent``, so degrees drawn in proportion to these weights
    have a power-law tail with the same exponent.
    """
    return (1.0 - rng.random(n)) ** (-1.0 / (exponent - 1.0))


def powerlaw_counts(
    n: int, mean: float, exponent: float, cap: int, rng: np.random.Generator, *, minimum: int = 1
) -> np.ndarray:
    """Integer counts with a power-law tail, mean close to ``mean`` and at most ``cap``.

    The scale is solved for numerically so that capping does not pull the mean down.
    """
    raw = pareto_weights(n, exponent, rng)
    lo, hi = 1e-3, float(mean) * 4
    for _ in range(40):  # bisection on the scale of the capped draw
        scale = (lo + hi) / 2
        if np.minimum(raw * scale, cap).mean() < mean:
            lo = scale
        else:
            hi = scale
    values = np.minimum(raw * scale, cap)
    # Stochastic rounding keeps the mean exact in expectation.
    counts = np.floor(values + rng.random(n)).astype(np.int64)
    return np.clip(counts, minimum, cap)


def segment_cdf(indptr: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A global cumulative array where segment ``i`` spans ``(i, i + 1]``.

    With it, :func:`sample_segments` draws one element of each requested segment in
    proportion to ``weights`` using a single ``searchsorted``.
    """
    n_segments = len(indptr) - 1
    seg_of = np.repeat(np.arange(n_segments), np.diff(indptr))
    totals = np.add.reduceat(weights, indptr[:-1]) if len(weights) else np.zeros(n_segments)
    totals = np.where(np.diff(indptr) > 0, totals, 1.0)
    cum = np.cumsum(weights)
    start_cum = np.concatenate([[0.0], cum])[indptr[:-1]]
    within = (cum - start_cum[seg_of]) / totals[seg_of]
    return seg_of + within


def sample_segments(
    indptr: np.ndarray, cdf: np.ndarray, segments: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """For each entry of ``segments``, the position of one element drawn from that segment.

    Segments must be non-empty. ``cdf`` comes from :func:`segment_cdf`.
    """
    draws = segments + rng.random(len(segments)) * (1 - 1e-12)
    pos = np.searchsorted(cdf, draws, side="left")
    return np.clip(pos, indptr[segments], indptr[segments + 1] - 1)


def dedupe_pairs(a: np.ndarray, b: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique ``(a, b)`` pairs (ids below ``n``), sorted by ``a`` then ``b``.

    Sorting packed int64 keys and masking equal neighbours is an order of magnitude faster
    than ``np.unique`` (hash-based in recent numpy) on tens of millions of keys.
    """
    keys = a.astype(np.int64) * n + b.astype(np.int64)
    keys.sort()
    keep = np.ones(len(keys), dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    keys = keys[keep]
    return keys // n, keys % n


def rank_within_groups(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random rank (0, 1, ...) of each element among the elements of its group."""
    order = np.lexsort((rng.random(len(groups)), groups))
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    ranks = np.empty(len(groups), dtype=np.int64)
    ranks[order] = np.arange(len(groups)) - run_start
    return ranks
