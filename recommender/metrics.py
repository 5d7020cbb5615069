"""Ranking metrics for full-ranking evaluation of top-k recommendations.

Everything works in index space: users are rows, items are columns ``0 .. n_items - 1``.
The relevant (test) items and the items to exclude (a user's training items) are given as
``scipy.sparse`` CSR matrices of shape ``(n_users, n_items)``; any stored non-zero counts
as "relevant" / "excluded".

The protocol is the one of LightGCN and SocialLGN: every item the user has not interacted
with in training is a candidate (full ranking), the user's training items are masked,
recall is divided by the number of the user's test items, NDCG uses binary relevance with
the ideal DCG over ``min(|relevant|, k)`` positions, and every figure is averaged over the
users with at least one test item.

Top-k lists are ``int64`` arrays of shape ``(n_users, k)``, best first; ``-1`` pads a list
that has fewer than ``k`` items.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)
METRICS: tuple[str, ...] = ("precision", "recall", "ndcg", "map", "hit_rate")
_BLOCK_CELLS = 1 << 23  # score cells ranked at once (64 MiB of float64)


# ------------------------------------------------------------------------- top-k
def top_k(
    scores: np.ndarray | sp.spmatrix | sp.sparray,
    k: int,
    *,
    exclude: sp.spmatrix | sp.sparray | None = None,
) -> np.ndarray:
    """The ``k`` best-scored items of every user, best first.

    Parameters
    ----------
    scores : array-like of shape (n_users, n_items)
        Dense or sparse scores (a sparse matrix's missing entries score 0). ``NaN`` and
        ``-inf`` mean "not recommendable".
    k : int
        Length of every list, ``>= 1``.
    exclude : sparse matrix of shape (n_users, n_items), optional
        Items never to recommend to a user (typically the user's training items).

    Returns
    -------
    numpy.ndarray of int64, shape (n_users, k)
        Item indices by decreasing score; ties go to the lower item index. A user with
        fewer than ``k`` recommendable items gets ``-1`` in the trailing positions.
    """
    if k < 1:
        raise ValueError(f"k == {k}, must be >= 1.")
    if sp.issparse(scores):
        scores = sp.csr_array(scores)
    n_users, n_items = scores.shape
    exclude_csr = _as_csr(exclude, scores.shape, "exclude") if exclude is not None else None
    out = np.full((n_users, k), -1, dtype=np.int64)
    kk = min(k, n_items)
    if n_users == 0 or kk == 0:
        return out
    block = max(1, _BLOCK_CELLS // max(n_items, 1))
    for start in range(0, n_users, block):
        stop = min(start + block, n_users)
        rows = scores[start:stop]
        rows = rows.toarray() if sp.issparse(rows) else np.array(rows, dtype=np.float64)
        rows = rows.astype(np.float64, copy=False)
        rows[np.isnan(rows)] = -np.inf
        if exclude_csr is not None:
            ex = exclude_csr[start:stop].tocoo()
            rows[ex.row, ex.col] = -np.inf
        out[start:stop, :kk] = _top_k_block(rows, kk)
    return out


def _top_k_block(scores: np.ndarray, k: int) -> np.ndarray:
    """Top-k of a dense block with ties broken by the lower index (deterministic)."""
    neg = -scores
    kth = np.partition(neg, k - 1, axis=1)[:, k - 1 : k]
    better = neg < kth
    tied = neg == kth
    room = k - better.sum(axis=1, keepdims=True)
    take = better | (tied & (np.cumsum(tied, axis=1) <= room))
    cand = np.nonzero(take)[1].reshape(-1, k)  # ascending item index within each row
    values = np.take_along_axis(neg, cand, axis=1)
    order = np.argsort(values, axis=1, kind="stable")
    cand = np.take_along_axis(cand, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    cand[np.isposinf(values)] = -1
    return cand


def drop_excluded(topk: np.ndarray, exclude: sp.spmatrix | sp.sparray, n_items: int) -> np.ndarray:
    """Remove excluded items from top-k lists, moving later items up and padding with -1.

    To keep ``k`` items per user after the removal, pass lists longer than ``k``.
    """
    topk = np.asarray(topk, dtype=np.int64)
    hit = _membership(topk, _as_csr(exclude, (topk.shape[0], n_items), "exclude"))
    keep = (topk >= 0) & ~hit
    # Stable sort puts kept items first, in their original order.
    order = np.argsort(~keep, axis=1, kind="stable")
    out = np.take_along_axis(topk, order, axis=1)
    out[~np.take_along_axis(keep, order, axis=1)] = -1
    return out


# ------------------------------------------------------------------- accuracy
def ranking_metrics(
    topk: np.ndarray,
    relevant: sp.spmatrix | sp.sparray,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    users: np.ndarray | None = None,
    per_user: bool = False,
) -> dict[str, float] | dict[str, np.ndarray]:
    """Precision, Recall, NDCG, MAP and HitRate at every cut-off in ``ks``.

    Parameters
    ----------
    topk : numpy.ndarray of int, shape (n_users, >= max(ks))
        Ranked item indices per user, best first; ``-1`` for no item.
    relevant : sparse matrix of shape (n_users, n_items)
        The relevant (test) items of every user.
    ks : sequence of int
        Cut-offs; each must be ``<= topk.shape[1]``.
    users : array of int or bool, optional
        Average over these users only (a segment); users without relevant items are
        always left out.
    per_user : bool
        Return one value per evaluated user instead of the means.

    Returns
    -------
    dict
        Keys ``"<metric>@<k>"`` for metric in ``precision, recall, ndcg, map, hit_rate``,
        plus ``"n_users"`` (the number of users averaged over). With ``per_user=True`` the
        values are arrays aligned with ``"users"`` (the evaluated user indices).

    Notes
    -----
    Recall@k divides the hits by the user's number of relevant items; NDCG@k uses binary
    gains ``1 / log2(rank + 1)`` and the ideal DCG of ``min(|relevant|, k)`` hits; MAP@k is
    the average precision at the hit positions divided by ``min(|relevant|, k)``.
    """
    topk = np.asarray(topk, dtype=np.int64)
    if topk.ndim != 2:
        raise ValueError(f"topk.ndim == {topk.ndim}, must be 2 (users x ranks).")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1 or ks[-1] > topk.shape[1]:
        raise ValueError(f"ks == {ks}, each must be in 1 .. topk.shape[1] ({topk.shape[1]}).")
    rel = _as_csr(relevant, (topk.shape[0], None), "relevant")
    n_rel = np.diff(rel.indptr)
    selected = n_rel > 0
    if users is not None:
        mask = np.zeros(topk.shape[0], dtype=bool)
        mask[np.asarray(users)] = True
        selected &= mask
    rows = np.flatnonzero(selected)
    hits = _membership(topk[rows, : ks[-1]], rel[rows]).astype(np.float64)
    n_rel = n_rel[rows].astype(np.float64)

    ranks = np.arange(1, ks[-1] + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    cum_hits = np.cumsum(hits, axis=1)
    precision_at = cum_hits / ranks
    ap_terms = np.cumsum(precision_at * hits, axis=1)
    ideal = np.cumsum(discount)

    values: dict[str, np.ndarray] = {}
    for k in ks:
        n_hits = cum_hits[:, k - 1]
        denom = np.minimum(n_rel, k)
        values[f"precision@{k}"] = n_hits / k
        values[f"recall@{k}"] = n_hits / n_rel
        dcg = hits[:, :k] @ discount[:k]
        values[f"ndcg@{k}"] = dcg / ideal[denom.astype(np.int64) - 1]
        values[f"map@{k}"] = ap_terms[:, k - 1] / denom
        values[f"hit_rate@{k}"] = (n_hits > 0).astype(np.float64)
    if per_user:
        return {"users": rows, **values}
    result = {name: float(v.mean()) if len(rows) else float("nan") for name, v in values.items()}
    result["n_users"] = len(rows)
    return result


def evaluate_scores(
    scores: np.ndarray | sp.spmatrix | sp.sparray,
    relevant: sp.spmatrix | sp.sparray,
    *,
    exclude: sp.spmatrix | sp.sparray | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    users: np.ndarray | None = None,
) -> dict[str, float]:
    """Full-ranking evaluation of a score matrix: mask, rank, measure.

    Ranks every item for every user (``exclude`` masked), then returns
    :func:`ranking_metrics` plus ``"coverage@<max k>"`` (:func:`catalogue_coverage` over
    the evaluated users).

    Raises
    ------
    ValueError
        If ``exclude`` and ``relevant`` share a user-item pair: a leaky split.
    """
    if sp.issparse(scores):
        scores = sp.csr_array(scores)
    n_users, n_items = scores.shape
    rel = _as_csr(relevant, (n_users, n_items), "relevant")
    if exclude is not None:
        ex = _as_csr(exclude, (n_users, n_items), "exclude")
        overlap = rel.multiply(ex).nnz
        if overlap:
            raise ValueError(
                f"relevant and exclude share {overlap} user-item pairs; a test item must "
                "not also be a training item (leaky split)."
            )
    else:
        ex = None
    k_max = max(ks)
    evaluated = np.diff(rel.indptr) > 0
    if users is not None:
        mask = np.zeros(n_users, dtype=bool)
        mask[np.asarray(users)] = True
        evaluated &= mask
    rows = np.flatnonzero(evaluated)
    topk = top_k(scores[rows], k_max, exclude=None if ex is None else ex[rows])
    result = ranking_metrics(topk, rel[rows], ks=ks)
    result[f"coverage@{k_max}"] = catalogue_coverage(topk, n_items)
    return result


# ------------------------------------------------------- beyond accuracy
def catalogue_coverage(topk: np.ndarray, n_items: int) -> float:
    """Share of the catalogue's ``n_items`` items that appear in at least one list."""
    if n_items < 1:
        raise ValueError(f"n_items == {n_items}, must be >= 1.")
    items = np.asarray(topk, dtype=np.int64).ravel()
    return float(np.unique(items[items >= 0]).size / n_items)


def intra_list_diversity(
    topk: np.ndarray,
    *,
    item_features: np.ndarray | sp.spmatrix | sp.sparray | None = None,
    categories: np.ndarray | None = None,
) -> float:
    """Mean pairwise dissimilarity of the items within each list, averaged over lists.

    Parameters
    ----------
    topk : numpy.ndarray of int, shape (n_users, k)
        Ranked item indices (``-1`` ignored).
    item_features : array-like of shape (n_items, n_features), optional
        Dissimilarity is ``1 - cosine`` of the feature vectors (an all-zero vector has
        similarity 0 to everything).
    categories : array of int of shape (n_items,), optional
        Dissimilarity is 1 for two items of different categories, else 0. Give exactly
        one of ``item_features`` and ``categories``.

    Returns
    -------
    float
        Averaged over lists with at least two items (``nan`` if there are none).
    """
    if (item_features is None) == (categories is None):
        raise ValueError("give exactly one of item_features and categories.")
    if categories is not None:
        codes = np.unique(np.asarray(categories), return_inverse=True)[1].ravel()
        features = sp.csr_array(
            (np.ones(len(codes)), (np.arange(len(codes)), codes)),
            shape=(len(codes), codes.max() + 1),
        )
    else:
        features = sp.csr_array(item_features, dtype=np.float64)
        norms = np.sqrt(np.asarray(features.multiply(features).sum(axis=1)).ravel())
        features = sp.csr_array(
            sp.diags_array(np.divide(1.0, norms, where=norms > 0, out=np.zeros_like(norms)))
            @ features
        )
    topk = np.asarray(topk, dtype=np.int64)
    valid = topk >= 0
    m = valid.sum(axis=1).astype(np.float64)
    rows = np.repeat(np.arange(topk.shape[0]), topk.shape[1])[valid.ravel()]
    picks = sp.csr_array(
        (np.ones(len(rows)), (rows, topk[valid])), shape=(topk.shape[0], features.shape[0])
    )
    summed = picks @ features
    sq_norm_sum = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
    self_sim = picks @ np.asarray(features.multiply(features).sum(axis=1)).ravel()
    lists = m >= 2
    if not lists.any():
        return float("nan")
    pair_sim = (sq_norm_sum[lists] - self_sim[lists]) / (m[lists] * (m[lists] - 1))
    return float(np.mean(1.0 - pair_sim))


def novelty(topk: np.ndarray, item_counts: np.ndarray, n_users: int) -> float:
    """Mean self-information ``-log2(popularity)`` of the recommended items.

    Parameters
    ----------
    topk : numpy.ndarray of int, shape (n_users, k)
        Ranked item indices (``-1`` ignored).
    item_counts : array of shape (n_items,)
        Number of (training) users who interacted with each item.
    n_users : int
        Number of users the counts come from; popularity is ``count / n_users``, with a
        count of 0 treated as 1 so that unseen items have a finite novelty.

    Returns
    -------
    float
        Mean over lists of the mean novelty of the list's items (lists with no item are
        left out; ``nan`` if there are none).
    """
    if n_users < 1:
        raise ValueError(f"n_users == {n_users}, must be >= 1.")
    counts = np.maximum(np.asarray(item_counts, dtype=np.float64), 1.0)
    info = -np.log2(np.minimum(counts / n_users, 1.0))
    topk = np.asarray(topk, dtype=np.int64)
    valid = topk >= 0
    per_item = np.where(valid, info[np.where(valid, topk, 0)], 0.0)
    m = valid.sum(axis=1)
    if not (m > 0).any():
        return float("nan")
    return float(np.mean(per_item.sum(axis=1)[m > 0] / m[m > 0]))


# -------------------------------------------------------------------- helpers
def _as_csr(matrix, shape: tuple[int, int | None], name: str) -> sp.csr_array:
    csr = sp.csr_array(matrix)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    rows, cols = shape
    if csr.shape[0] != rows or (cols is not None and csr.shape[1] != cols):
        want = f"({rows}, {cols if cols is not None else 'n_items'})"
        raise ValueError(f"{name}.shape == {csr.shape}, must be {want}.")
    return csr


def _membership(topk: np.ndarray, matrix: sp.csr_array) -> np.ndarray:
    """Boolean array: whether ``topk[u, j]`` is a stored entry of row ``u`` of ``matrix``."""
    n_cols = np.int64(matrix.shape[1])
    coo = matrix.tocoo()
    keys = np.sort(coo.row.astype(np.int64) * n_cols + coo.col.astype(np.int64))
    valid = (topk >= 0) & (topk < n_cols)
    query = np.arange(topk.shape[0], dtype=np.int64)[:, None] * n_cols + np.where(valid, topk, 0)
    pos = np.searchsorted(keys, query)
    found = np.zeros(topk.shape, dtype=bool)
    inside = pos < len(keys)
    found[inside] = keys[pos[inside]] == query[inside]
    return found & valid
