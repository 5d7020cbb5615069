"""Tie strength of follow edges: how close a person is to each account they follow.

The strength of an edge ``u → v`` (``u`` follows ``v``) is

    1 + mutual_weight · [v follows u]
      + mention_weight · log1p(m) + repost_weight · log1p(r) + group_weight · log1p(g)

where ``m`` counts @-mentions between the two (either direction), ``r`` reposts of each
other's posts (either direction), each contact weighted ``0.5 ** (age / half_life_days)``
so recent contact counts more, and ``g`` the groups both belong to. ``log1p`` damps
chatty pairs: the tenth mention matters less than the first.

:func:`tie_strength` gives the matrix aligned with ``TrainingData.follows``; :class:`Ties`
keeps the parts it is built from so that follows and contacts can change live (a new
follow, a new post mentioning someone) without recomputing the whole graph.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recommender.data import TrainingData, take_rows

SECONDS_PER_DAY = 86_400.0


def decay(ts: pd.Series | pd.DatetimeIndex, now: pd.Timestamp, half_life_days: float) -> np.ndarray:
    """Weight ``0.5 ** (age / half_life_days)`` of each timestamp (future ones weigh 1)."""
    age = (now - pd.DatetimeIndex(ts)).total_seconds().to_numpy() / SECONDS_PER_DAY
    return np.power(0.5, np.maximum(age, 0.0) / half_life_days)


class Ties:
    """Tie strength of every follow edge, live-updatable.

    Build with :meth:`from_data`. ``matrix()`` is the current strength matrix
    (``n_users × n_users``, CSR, one stored entry per follow edge); ``rows(users)`` is the
    fast path for a batch of followers. Live changes (:meth:`add_follow`,
    :meth:`remove_follow`, :meth:`add_contact`) go to a small overlay on top of the
    matrix learned in ``from_data``.

    Parameters
    ----------
    mutual_weight, mention_weight, repost_weight, group_weight : float
        Bonus for a mutual follow and weights of the damped contact counts (see module).
    half_life_days : float
        Age at which a mention or repost counts half.
    """

    def __init__(
        self,
        *,
        mutual_weight: float = 1.0,
        mention_weight: float = 0.5,
        repost_weight: float = 0.5,
        group_weight: float = 0.3,
        half_life_days: float = 30.0,
    ) -> None:
        self.mutual_weight = mutual_weight
        self.mention_weight = mention_weight
        self.repost_weight = repost_weight
        self.group_weight = group_weight
        self.half_life_days = half_life_days

    # ------------------------------------------------------------------- build
    @classmethod
    def from_data(cls, data: TrainingData, **weights: float) -> Ties:
        """Tie strengths of ``data.follows`` from posts (mentions, reposts) before the
        cut-off, group memberships, and follows in both directions."""
        ties = cls(**weights)
        ties._validate()
        n = data.n_users
        follows = data.follows
        if not follows.has_canonical_format:
            follows = sp.csr_array(follows, copy=True)
            follows.sum_duplicates()  # canonical: sorted, so edge keys ascend
        ties.mentions = _symmetric(*_mention_pairs(data, ties.half_life_days), n)
        ties.reposts = _symmetric(*_repost_pairs(data, ties.half_life_days), n)
        ties.groups = _membership(data)
        # The strengths share the follow graph's index arrays (read-only after the fit;
        # live changes go to the overlay): 50 M edges would otherwise hold them twice.
        ties.base = sp.csr_array(
            (np.ones(follows.nnz, np.float32), follows.indices, follows.indptr), shape=(n, n)
        )
        ties.base.data = ties._combine(**ties.edge_features())
        ties._present = {}  # live follow changes: (u, v) -> follows now?
        ties._override = {}  # current strength of edges touched by live changes
        ties._contacts = {}  # live (mentions, reposts) per unordered pair
        ties._delta = None
        return ties

    def edge_features(self) -> dict[str, np.ndarray]:
        """What each fitted follow edge's strength is made of, in the order of
        ``base``'s entries: mutual (bool), decayed mentions and reposts, shared groups.
        Computed on demand (four arrays of 50 M edges on ``large`` are not kept)."""
        base, n = self.base, self.base.shape[0]
        rows = np.repeat(np.arange(n), np.diff(base.indptr))
        cols = base.indices
        keys = rows.astype(np.int64) * n + cols
        graph = sp.csr_array((np.ones(base.nnz, np.float32), base.indices, base.indptr), (n, n))
        return {
            "mutual": _on_edges(sp.csr_array(graph.multiply(graph.T)), keys, n) > 0,
            "mentions": _on_edges(self.mentions, keys, n),
            "reposts": _on_edges(self.reposts, keys, n),
            "shared_groups": _shared_groups(self.groups, rows, cols),
        }

    def _validate(self) -> None:
        for name in ("mutual_weight", "mention_weight", "repost_weight", "group_weight"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"{name} == {value}, must be >= 0.")
        if not self.half_life_days > 0:
            raise ValueError(f"half_life_days == {self.half_life_days}, must be > 0.")

    def _combine(self, mutual, mentions, reposts, shared_groups) -> np.ndarray:
        strength = (
            1.0
            + self.mutual_weight * np.asarray(mutual, dtype=np.float64)
            + self.mention_weight * np.log1p(mentions)
            + self.repost_weight * np.log1p(reposts)
            + self.group_weight * np.log1p(shared_groups)
        )
        return np.asarray(strength, dtype=np.float32)

    # ------------------------------------------------------------------ query
    @property
    def n_users(self) -> int:
        return self.base.shape[0]

    def matrix(self) -> sp.csr_array:
        """Current strengths (live changes applied), zero entries removed."""
        out = sp.csr_array(self.base + self._delta_matrix())
        out.eliminate_zeros()
        return out

    def rows(self, users: np.ndarray) -> sp.csr_array:
        """Current strengths of the edges leaving ``users`` (one row per user)."""
        users = np.asarray(users, dtype=np.int64)
        out = take_rows(self.base, users)
        if self._override:
            out = sp.csr_array(out + self._delta_matrix()[users])
            out.eliminate_zeros()
        return out

    def follows_edge(self, u: int, v: int) -> bool:
        """Whether ``u`` currently follows ``v``."""
        if (u, v) in self._present:
            return self._present[(u, v)]
        return stored(self.base, u, v) > 0

    def contact(self, u: int, v: int) -> tuple[float, float]:
        """Decayed (mentions, reposts) between ``u`` and ``v``, either direction."""
        live = self._contacts.get((min(u, v), max(u, v)), np.zeros(2))
        return (
            float(stored(self.mentions, u, v) + live[0]),
            float(stored(self.reposts, u, v) + live[1]),
        )

    def shared_groups(self, u: int, v: int) -> int:
        g = self.groups
        a = g.indices[g.indptr[u] : g.indptr[u + 1]]
        b = g.indices[g.indptr[v] : g.indptr[v + 1]]
        return len(np.intersect1d(a, b, assume_unique=True))

    def strength(self, u: int, v: int) -> float:
        """What the edge ``u → v`` weighs now (0 when ``u`` does not follow ``v``)."""
        if not self.follows_edge(u, v):
            return 0.0
        m, r = self.contact(u, v)
        value = self._combine(self.follows_edge(v, u), m, r, self.shared_groups(u, v))
        return float(value)

    # ------------------------------------------------------------------- live
    def add_follow(self, u: int, v: int) -> None:
        """``u`` now follows ``v`` (a no-op if it already does)."""
        if u == v:
            raise ValueError(f"a user cannot follow themselves (user index {u}).")
        self._present[(u, v)] = True
        self._refresh(u, v)

    def remove_follow(self, u: int, v: int) -> None:
        """``u`` no longer follows ``v`` (a no-op if it did not)."""
        self._present[(u, v)] = False
        self._refresh(u, v)

    def add_contact(self, u: int, v: int, *, mentions: float = 0.0, reposts: float = 0.0) -> None:
        """Record new (already decayed) mentions or reposts between ``u`` and ``v``."""
        if u == v:
            return
        key = (min(u, v), max(u, v))
        self._contacts[key] = self._contacts.get(key, np.zeros(2)) + [mentions, reposts]
        self._refresh(u, v)

    def _refresh(self, u: int, v: int) -> None:
        """Recompute both directed edges between ``u`` and ``v`` (a follow changes the
        other direction's mutual bonus; a contact changes both) into the overlay."""
        for a, b in ((u, v), (v, u)):
            if (a, b) in self._present or stored(self.base, a, b) > 0:
                self._override[(a, b)] = self.strength(a, b)
        self._delta = None

    def _delta_matrix(self) -> sp.csr_array:
        """Overlay minus base, for the overridden edges (cached until the next change)."""
        if self._delta is None:
            n = self.n_users
            if self._override:
                keys = np.array(list(self._override), dtype=np.int64)
                new = np.fromiter(self._override.values(), np.float32, len(keys))
                old = np.array([stored(self.base, a, b) for a, b in keys], dtype=np.float32)
                self._delta = sp.csr_array((new - old, (keys[:, 0], keys[:, 1])), shape=(n, n))
            else:
                self._delta = sp.csr_array((n, n), dtype=np.float32)
        return self._delta


def tie_strength(data: TrainingData, **weights: float) -> sp.csr_array:
    """Tie strength of every follow edge of ``data`` (see :class:`Ties` for ``weights``).

    Returns
    -------
    scipy.sparse.csr_array of float32, shape (n_users, n_users)
        Entry ``[u, v]`` is the strength of ``u → v``; same stored entries as
        ``data.follows`` (every value ``>= 1``).
    """
    return Ties.from_data(data, **weights).base


# ---------------------------------------------------------------- helpers
def _mention_pairs(data: TrainingData, half_life: float):
    """(author, mentioned, decayed weight) of every @-mention in the posts."""
    posts = data.posts
    mentions = pa.array(posts["mentions"])
    if isinstance(mentions, pa.ChunkedArray):  # parent indices must be over all rows
        mentions = mentions.combine_chunks()
    parent = pc.list_parent_indices(mentions).to_numpy(zero_copy_only=False)
    mentioned = pc.list_flatten(mentions).to_numpy(zero_copy_only=False)
    target = data.users.lookup(mentioned.astype(np.int64), missing="ignore")
    author = posts["u"].to_numpy()[parent]
    weight = decay(posts["created_ts"], data.now, half_life)[parent]
    keep = (target >= 0) & (target != author)
    return author[keep], target[keep], weight[keep]


def _repost_pairs(data: TrainingData, half_life: float):
    """(reposter, original author, decayed weight) of every repost in the posts."""
    posts = data.posts
    parent = posts["repost_of"]
    is_repost = parent.notna().to_numpy()
    all_posts = data.dataset.posts  # the parent may be of any time before the repost
    order = np.argsort(all_posts["post_id"].to_numpy())
    sorted_ids = all_posts["post_id"].to_numpy()[order]
    parent_ids = parent[is_repost].to_numpy(dtype=np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, parent_ids), max(len(sorted_ids) - 1, 0))
    found = sorted_ids[pos] == parent_ids if len(sorted_ids) else np.zeros(0, bool)
    authors = all_posts["user_id"].to_numpy()[order][pos[found]]
    original = data.users.lookup(authors, missing="ignore")
    reposter = posts["u"].to_numpy()[is_repost][found]
    weight = decay(posts["created_ts"][is_repost][found], data.now, half_life)
    keep = (original >= 0) & (original != reposter)
    return reposter[keep], original[keep], weight[keep]


def _symmetric(a: np.ndarray, b: np.ndarray, w: np.ndarray, n: int) -> sp.csr_array:
    """Pair weights counted in both directions: ``out[a, b] = out[b, a] = sum of w``."""
    rows = np.concatenate([a, b])
    cols = np.concatenate([b, a])
    out = sp.csr_array((np.concatenate([w, w]), (rows, cols)), shape=(n, n), dtype=np.float64)
    out.sum_duplicates()
    return out


def _on_edges(pairs: sp.csr_array, edge_keys: np.ndarray, n: int) -> np.ndarray:
    """Values of ``pairs`` at each edge (edge keys ``row * n + col``, ascending)."""
    coo = pairs.tocoo()
    keys = coo.row.astype(np.int64) * n + coo.col
    out = np.zeros(len(edge_keys))
    if len(edge_keys) == 0:
        return out
    pos = np.minimum(np.searchsorted(edge_keys, keys), len(edge_keys) - 1)
    hit = edge_keys[pos] == keys
    out[pos[hit]] = coo.data[hit]
    return out


def _membership(data: TrainingData) -> sp.csr_array:
    """Users × groups membership (boolean as float32; no groups gives zero columns)."""
    members = data.dataset.group_members
    n = data.n_users
    if members is None or len(members) == 0:
        return sp.csr_array((n, 0), dtype=np.float32)
    _, group = np.unique(members["group_id"].to_numpy(), return_inverse=True)
    user = data.users.lookup(members["user_id"].to_numpy(np.int64), missing="ignore")
    keep = user >= 0
    out = sp.csr_array(
        (np.ones(int(keep.sum()), np.float32), (user[keep], group[keep])),
        shape=(n, int(group.max()) + 1),
    )
    out.sum_duplicates()
    out.data[:] = 1.0
    return out


def _shared_groups(groups: sp.csr_array, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Groups shared by each edge's two ends: the row-wise dot product of memberships,
    computed only for follow edges (never the full users × users co-membership)."""
    if groups.shape[1] == 0 or len(rows) == 0:
        return np.zeros(len(rows))
    # Only edges whose follower is in some group can share one; slice just those.
    in_group = np.diff(groups.indptr)[rows] > 0
    out = np.zeros(len(rows))
    idx = np.flatnonzero(in_group)
    for start in range(0, len(idx), 1 << 21):
        part = idx[start : start + (1 << 21)]
        both = groups[rows[part]].multiply(groups[cols[part]])
        out[part] = np.asarray(both.sum(axis=1)).ravel()
    return out


def stored(matrix: sp.csr_array, u: int, v: int) -> float:
    """The stored value at ``[u, v]`` of a canonical CSR matrix (0 when absent)."""
    lo, hi = matrix.indptr[u], matrix.indptr[u + 1]
    cols = matrix.indices[lo:hi]
    pos = np.searchsorted(cols, v)
    return float(matrix.data[lo + pos]) if pos < len(cols) and cols[pos] == v else 0.0
