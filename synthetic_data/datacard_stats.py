"""The measured statistics of a dataset, for the data card.

:func:`compute_statistics` returns a flat, JSON-serialisable dict whose keys are listed, with
their meaning, in :data:`STAT_DESCRIPTIONS`. A statistic that a dataset cannot support (no
posts, no purchases, no ground truth, ...) is ``None``, never an error, so the card works on
any dataset in the contract, real or synthetic. Every step is vectorised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recommender.dataset import Dataset
from synthetic_data.datacard_graph import (
    PowerLawFit,
    dense_index,
    fit_power_law,
    follow_matrix,
    global_clustering,
    reciprocity,
    undirected_graph,
)

Stat = float | int | bool | str | None

TAOBAO_EVENTS: tuple[str, ...] = ("view", "cart", "favorite", "purchase")
"""The events of the Taobao UserBehavior log; the comparable mix is taken over these."""

TAOBAO_MIX: dict[str, float] = {"view": 0.896, "cart": 0.055, "favorite": 0.029, "purchase": 0.020}
"""Taobao UserBehavior (Tianchi) event mix over view/cart/favorite/purchase."""

STAT_DESCRIPTIONS: dict[str, str] = {
    # sizes
    "n_users": "users",
    "n_follows": "directed follow edges",
    "n_posts": "posts (originals and reposts)",
    "n_products": "products in the catalogue",
    "n_interactions": "interaction events",
    "n_groups": "groups (None without groups)",
    "has_ground_truth": "whether the dataset carries planted ground truth",
    # follow graph
    "mean_followees": "mean out-degree (follows per user, over all users)",
    "median_followees": "median out-degree",
    "max_out_degree": "largest number of followees",
    "median_in_degree": "median number of followers",
    "max_in_degree": "largest number of followers",
    "edge_reciprocity": "share of follows u->v whose reverse v->u exists",
    "pair_reciprocity": "mutual pairs / connected pairs",
    "powerlaw_alpha_in": "power-law exponent of the in-degree tail (discrete MLE)",
    "powerlaw_kmin_in": "k_min of the in-degree tail (minimum KS distance)",
    "powerlaw_ks_in": "KS distance of the in-degree fit",
    "powerlaw_alpha_out": "power-law exponent of the out-degree tail (discrete MLE)",
    "powerlaw_kmin_out": "k_min of the out-degree tail (minimum KS distance)",
    "powerlaw_ks_out": "KS distance of the out-degree fit",
    "global_clustering": "transitivity of the undirected graph (3 x triangles / triples)",
    "global_clustering_sampled": "whether global_clustering is a wedge-sampling estimate",
    "global_clustering_random": "transitivity of configuration-model graphs with the same degrees",
    "global_clustering_random_formula": "(<k^2>-<k>)^2 / (<k>^3 n): the closed form of the "
    "above, valid only without hubs beyond sqrt(<k> n)",
    "transitivity_vs_random": "global_clustering / global_clustering_random",
    "avg_clustering": "average local clustering (Watts-Strogatz) over nodes of degree >= 2, "
    "sampled",
    "avg_clustering_random": "average local clustering of a configuration-model graph with "
    "the same degrees",
    "clustering_vs_random": "avg_clustering / avg_clustering_random",
    # posts
    "share_silent_accounts": "share of users who never posted",
    "share_posts_top10pct_posters": "share of posts written by the top 10 % of posters",
    "share_reposts": "share of posts that are reposts",
    "share_posts_with_hashtag": "share of posts with at least one hashtag",
    "share_posts_with_mention": "share of posts with at least one @-mention",
    "share_posts_with_product_link": "share of posts linking a product",
    "n_original_posts": "posts that are not reposts (cascade roots)",
    "share_posts_never_reposted": "share of original posts whose cascade has size 1",
    "mean_cascade_size": "mean posts per repost tree, root included",
    "max_cascade_size": "largest repost tree, root included",
    # users
    "n_active_users": "users with at least one post or interaction",
    "share_active_users": "active users / users",
    "mobile_share_active": "share of active users on mobile (None if no device is known)",
    "share_kol": "share of users flagged as KOL",
    "share_users_in_groups": "share of users in at least one group (None without groups)",
    "mean_group_size": "mean members per group (None without groups)",
    # events
    **{
        f"event_share_{e}": f"share of '{e}' among all events"
        for e in ("view", "click", "favorite", "cart", "purchase")
    },
    **{
        f"taobao_mix_{e}": f"share of '{e}' among view/cart/favorite/purchase"
        for e in TAOBAO_EVENTS
    },
    "n_purchases": "purchase events",
    "n_shoppers": "users with at least one purchase",
    "share_users_shopping": "shoppers / users",
    "purchases_per_shopper": "purchases / shoppers",
    "share_interactions_via_posts": "share of events attributed to a post (via_post_id)",
    "share_users_buying_via_posts": "share of shoppers with a purchase via a post "
    "(None if no event is attributed to a post)",
    "share_purchases_caused_by_friends": "share of purchases with ground-truth cause 'friends'",
    # products
    "product_popularity_gini": "Gini coefficient of interactions per product (catalogue)",
    "share_purchases_top20pct_products": "share of purchases of the top 20 % of products",
    "share_products_with_interactions": "share of products with at least one event",
    "median_price": "median product price (None without prices)",
}
"""Every key of :func:`compute_statistics`, in card order, with its meaning."""


@dataclass
class Measurements:
    """The statistics plus the distributions the plots draw."""

    stats: dict[str, Stat]
    in_degrees: np.ndarray
    out_degrees: np.ndarray
    fit_in: PowerLawFit | None = None
    fit_out: PowerLawFit | None = None
    cascade_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    product_interactions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    product_purchases: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def compute_statistics(
    dataset: Dataset, *, rng: int | np.random.Generator | None = 0
) -> dict[str, Stat]:
    """Measure a dataset: a flat dict keyed as in :data:`STAT_DESCRIPTIONS`.

    Parameters
    ----------
    dataset : Dataset
        Any dataset in the contract (validated or not).
    rng : int, numpy.random.Generator or None
        Seed for wedge sampling on large graphs; the default makes results reproducible.

    Returns
    -------
    dict
        Floats, ints, bools, a str or None (statistic not measurable on this dataset).
    """
    return measure(dataset, rng=rng).stats


def measure(dataset: Dataset, *, rng: int | np.random.Generator | None = 0) -> Measurements:
    """Compute the statistics and keep the distributions behind them for the plots."""
    user_ids = dataset.users["user_id"].to_numpy(dtype=np.int64)
    stats: dict[str, Stat] = dict.fromkeys(STAT_DESCRIPTIONS)
    stats.update(
        n_users=len(user_ids),
        n_follows=len(dataset.follows),
        n_posts=len(dataset.posts),
        n_products=len(dataset.products),
        n_interactions=len(dataset.interactions),
        n_groups=None if dataset.groups is None else len(dataset.groups),
        has_ground_truth=bool(dataset.ground_truth),
    )
    m = Measurements(stats, np.zeros(0, np.int64), np.zeros(0, np.int64))
    _graph_stats(dataset, user_ids, m, rng)
    post_counts = _post_stats(dataset, user_ids, m)
    bought = (dataset.interactions["event"] == "purchase").to_numpy(dtype=bool)
    event_counts = _event_stats(dataset, user_ids, bought, m)
    _user_stats(dataset, user_ids, post_counts, event_counts, m)
    _product_stats(dataset, bought, m)
    stats["share_purchases_caused_by_friends"] = _friends_cause_share(dataset)
    m.stats = {key: _clean(value) for key, value in stats.items()}
    return m


# ------------------------------------------------------------------- sections
def _graph_stats(dataset: Dataset, user_ids: np.ndarray, m: Measurements, rng: Any) -> None:
    n = len(user_ids)
    src = dense_index(user_ids, dataset.follows["follower_id"].to_numpy(dtype=np.int64))
    dst = dense_index(user_ids, dataset.follows["followee_id"].to_numpy(dtype=np.int64))
    known = (src >= 0) & (dst >= 0)
    adj = follow_matrix(src[known], dst[known], n)
    m.out_degrees = np.diff(adj.indptr).astype(np.int64)
    m.in_degrees = np.bincount(adj.indices, minlength=n)
    s = m.stats
    if n:
        s["mean_followees"] = adj.nnz / n
        s["median_followees"] = float(np.median(m.out_degrees))
        s["max_out_degree"] = int(m.out_degrees.max())
        s["median_in_degree"] = float(np.median(m.in_degrees))
        s["max_in_degree"] = int(m.in_degrees.max())
    if adj.nnz == 0:
        return
    s["edge_reciprocity"], s["pair_reciprocity"] = reciprocity(adj)
    for direction, degrees in (("in", m.in_degrees), ("out", m.out_degrees)):
        fit = fit_power_law(degrees)
        setattr(m, f"fit_{direction}", fit)
        if fit is not None:
            s[f"powerlaw_alpha_{direction}"] = fit.alpha
            s[f"powerlaw_kmin_{direction}"] = fit.k_min
            s[f"powerlaw_ks_{direction}"] = fit.ks_distance
    clustering = global_clustering(undirected_graph(adj), rng=rng)
    s["global_clustering"] = clustering.value
    s["global_clustering_random"] = clustering.random_baseline
    s["global_clustering_random_formula"] = clustering.random_formula
    s["global_clustering_sampled"] = clustering.sampled
    if clustering.value is not None and clustering.random_baseline:
        s["transitivity_vs_random"] = clustering.value / clustering.random_baseline
    s["avg_clustering"] = clustering.average
    s["avg_clustering_random"] = clustering.average_random
    if clustering.average is not None and clustering.average_random:
        s["clustering_vs_random"] = clustering.average / clustering.average_random


def _post_stats(dataset: Dataset, user_ids: np.ndarray, m: Measurements) -> np.ndarray:
    """Fill the post statistics; return the number of posts of each user."""
    posts, s = dataset.posts, m.stats
    author = dense_index(user_ids, posts["user_id"].to_numpy(dtype=np.int64))
    counts = np.bincount(author[author >= 0], minlength=len(user_ids))
    if len(user_ids):
        s["share_silent_accounts"] = float(np.mean(counts == 0))
    if len(posts) == 0:
        return counts
    per_poster = np.sort(counts[counts > 0])[::-1]
    top = math.ceil(0.1 * len(per_poster))
    s["share_posts_top10pct_posters"] = per_poster[:top].sum() / per_poster.sum()
    is_repost = posts["repost_of"].notna().to_numpy()
    s["share_reposts"] = float(is_repost.mean())
    s["share_posts_with_hashtag"] = float(np.mean(_list_lengths(posts["hashtags"]) > 0))
    s["share_posts_with_mention"] = float(np.mean(_list_lengths(posts["mentions"]) > 0))
    s["share_posts_with_product_link"] = float(posts["product_id"].notna().mean())
    sizes = cascade_sizes(
        posts["post_id"].to_numpy(dtype=np.int64),
        posts["repost_of"].to_numpy(dtype=np.int64, na_value=-1),
    )
    m.cascade_sizes = sizes
    s["n_original_posts"] = len(sizes)
    if len(sizes):
        s["share_posts_never_reposted"] = float(np.mean(sizes == 1))
        s["mean_cascade_size"] = float(sizes.mean())
        s["max_cascade_size"] = int(sizes.max())
    return counts


def _event_stats(
    dataset: Dataset, user_ids: np.ndarray, bought: np.ndarray, m: Measurements
) -> np.ndarray:
    """Fill the event statistics; return the number of events of each user."""
    events, s = dataset.interactions, m.stats
    user = dense_index(user_ids, events["user_id"].to_numpy(dtype=np.int64))
    per_user = np.bincount(user[user >= 0], minlength=len(user_ids))
    if len(events) == 0:
        return per_user
    counts = events["event"].value_counts()
    for name in STAT_DESCRIPTIONS:
        if name.startswith("event_share_"):
            s[name] = int(counts.get(name.removeprefix("event_share_"), 0)) / len(events)
    taobao = sum(int(counts.get(e, 0)) for e in TAOBAO_EVENTS)
    if taobao:
        for e in TAOBAO_EVENTS:
            s[f"taobao_mix_{e}"] = int(counts.get(e, 0)) / taobao
    via = events["via_post_id"].notna().to_numpy()
    s["share_interactions_via_posts"] = float(via.mean())
    shoppers = np.unique(user[bought & (user >= 0)])
    s["n_purchases"] = int(bought.sum())
    s["n_shoppers"] = len(shoppers)
    if len(user_ids):
        s["share_users_shopping"] = len(shoppers) / len(user_ids)
    if len(shoppers):
        s["purchases_per_shopper"] = int(bought.sum()) / len(shoppers)
        if via.any():
            via_buyers = np.unique(user[bought & via & (user >= 0)])
            s["share_users_buying_via_posts"] = len(via_buyers) / len(shoppers)
    return per_user


def _user_stats(
    dataset: Dataset,
    user_ids: np.ndarray,
    post_counts: np.ndarray,
    event_counts: np.ndarray,
    m: Measurements,
) -> None:
    users, s = dataset.users, m.stats
    if len(user_ids) == 0:
        return
    active = (post_counts > 0) | (event_counts > 0)
    s["n_active_users"] = int(active.sum())
    s["share_active_users"] = float(active.mean())
    device = users["device"].to_numpy(dtype=object)[active]
    if active.any() and np.any(device != "unknown"):
        s["mobile_share_active"] = float(np.mean(device == "mobile"))
    s["share_kol"] = float(users["is_kol"].to_numpy(dtype=bool).mean())
    if dataset.groups is not None and dataset.group_members is not None:
        members = dataset.group_members
        in_group = np.unique(dense_index(user_ids, members["user_id"].to_numpy(dtype=np.int64)))
        s["share_users_in_groups"] = np.count_nonzero(in_group >= 0) / len(user_ids)
        if len(dataset.groups):
            s["mean_group_size"] = len(members) / len(dataset.groups)


def _product_stats(dataset: Dataset, bought: np.ndarray, m: Measurements) -> None:
    products, events, s = dataset.products, dataset.interactions, m.stats
    if len(products) == 0:
        return
    product_ids = products["product_id"].to_numpy(dtype=np.int64)
    item = dense_index(product_ids, events["product_id"].to_numpy(dtype=np.int64))
    known = item >= 0
    m.product_interactions = np.bincount(item[known], minlength=len(products))
    m.product_purchases = np.bincount(item[bought & known], minlength=len(products))
    s["share_products_with_interactions"] = float(np.mean(m.product_interactions > 0))
    if m.product_interactions.sum():
        s["product_popularity_gini"] = gini(m.product_interactions)
    if m.product_purchases.sum():
        top = math.ceil(0.2 * len(products))
        ranked = np.sort(m.product_purchases)[::-1]
        s["share_purchases_top20pct_products"] = ranked[:top].sum() / ranked.sum()
    prices = products["price"].to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isfinite(prices).any():
        s["median_price"] = float(np.nanmedian(prices))


def _friends_cause_share(dataset: Dataset) -> float | None:
    causes = dataset.ground_truth.get("purchase_causes")
    if causes is None or "cause" not in causes.columns or len(causes) == 0:
        return None
    return float((causes["cause"] == "friends").mean())


# -------------------------------------------------------------------- helpers
def cascade_sizes(post_ids: np.ndarray, repost_of: np.ndarray) -> np.ndarray:
    """Size of every repost tree (root included), one entry per original post.

    ``repost_of`` holds the immediate parent's post id (-1 or NaN for an original post).
    Roots are found by pointer jumping: ``root = root[root]`` until nothing changes, which
    takes about log2(depth) whole-array steps. A repost of an unknown post starts its own
    tree; posts on a (malformed) repost cycle belong to no tree.
    """
    n = len(post_ids)
    repost_of = np.asarray(repost_of)
    if repost_of.dtype.kind == "f":
        repost_of = np.where(np.isnan(repost_of), -1, np.nan_to_num(repost_of))
    parent_ids = repost_of.astype(np.int64)
    own = np.arange(n)
    parent = dense_index(post_ids, parent_ids)
    root = np.where(parent < 0, own, parent)
    is_root = root == own
    for _ in range(64):
        jumped = root[root]
        if np.array_equal(jumped, root):
            break
        root = jumped
    in_tree = is_root[root]  # False on and below a cycle, which has no true root
    return np.bincount(root[in_tree], minlength=n)[is_root]


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 = all equal, towards 1 = one takes all)."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float(2 * np.sum(ranks * x) / (n * total) - (n + 1) / n)


def _list_lengths(values: pd.Series) -> np.ndarray:
    """Length of each list in a list column (0 for null)."""
    if isinstance(values.dtype, pd.ArrowDtype):
        return values.list.len().fillna(0).to_numpy(dtype=np.int64)
    try:
        return values.str.len().fillna(0).to_numpy(dtype=np.int64)
    except AttributeError:  # pandas refuses .str on a column of only nulls
        return np.array([0 if v is None else len(v) for v in values], dtype=np.int64)


def _clean(value: Any) -> Stat:
    """Plain Python scalars for JSON; NaN and infinities become None."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    value = float(value)
    return value if math.isfinite(value) else None
