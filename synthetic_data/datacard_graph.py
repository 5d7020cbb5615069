"""Follow-graph statistics for the data card: reciprocity, clustering, power-law tails.

Everything runs in dense index space on numpy arrays (sorting and ``searchsorted``, no
Python loops over edges), so a graph of ten million follows is measured in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import zeta

MAX_EXACT_WEDGES = 2_000_000
"""Up to this many wedges (connected triples) clustering is counted exactly."""

N_WEDGE_SAMPLES = 200_000
"""Wedges sampled to estimate clustering on larger graphs."""

MIN_RANDOM_EDGES = 100_000
MAX_RANDOM_GRAPHS = 20
"""Random baselines pool enough configuration-model graphs for this many edges (at most
``MAX_RANDOM_GRAPHS`` graphs), so that a small graph's baseline is not one noisy draw."""

N_KMIN_CANDIDATES = 50
"""The power-law ``k_min`` is searched over at most this many quantiles of the data."""

MIN_TAIL = 10
"""Fewest observations in a power-law tail that are fitted at all."""


@dataclass(frozen=True)
class PowerLawFit:
    """A discrete power law ``p(k) ∝ k^-alpha`` fitted to the tail ``k >= k_min``."""

    alpha: float
    k_min: int
    ks_distance: float
    n_tail: int


@dataclass(frozen=True)
class UndirectedGraph:
    """The undirected simple graph of the follows, as a symmetric CSR structure.

    ``indices[indptr[u]:indptr[u + 1]]`` are the sorted neighbours of node ``u``.
    """

    n_nodes: int
    indptr: np.ndarray
    indices: np.ndarray

    @property
    def degrees(self) -> np.ndarray:
        return np.diff(self.indptr)


@dataclass(frozen=True)
class Clustering:
    """Global clustering (transitivity) and what random graphs of the same degrees give.

    ``random_baseline`` is measured on configuration-model graphs (stub matching, multi-edges
    and self-loops erased) with this graph's degree sequence; ``random_formula`` is the
    closed form ``(<k^2> - <k>)^2 / (<k>^3 n)`` (Newman 2003), which holds only below the
    structural cutoff ``k_max ~ sqrt(<k> n)`` and overshoots, even past 1, on the heavy
    tails of follow graphs.
    """

    value: float | None
    random_baseline: float | None
    random_formula: float | None
    sampled: bool
    average: float | None = None
    """Average local clustering (Watts & Strogatz) over nodes with degree >= 2."""
    average_random: float | None = None
    """The same on the configuration-model graphs."""


# --------------------------------------------------------------------- indexing
def dense_index(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Positions of ``values`` in ``ids`` (-1 for values not in ``ids``)."""
    ids = np.asarray(ids, dtype=np.int64)
    values = np.asarray(values, dtype=np.int64)
    if len(ids) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    lo, hi = int(ids.min()), int(ids.max())
    if lo >= 0 and hi < 4 * len(ids) + 1024:
        # Compact ids (the usual case): one gather through a lookup table, no search.
        table = np.full(hi + 2, -1, dtype=np.int64)
        table[ids] = np.arange(len(ids))
        return table[np.where((values >= 0) & (values <= hi), values, hi + 1)]
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    pos = np.minimum(np.searchsorted(sorted_ids, values), len(ids) - 1)
    return np.where(sorted_ids[pos] == values, order[pos], -1)


# ------------------------------------------------------------------ reciprocity
def follow_matrix(src: np.ndarray, dst: np.ndarray, n_nodes: int) -> sp.csr_matrix:
    """The directed 0/1 adjacency matrix of edges ``src -> dst``, without self-loops."""
    keep = src != dst
    ones = np.ones(np.count_nonzero(keep), dtype=np.int32)
    adj = sp.csr_matrix((ones, (src[keep], dst[keep])), shape=(n_nodes, n_nodes))
    adj.data[:] = 1  # duplicate edges were summed
    return adj


def reciprocity(adj: sp.csr_matrix) -> tuple[float, float] | None:
    """Edge and pair reciprocity of a directed 0/1 adjacency matrix (None without edges).

    Edge reciprocity is the share of edges ``u -> v`` whose reverse ``v -> u`` exists; pair
    reciprocity is mutual pairs over connected (unordered) pairs.
    """
    if adj.nnz == 0:
        return None
    reciprocated = adj.multiply(adj.T.tocsr()).nnz  # edges whose reverse exists
    mutual_pairs = reciprocated // 2
    connected_pairs = adj.nnz - mutual_pairs  # a mutual pair holds two edges
    return reciprocated / adj.nnz, mutual_pairs / connected_pairs


def undirected_graph(adj: sp.csr_matrix) -> UndirectedGraph:
    """The undirected simple graph of a directed 0/1 adjacency matrix without self-loops."""
    sym = (adj + adj.T).tocsr()
    sym.sort_indices()
    return UndirectedGraph(adj.shape[0], sym.indptr.astype(np.int64), sym.indices.astype(np.int64))


# ------------------------------------------------------------------- clustering
def global_clustering(
    graph: UndirectedGraph,
    *,
    rng: int | np.random.Generator | None = 0,
    max_exact_wedges: int = MAX_EXACT_WEDGES,
    n_samples: int = N_WEDGE_SAMPLES,
) -> Clustering:
    """Transitivity ``3 × triangles / connected triples`` and its random-graph baselines.

    Counted exactly when the graph has at most ``max_exact_wedges`` wedges, otherwise
    estimated from ``n_samples`` wedges drawn uniformly (a wedge is closed when its two
    end points are adjacent). The same is measured on configuration-model graphs with the
    same degrees: one for a large graph, several (pooled) for a small one.
    """
    deg = graph.degrees.astype(np.float64)
    if not (deg > 1).any():
        return Clustering(None, None, None, sampled=False)
    rng = np.random.default_rng(rng)
    closed, wedges, sampled = _transitivity(graph, rng, max_exact_wedges, n_samples)
    mean_k, mean_k2 = deg.mean(), (deg**2).mean()
    formula = (mean_k2 - mean_k) ** 2 / (mean_k**3 * graph.n_nodes)
    n_edges = len(graph.indices) // 2
    closed_random = wedges_random = 0.0
    averages_random = []
    for _ in range(int(np.clip(np.ceil(MIN_RANDOM_EDGES / n_edges), 1, MAX_RANDOM_GRAPHS))):
        random_graph = configuration_model(graph.degrees, rng=rng)
        c, w, _ = _transitivity(random_graph, rng, max_exact_wedges, n_samples)
        closed_random, wedges_random = closed_random + c, wedges_random + w
        averages_random.append(average_clustering(random_graph, rng=rng, n_samples=n_samples))
    baseline = closed_random / wedges_random if wedges_random else None
    average = average_clustering(graph, rng=rng, n_samples=n_samples)
    measured = [a for a in averages_random if a is not None]
    average_random = float(np.mean(measured)) if measured else None
    return Clustering(closed / wedges, baseline, float(formula), sampled, average, average_random)


def average_clustering(
    graph: UndirectedGraph,
    *,
    rng: int | np.random.Generator | None = 0,
    n_samples: int = N_WEDGE_SAMPLES,
) -> float | None:
    """Average local clustering over nodes of degree >= 2, estimated by sampling.

    Each sample is a node drawn uniformly, then one of its wedges drawn uniformly; the
    share of closed sampled wedges estimates the mean of the nodes' local clustering. Unlike
    transitivity, which the wedges around a few huge accounts dominate, this says how
    tightly knit ordinary people's neighbourhoods are (Watts & Strogatz 1998).
    """
    rng = np.random.default_rng(rng)
    deg = graph.degrees
    eligible = np.flatnonzero(deg >= 2)
    if len(eligible) == 0:
        return None
    centres = eligible[rng.integers(0, len(eligible), n_samples)]
    d = deg[centres]
    i = (rng.random(n_samples) * d).astype(np.int64)
    j = (rng.random(n_samples) * (d - 1)).astype(np.int64)
    j += j >= i
    start = graph.indptr[centres]
    closed = _adjacent(graph, graph.indices[start + i], graph.indices[start + j])
    return float(closed.mean())


def configuration_model(
    degrees: np.ndarray, *, rng: int | np.random.Generator | None = None
) -> UndirectedGraph:
    """A random simple graph with (about) these degrees: stubs matched at random, then
    self-loops and multi-edges erased (the erased configuration model)."""
    rng = np.random.default_rng(rng)
    stubs = np.repeat(np.arange(len(degrees), dtype=np.int64), degrees)
    rng.shuffle(stubs)
    half = len(stubs) // 2
    return undirected_graph(follow_matrix(stubs[:half], stubs[half : 2 * half], len(degrees)))


def _transitivity(
    graph: UndirectedGraph, rng: np.random.Generator, max_exact_wedges: int, n_samples: int
) -> tuple[float, float, bool]:
    """``(closed wedges, wedges, sampled)``; sampled counts are scaled to the total."""
    deg = graph.degrees.astype(np.float64)
    total_wedges = float((deg * (deg - 1) / 2).sum())
    if total_wedges == 0:
        return 0.0, 0.0, False
    if total_wedges <= max_exact_wedges:
        return _exact_closed_wedges(graph), total_wedges, False
    return _sampled_transitivity(graph, n_samples, rng) * total_wedges, total_wedges, True


def _exact_closed_wedges(graph: UndirectedGraph) -> float:
    # Every wedge (a, centre, b) with a before b in the centre's neighbour list is
    # enumerated: each adjacency entry at local position i repeats d - 1 - i times.
    deg = graph.degrees
    owner_deg = np.repeat(deg, deg)
    local = np.arange(len(graph.indices)) - np.repeat(graph.indptr[:-1], deg)
    repeats = owner_deg - 1 - local
    first = np.repeat(np.arange(len(graph.indices)), repeats)
    group_start = np.repeat(np.cumsum(repeats) - repeats, repeats)
    second = first + 1 + (np.arange(len(first)) - group_start)
    return float(_adjacent(graph, graph.indices[first], graph.indices[second]).sum())


def _sampled_transitivity(
    graph: UndirectedGraph, n_samples: int, rng: np.random.Generator
) -> float:
    deg = graph.degrees
    weights = deg.astype(np.float64) * (deg - 1) / 2
    cdf = np.cumsum(weights)
    centres = np.searchsorted(cdf, rng.random(n_samples) * cdf[-1], side="right")
    centres = np.minimum(centres, graph.n_nodes - 1)
    d = deg[centres]
    i = (rng.random(n_samples) * d).astype(np.int64)
    j = (rng.random(n_samples) * (d - 1)).astype(np.int64)
    j += j >= i  # two distinct neighbours, uniformly
    start = graph.indptr[centres]
    closed = _adjacent(graph, graph.indices[start + i], graph.indices[start + j])
    return float(closed.mean())


def _adjacent(graph: UndirectedGraph, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether each ``(a[i], b[i])`` is an edge: a binary search within ``a``'s neighbours."""
    if len(a) == 0:
        return np.zeros(0, dtype=bool)
    # Row-major keys of the symmetric CSR are sorted, so one searchsorted answers all pairs.
    n = graph.n_nodes
    rows = np.repeat(np.arange(n, dtype=np.int64), graph.degrees)
    keys = rows * n + graph.indices
    query = a.astype(np.int64) * n + b
    pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return keys[pos] == query


# -------------------------------------------------------------------- power law
def fit_power_law(
    values: np.ndarray, *, n_candidates: int = N_KMIN_CANDIDATES
) -> PowerLawFit | None:
    """Fit a discrete power-law tail by maximum likelihood (Clauset, Shalizi & Newman 2009).

    For each candidate ``k_min`` the exponent is the discrete approximation
    ``alpha = 1 + n / sum(ln(k_i / (k_min - 0.5)))`` over ``k_i >= k_min``; the ``k_min``
    whose fit has the smallest Kolmogorov-Smirnov distance to the tail (against the exact
    discrete CDF, a Hurwitz zeta ratio) wins. Candidates are up to ``n_candidates``
    quantiles of the positive values. Returns None when there are too few distinct values.
    """
    k = np.sort(np.asarray(values, dtype=np.int64))
    k = k[k >= 1]
    if len(k) < MIN_TAIL or k[0] == k[-1]:
        return None
    log_k = np.log(k)
    suffix_log = np.concatenate([np.cumsum(log_k[::-1])[::-1], [0.0]])
    quantiles = np.quantile(k, np.linspace(0.0, 0.99, n_candidates), method="lower")
    best: PowerLawFit | None = None
    for k_min in np.unique(quantiles):
        first = int(np.searchsorted(k, k_min))
        n_tail = len(k) - first
        if n_tail < MIN_TAIL or k[first] == k[-1]:
            continue
        alpha = 1.0 + n_tail / (suffix_log[first] - n_tail * np.log(k_min - 0.5))
        ks = _ks_distance(k[first:], int(k_min), alpha)
        if best is None or ks < best.ks_distance:
            best = PowerLawFit(float(alpha), int(k_min), float(ks), n_tail)
    return best


def _ks_distance(tail: np.ndarray, k_min: int, alpha: float) -> float:
    """Largest gap between the empirical and the fitted CDF of a sorted tail."""
    uniq, counts = np.unique(tail, return_counts=True)
    empirical = np.cumsum(counts) / len(tail)
    model = 1.0 - zeta(alpha, uniq + 1.0) / zeta(alpha, k_min)
    # Just below each observed value the empirical CDF is the previous step.
    below_emp = np.concatenate([[0.0], empirical[:-1]])
    below_model = 1.0 - zeta(alpha, uniq.astype(np.float64)) / zeta(alpha, k_min)
    return float(max(np.abs(empirical - model).max(), np.abs(below_emp - below_model).max()))


def power_law_ccdf(k: np.ndarray, fit: PowerLawFit) -> np.ndarray:
    """``P(K >= k | K >= k_min)`` of a fitted power law."""
    return zeta(fit.alpha, np.asarray(k, dtype=np.float64)) / zeta(fit.alpha, fit.k_min)
