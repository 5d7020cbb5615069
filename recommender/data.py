"""Training data in index space: a :class:`Dataset` seen up to a cut-off time.

Raw ids are mapped to dense indices once, at the edge (:class:`IdIndex`); every model works
on the sparse matrices of :class:`TrainingData`. Building it once and handing it to every
source (``source.fit(data)``) avoids re-reading the dataset per source.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.dataset import Dataset
from recommender.errors import UnknownIdError

EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.5,
    "favorite": 4.0,
    "cart": 5.0,
    "purchase": 10.0,
}
"""Default strength of each funnel event as implicit feedback."""


LIVE_FOLD_MIN = 20_000
"""Live additions kept beside a matrix before they are folded in (see
:meth:`TrainingData.add_live`)."""
LIVE_FOLD_SHARE = 0.01
"""... or this share of the matrix's entries, whichever is larger."""


class IdIndex:
    """A bijection between raw int64 ids and dense indices ``0 .. n - 1``."""

    def __init__(self, ids: np.ndarray, kind: str) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.kind = kind
        self._sorted = np.argsort(self.ids, kind="stable")
        self._sorted_ids = self.ids[self._sorted]

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, raw: np.ndarray | list[int] | int, *, missing: str = "raise") -> np.ndarray:
        """Dense indices of raw ids; ``missing="raise"`` raises :class:`UnknownIdError`,
        ``missing="ignore"`` returns -1 for unknown ids."""
        raw = np.atleast_1d(np.asarray(raw, dtype=np.int64))
        if len(self.ids) == 0:
            found = np.zeros(len(raw), dtype=bool)
            out = np.full(len(raw), -1, dtype=np.int64)
        else:
            pos = np.minimum(np.searchsorted(self._sorted_ids, raw), len(self.ids) - 1)
            found = self._sorted_ids[pos] == raw
            out = np.where(found, self._sorted[pos], -1).astype(np.int64)
        if missing == "raise" and not found.all():
            raise UnknownIdError(self.kind, raw[~found].tolist())
        return out

    def raw(self, index: np.ndarray | int) -> np.ndarray:
        return self.ids[np.asarray(index)]


@dataclass
class TrainingData:
    """What models may learn from: the dataset up to ``until`` (exclusive), in index space.

    Attributes
    ----------
    user_items : scipy.sparse.csr_array, shape (n_users, n_items)
        Summed event weights (:data:`EVENT_WEIGHTS`) of each user-item pair.
    purchased : scipy.sparse.csr_array, shape (n_users, n_items)
        Purchase counts (what "exclude already purchased" masks).
    follows : scipy.sparse.csr_array, shape (n_users, n_users)
        ``follows[u, v] = 1`` when ``u`` follows ``v``.
    interactions, posts : pandas.DataFrame
        The raw rows before ``until`` with dense ``u`` / ``i`` index columns added.
    """

    dataset: Dataset
    until: pd.Timestamp | None
    users: IdIndex
    items: IdIndex
    user_items: sp.csr_array
    purchased: sp.csr_array
    follows: sp.csr_array
    interactions: pd.DataFrame
    posts: pd.DataFrame
    event_weights: dict[str, float] = field(default_factory=lambda: dict(EVENT_WEIGHTS))
    live_added: dict[str, dict[int, dict[int, float]]] = field(
        default_factory=dict, repr=False, compare=False
    )
    """Live additions to :attr:`user_items` and :attr:`purchased` not yet folded in:
    matrix name -> user index -> item index -> value (see :meth:`add_live`)."""
    live_pending: dict[str, int] = field(default_factory=dict, repr=False, compare=False)
    """Entries of :attr:`live_added` per matrix (kept as a count, not recounted per write)."""

    # ----------------------------------------------------------------- live
    def rows(self, name: str, users) -> sp.csr_array:
        """Rows ``users`` of ``user_items`` or ``purchased`` with the live additions.

        Models read a person's history through this, never ``matrix[users]`` directly, so
        a live event costs the size of a row, not of the matrix."""
        matrix = getattr(self, name)
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        out = take_rows(sp.csr_array(matrix), users)
        added = self.live_added.get(name)
        if not added:
            return out
        r: list[int] = []
        c: list[int] = []
        v: list[float] = []
        for row, u in enumerate(users.tolist()):
            entries = added.get(u)
            if entries:
                r += [row] * len(entries)
                c += list(entries)
                v += list(entries.values())
        if not r:
            return out
        extra = sp.csr_array((np.asarray(v, matrix.dtype), (r, c)), shape=out.shape)
        return sp.csr_array(out + extra)

    def add_live(self, name: str, user: int, items, values) -> None:
        """Add ``values`` to ``name[user, items]`` (a live event). The additions are kept
        beside the matrix and folded in once they reach :data:`LIVE_FOLD_SHARE` of its
        entries (at least :data:`LIVE_FOLD_MIN`): one rebuild per many writes."""
        added = self.live_added.setdefault(name, {}).setdefault(int(user), {})
        before = len(added)
        for i, v in zip(np.atleast_1d(items).tolist(), np.atleast_1d(values).tolist(), strict=True):
            added[int(i)] = added.get(int(i), 0.0) + float(v)
        pending = self.live_pending.get(name, 0) + len(added) - before
        self.live_pending[name] = pending
        if pending >= max(LIVE_FOLD_MIN, LIVE_FOLD_SHARE * getattr(self, name).nnz):
            self.fold_live(name)

    def fold_live(self, name: str | None = None) -> None:
        """Fold the live additions of ``name`` (all matrices if None) into the matrix."""
        for key in [name] if name is not None else list(self.live_added):
            added = self.live_added.pop(key, {})
            self.live_pending.pop(key, None)
            r = [u for u, entries in added.items() for _ in entries]
            c = [i for entries in added.values() for i in entries]
            v = [x for entries in added.values() for x in entries.values()]
            if not r:
                continue
            matrix = getattr(self, key)
            extra = sp.csr_array((np.asarray(v, matrix.dtype), (r, c)), shape=matrix.shape)
            setattr(self, key, sp.csr_array(matrix + extra))

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def now(self) -> pd.Timestamp:
        """The reference time of recency features: the cut-off, or the data's end."""
        if self.until is not None:
            return self.until
        return self.dataset.time_span[1]

    @classmethod
    def from_dataset(
        cls,
        dataset: Dataset,
        *,
        until: pd.Timestamp | str | None = None,
        event_weights: dict[str, float] | None = None,
    ) -> TrainingData:
        """Index ``dataset`` and keep what happened before ``until`` (everything if None).

        A dataset with a fixed split (an ``interactions.split`` column) keeps only its
        ``train`` rows when ``until`` is None.
        """
        weights = dict(EVENT_WEIGHTS if event_weights is None else event_weights)
        unknown = set(weights) - set(EVENT_WEIGHTS)
        if unknown:
            raise ValueError(f"event_weights has unknown events {sorted(unknown)}")
        until_ts = None if until is None else _utc(until)
        users = IdIndex(dataset.users["user_id"].to_numpy(np.int64), "user")
        items = IdIndex(dataset.products["product_id"].to_numpy(np.int64), "product")
        inter = _indexed_interactions(dataset.interactions, until_ts, users, items)
        posts = dataset.posts
        if until_ts is not None:
            posts = posts[posts["created_ts"] < until_ts]
        posts = posts.assign(u=users.lookup(posts["user_id"].to_numpy(np.int64)))
        user_items, purchased = _event_matrices(inter, weights, (len(users), len(items)))
        f = dataset.follows
        if until_ts is not None:
            f = f[f["created_ts"] < until_ts]
        fu = users.lookup(f["follower_id"].to_numpy(np.int64))
        fv = users.lookup(f["followee_id"].to_numpy(np.int64))
        follows = compact(
            sp.csr_array((np.ones(len(fu), np.float32), (fu, fv)), shape=(len(users), len(users)))
        )
        if (follows.data == 1).all():  # no repeated edge: the ones need no array
            follows = binary(follows)
        return cls(
            dataset=dataset,
            until=until_ts,
            users=users,
            items=items,
            user_items=user_items,
            purchased=purchased,
            follows=follows,
            interactions=inter,
            posts=posts,
            event_weights=weights,
        )


def restrict(data: TrainingData, keep: np.ndarray) -> TrainingData:
    """The same data with only the interactions where ``keep`` is true (posts and follows
    unchanged): a training view that holds some interactions out."""
    inter = data.interactions[np.asarray(keep, dtype=bool)]
    user_items, purchased = _event_matrices(inter, data.event_weights, (data.n_users, data.n_items))
    return dataclasses.replace(
        data,
        user_items=user_items,
        purchased=purchased,
        interactions=inter,
        live_added={},
        live_pending={},
    )


INTERACTION_COLUMNS = ("event", "ts", "weight", "split")
"""Columns of the dataset's interactions a :class:`TrainingData` keeps (beside ``u``, ``i``)."""


def _indexed_interactions(
    inter: pd.DataFrame, until: pd.Timestamp | None, users: IdIndex, items: IdIndex
) -> pd.DataFrame:
    """The interactions before ``until`` (a fixed split's ``train`` rows when ``until`` is
    None) as a lean frame: ``u`` and ``i`` (dense indices) and :data:`INTERACTION_COLUMNS`,
    ``event`` as a categorical. Built column by column: on ``large`` (55 million rows) a
    copy of the whole frame, raw ids and all, costs gigabytes."""
    keep = None
    if until is not None:
        keep = (inter["ts"] < until).to_numpy(bool)
    elif "split" in inter.columns:
        keep = (inter["split"].astype(str) == "train").to_numpy(bool)

    def column(name: str):
        values = inter[name]
        return values if keep is None else values[keep]

    out = {
        "u": users.lookup(column("user_id").to_numpy(np.int64)),
        "i": items.lookup(column("product_id").to_numpy(np.int64)),
    }
    for name in INTERACTION_COLUMNS:
        if name in inter.columns:
            values = column(name).reset_index(drop=True)
            out[name] = values.astype("category") if name == "event" else values
    return pd.DataFrame(out)


def _event_matrices(
    inter: pd.DataFrame, weights: dict[str, float], shape: tuple[int, int]
) -> tuple[sp.csr_array, sp.csr_array]:
    """Summed event weights and purchase counts of indexed interactions (``u``, ``i``)."""
    events = inter["event"].astype(str)
    w = events.map(weights).fillna(0.0).to_numpy(np.float32)
    if "weight" in inter.columns and events.eq("purchase").all():
        # Imported implicit feedback (e.g. listening counts): keep its strength, damped.
        w = w * np.log1p(inter["weight"].to_numpy(np.float32)).clip(min=1.0)
    u, i = inter["u"].to_numpy(), inter["i"].to_numpy()
    user_items = sp.csr_array((w, (u, i)), shape=shape, dtype=np.float32)
    user_items.sum_duplicates()
    buy = events.to_numpy() == "purchase"
    purchased = sp.csr_array((np.ones(int(buy.sum()), np.float32), (u[buy], i[buy])), shape=shape)
    purchased.sum_duplicates()
    return compact(user_items), compact(purchased)


def _utc(ts: pd.Timestamp | str) -> pd.Timestamp:
    ts = pd.Timestamp(ts)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def as_training_data(data: Dataset | TrainingData, until=None) -> TrainingData:
    """Accept either a :class:`Dataset` (indexed here) or ready :class:`TrainingData`."""
    if isinstance(data, TrainingData):
        if until is not None and data.until != _utc(until):
            raise ValueError("until differs from the TrainingData's cut-off")
        return data
    if isinstance(data, Dataset):
        return TrainingData.from_dataset(data, until=until)
    raise TypeError(f"expected a Dataset or TrainingData, got {type(data).__name__}")


def compact(matrix: sp.csr_array) -> sp.csr_array:
    """``matrix`` with int32 index arrays when its entries and shape fit (the data shared,
    not copied). scipy's sparse arrays keep the int64 indices they were built from (pandas
    codes, saved arrays): on ``large`` the interactions and the follow graph alone hold
    1.6 GiB of indices, half of it for nothing."""
    small = np.iinfo(np.int32).max
    if matrix.indices.dtype == np.int32 and matrix.indptr.dtype == np.int32:
        return matrix
    if max(matrix.nnz, *matrix.shape) > small:
        return matrix
    return sp.csr_array(
        (matrix.data, matrix.indices.astype(np.int32), matrix.indptr.astype(np.int32)),
        shape=matrix.shape,
        copy=False,
    )


def binary(matrix: sp.csr_array) -> sp.csr_array:
    """``matrix > 0`` as float32 ones. When every stored entry is positive (the fitted
    interactions, the follow graph), its own index arrays with a read-only run of ones:
    no copy of the indices, no array of values (on ``large`` 0.2–0.3 GiB each)."""
    if matrix.nnz and (matrix.data > 0).all():
        ones = np.broadcast_to(np.float32(1.0), (matrix.nnz,))
        return sp.csr_array((ones, matrix.indices, matrix.indptr), shape=matrix.shape, copy=False)
    return compact(sp.csr_array((matrix > 0).astype(np.float32)))


def row_positions(indptr: np.ndarray, rows) -> tuple[np.ndarray, np.ndarray]:
    """Where the entries of CSR rows ``rows`` (in turn, repeats allowed) sit in the entry
    arrays: the gathered rows' ``indptr`` and the positions (both int64)."""
    rows = np.asarray(rows, dtype=np.intp).ravel()
    starts = indptr[rows].astype(np.int64)
    lengths = indptr[rows + 1] - starts
    out_ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_ptr[1:])
    pos = np.repeat(starts - out_ptr[:-1], lengths) + np.arange(out_ptr[-1])
    return out_ptr, pos


def take_rows(matrix: sp.csr_array, rows) -> sp.csr_array:
    """``matrix[rows]`` of a CSR array (rows in range, repeats allowed), gathered with numpy:
    half the cost of scipy's fancy indexing, which validates and converts its index first.
    A request takes some twenty such slices."""
    rows = np.asarray(rows, dtype=np.intp).ravel()
    indptr = matrix.indptr
    if len(rows) == 1:  # one person (a request): a slice, nothing to gather
        lo, hi = indptr[rows[0]], indptr[rows[0] + 1]
        out_ptr = np.array([0, hi - lo], dtype=indptr.dtype)
        data, indices = matrix.data[lo:hi].copy(), matrix.indices[lo:hi].copy()
    else:
        out_ptr, pos = row_positions(indptr, rows)
        if out_ptr[-1] <= np.iinfo(indptr.dtype).max:
            out_ptr = out_ptr.astype(indptr.dtype)  # keeps the index arrays' dtype
        data, indices = matrix.data[pos], matrix.indices[pos]
    return sp.csr_array((data, indices, out_ptr), shape=(len(rows), matrix.shape[1]), copy=False)
