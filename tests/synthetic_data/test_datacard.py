"""Tests of the data card: statistics on hand-made datasets whose answers are known."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import zeta
from typer.testing import CliRunner

from recommender.dataset import Dataset
from socialcart.cli import app
from synthetic_data.datacard import (
    STAT_DESCRIPTIONS,
    TARGETS,
    Target,
    check_targets,
    compute_statistics,
    write_data_card,
)
from synthetic_data.datacard_graph import (
    dense_index,
    fit_power_law,
    follow_matrix,
    global_clustering,
    undirected_graph,
)
from synthetic_data.datacard_plots import PLOT_FILES
from synthetic_data.datacard_stats import cascade_sizes, gini

START = pd.Timestamp("2024-03-01", tz="UTC")
END = pd.Timestamp("2024-03-31", tz="UTC")


# ------------------------------------------------------------------ helpers
def _ts(n: int) -> pd.Series:
    return pd.Series([START + pd.Timedelta(hours=i) for i in range(n)], dtype="datetime64[us, UTC]")


def _ids(values: list[int | None]) -> pd.Series:
    return pd.Series([np.nan if v is None else v for v in values], dtype="float64")


def _strs(values: list[str]) -> pd.Series:
    # Explicit dtype: an empty list would otherwise make a float64 column.
    return pd.Series(values, dtype=object)


def make_dataset(
    *,
    n_users: int = 6,
    follows: list[tuple[int, int]] = (),
    posts: list[tuple[int, int, int | None, int | None, list[str], list[int]]] = (),
    events: list[tuple[int, int, str, int | None]] = (),
    n_products: int = 3,
    devices: list[str] | None = None,
    prices: bool = True,
    groups: bool = False,
    ground_truth: dict[str, pd.DataFrame] | None = None,
) -> Dataset:
    """Users 0..n-1, products 0..n_products-1; posts are (id, user, repost_of, product,
    hashtags, mentions); events are (user, product, event, via_post_id)."""
    users = pd.DataFrame(
        {
            "user_id": np.arange(n_users, dtype=np.int64),
            "handle": _strs([f"u{i}" for i in range(n_users)]),
            "gender": _strs(["unknown"] * n_users),
            "age_band": _strs(["unknown"] * n_users),
            "city_tier": np.zeros(n_users, dtype=np.int64),
            "device": _strs(devices or ["mobile"] * n_users),
            "is_kol": np.zeros(n_users, dtype=bool),
            "share_purchases": np.ones(n_users, dtype=bool),
            "signup_ts": _ts(n_users),
        }
    )
    follows_df = pd.DataFrame(
        {
            "follower_id": np.array([f for f, _ in follows], dtype=np.int64),
            "followee_id": np.array([g for _, g in follows], dtype=np.int64),
            "created_ts": _ts(len(follows)),
        }
    )
    posts_df = pd.DataFrame(
        {
            "post_id": np.array([p[0] for p in posts], dtype=np.int64),
            "user_id": np.array([p[1] for p in posts], dtype=np.int64),
            "created_ts": _ts(len(posts)),
            "text": _strs([f"post {p[0]}" for p in posts]),
            "hashtags": pd.Series([p[4] for p in posts], dtype=object),
            "mentions": pd.Series([p[5] for p in posts], dtype=object),
            "repost_of": _ids([p[2] for p in posts]),
            "product_id": _ids([p[3] for p in posts]),
        }
    )
    products = pd.DataFrame(
        {
            "product_id": np.arange(n_products, dtype=np.int64),
            "shop_id": np.zeros(n_products, dtype=np.int64),
            "category_path": _strs(["Health/Tea"] * n_products),
            "title": _strs([f"product {i}" for i in range(n_products)]),
            "description": _strs([""] * n_products),
            "brand": _strs(["b"] * n_products),
            "price": np.full(n_products, 9.9) if prices else np.full(n_products, np.nan),
        }
    )
    interactions = pd.DataFrame(
        {
            "user_id": np.array([e[0] for e in events], dtype=np.int64),
            "product_id": np.array([e[1] for e in events], dtype=np.int64),
            "event": _strs([e[2] for e in events]),
            "ts": _ts(len(events)),
            "via_post_id": _ids([e[3] for e in events]),
        }
    )
    group_frames = {}
    if groups:
        group_frames = {
            "groups": pd.DataFrame({"group_id": [1], "name": ["g"], "topic": ["Health"]}),
            "group_members": pd.DataFrame({"group_id": [1, 1], "user_id": [0, 1]}),
        }
    manifest = {
        "generator": {"name": "test_datacard", "version": "1"},
        "seed": 7,
        "time_span": {"start": START.isoformat(), "end": END.isoformat()},
    }
    return Dataset(
        users=users,
        follows=follows_df,
        posts=posts_df,
        products=products,
        interactions=interactions,
        **group_frames,
        ground_truth=ground_truth or {},
        manifest=manifest,
    ).validate()


def rich_dataset() -> Dataset:
    """Everything present: follows, a repost tree, every event type, groups, ground truth."""
    return make_dataset(
        follows=[(0, 1), (1, 0), (1, 2), (2, 3), (3, 4), (4, 2), (5, 0)],
        posts=[
            (10, 0, None, 1, ["summer"], []),
            (11, 1, 10, None, [], [0]),
            (12, 2, 11, None, [], []),
            (13, 3, None, None, [], []),
        ],
        events=[
            (0, 0, "view", None),
            (0, 0, "click", None),
            (0, 0, "purchase", None),
            (1, 1, "view", 10),
            (1, 1, "cart", 10),
            (1, 1, "purchase", 10),
            (2, 1, "favorite", None),
        ],
        groups=True,
        ground_truth={"purchase_causes": pd.DataFrame({"cause": ["friends", "interest"]})},
    )


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


# ------------------------------------------------------------- follow graph
def test_reciprocity_on_a_known_graph():
    # 4 edges, one mutual pair (0 <-> 1), 3 connected pairs.
    stats = compute_statistics(make_dataset(follows=[(0, 1), (1, 0), (1, 2), (2, 3)]))
    assert stats["edge_reciprocity"] == pytest.approx(0.5)
    assert stats["pair_reciprocity"] == pytest.approx(1 / 3)
    assert stats["mean_followees"] == pytest.approx(4 / 6)
    assert stats["max_in_degree"] == 1
    assert stats["max_out_degree"] == 2  # user 1 follows 0 and 2


def test_clustering_of_a_triangle_with_a_tail():
    # Triangle 0-1-2 plus the tail 2-3: 1 triangle, wedges 1 + 1 + 3 = 5 -> 3/5.
    stats = compute_statistics(make_dataset(follows=[(0, 1), (1, 2), (2, 0), (3, 2), (2, 1)]))
    assert stats["global_clustering"] == pytest.approx(0.6)
    assert stats["global_clustering_sampled"] is False
    assert stats["global_clustering_random"] > 0
    assert stats["transitivity_vs_random"] == pytest.approx(
        stats["global_clustering"] / stats["global_clustering_random"]
    )
    # Local clustering: nodes 0 and 1 have C = 1, node 2 has C = 1/3 (3 is a leaf, excluded).
    assert stats["avg_clustering"] == pytest.approx((1 + 1 + 1 / 3) / 3, abs=0.01)
    if stats["avg_clustering_random"]:
        assert stats["clustering_vs_random"] == pytest.approx(
            stats["avg_clustering"] / stats["avg_clustering_random"]
        )
    else:  # random graphs of these 4 degrees rarely close a triangle
        assert stats.get("clustering_vs_random") is None


def test_sampled_clustering_estimates_the_exact_value():
    rng = np.random.default_rng(3)
    n = 2_000
    src = rng.integers(0, n, 30_000)
    # Local edges make triangles: neighbours within a window of 10 ids.
    dst = (src + rng.integers(1, 10, len(src))) % n
    graph = undirected_graph(follow_matrix(src, dst, n))
    exact = global_clustering(graph)
    sampled = global_clustering(graph, max_exact_wedges=0, n_samples=200_000, rng=1)
    assert not exact.sampled and sampled.sampled
    assert sampled.value == pytest.approx(exact.value, abs=0.01)
    assert exact.value > 10 * exact.random_baseline
    assert sampled.random_baseline == pytest.approx(exact.random_baseline, abs=0.005)


@pytest.mark.parametrize("ids", [np.array([5, 3, 9, 0]), np.array([5, 3, 9, 10**12])])
def test_dense_index_finds_positions_and_flags_unknown_ids(ids):
    values = np.array([9, 0, 5, 7, -1, 10**12, 3])
    expected = [2, 3 if ids[3] == 0 else -1, 0, -1, -1, 3 if ids[3] > 0 else -1, 1]
    assert dense_index(ids, values).tolist() == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_power_law_mle_recovers_the_exponent(seed):
    alpha = 2.3
    k = np.arange(1, 1_000_001, dtype=np.float64)
    pmf = k**-alpha / zeta(alpha, 1)
    cdf = np.cumsum(pmf)
    rng = np.random.default_rng(seed)
    samples = np.searchsorted(cdf, rng.random(50_000) * cdf[-1]) + 1
    fit = fit_power_law(samples)
    assert fit is not None
    assert fit.alpha == pytest.approx(alpha, abs=0.15)
    assert fit.k_min >= 1 and fit.n_tail >= 10


def test_power_law_fit_needs_enough_distinct_values():
    assert fit_power_law(np.array([1, 2, 3])) is None
    assert fit_power_law(np.full(100, 4)) is None


# ---------------------------------------------------------------- posts
def test_cascade_sizes_of_a_known_repost_tree():
    # 0 <- 1 <- {2, 3}; 4 alone; 5 <- 6. Listed with children before parents.
    post_ids = np.array([3, 2, 6, 1, 0, 4, 5])
    repost_of = np.array([1, 1, 5, 0, np.nan, np.nan, np.nan])
    assert sorted(cascade_sizes(post_ids, repost_of)) == [1, 2, 4]


def test_cascade_sizes_survive_malformed_reposts():
    # 1 <-> 2 is a cycle (no tree), 4 reposts unknown post 99 (starts its own tree), 5 <- 4.
    post_ids = np.array([1, 2, 3, 4, 5])
    repost_of = np.array([2, 1, np.nan, 99, 4])
    assert sorted(cascade_sizes(post_ids, repost_of)) == [1, 2]


def test_post_statistics():
    posts = [
        (0, 0, None, 1, ["a"], []),
        (1, 1, 0, None, [], [0]),
        (2, 2, 1, None, [], []),
        (3, 2, 1, None, [], []),
        (4, 3, None, None, [], []),
        (5, 0, None, None, [], []),
        (6, 1, 5, 2, ["b", "c"], [2, 3]),
    ]
    stats = compute_statistics(make_dataset(posts=posts))
    assert stats["share_posts_never_reposted"] == pytest.approx(1 / 3)
    assert stats["mean_cascade_size"] == pytest.approx(7 / 3)
    assert stats["max_cascade_size"] == 4
    assert stats["n_original_posts"] == 3
    assert stats["share_reposts"] == pytest.approx(4 / 7)
    assert stats["share_posts_with_hashtag"] == pytest.approx(2 / 7)
    assert stats["share_posts_with_mention"] == pytest.approx(2 / 7)
    assert stats["share_posts_with_product_link"] == pytest.approx(2 / 7)
    assert stats["share_silent_accounts"] == pytest.approx(2 / 6)  # users 4 and 5


def test_top_posters_share():
    # 10 posters: user 0 writes 91 posts, users 1..9 one each -> top 10 % = user 0.
    posts = [(i, 0, None, None, [], []) for i in range(91)]
    posts += [(100 + u, u, None, None, [], []) for u in range(1, 10)]
    stats = compute_statistics(make_dataset(n_users=12, posts=posts))
    assert stats["share_posts_top10pct_posters"] == pytest.approx(0.91)
    assert stats["share_silent_accounts"] == pytest.approx(2 / 12)


# --------------------------------------------------------------- events
def test_event_shares_and_purchases():
    stats = compute_statistics(rich_dataset())
    assert stats["event_share_view"] == pytest.approx(2 / 7)
    assert stats["event_share_click"] == pytest.approx(1 / 7)
    assert stats["event_share_purchase"] == pytest.approx(2 / 7)
    # The Taobao mix leaves out 'click': view 2, cart 1, favorite 1, purchase 2.
    assert stats["taobao_mix_view"] == pytest.approx(2 / 6)
    assert stats["taobao_mix_cart"] == pytest.approx(1 / 6)
    assert stats["taobao_mix_favorite"] == pytest.approx(1 / 6)
    assert stats["taobao_mix_purchase"] == pytest.approx(2 / 6)
    assert stats["n_shoppers"] == 2
    assert stats["purchases_per_shopper"] == pytest.approx(1.0)
    assert stats["share_users_buying_via_posts"] == pytest.approx(0.5)
    assert stats["share_purchases_caused_by_friends"] == pytest.approx(0.5)
    # Active: users 0, 1, 2 (posts and events) and 3 (a post); all on mobile.
    assert stats["n_active_users"] == 4
    assert stats["mobile_share_active"] == pytest.approx(1.0)
    assert stats["share_users_in_groups"] == pytest.approx(2 / 6)
    assert stats["share_purchases_top20pct_products"] == pytest.approx(0.5)


def test_mobile_share_counts_only_active_users():
    devices = ["mobile", "desktop", "mobile", "desktop", "desktop", "desktop"]
    events = [(u, 0, "view", None) for u in (0, 1, 2, 3)]
    stats = compute_statistics(make_dataset(devices=devices, events=events))
    assert stats["mobile_share_active"] == pytest.approx(0.5)


def test_gini():
    assert gini(np.array([5, 5, 5, 5])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 8])) == pytest.approx(3 / 4)


# ----------------------------------------------------------- the card
def test_statistics_keys_are_stable_and_json_serialisable():
    stats = compute_statistics(rich_dataset())
    assert list(stats) == list(STAT_DESCRIPTIONS)
    json.dumps(stats, allow_nan=False)
    assert {t.key for t in TARGETS} <= set(STAT_DESCRIPTIONS)


def test_target_check():
    target = Target("x", "x", "0.1-0.2", (0.1, 0.2), "nowhere")
    assert target.check(0.15) is True
    assert target.check(0.3) is False
    assert target.check(None) is None
    verdicts = check_targets({"edge_reciprocity": 0.09, "mean_followees": 10.0})
    assert verdicts["edge_reciprocity"] is True
    assert verdicts["mean_followees"] is False
    assert verdicts["share_silent_accounts"] is None


def test_write_data_card(tmp_path):
    card = write_data_card(rich_dataset(), tmp_path / "card")
    assert card == tmp_path / "card" / "data_card.md"
    text = card.read_text(encoding="utf-8")
    assert "Kwak et al. 2010" in text and "Taobao UserBehavior (Tianchi)" in text
    assert "seed: 7" in text and "test_datacard 1" in text
    for name in PLOT_FILES.values():
        assert f"]({name})" in text
        assert png_size(tmp_path / "card" / name) == (800, 500)
    payload = json.loads((tmp_path / "card" / "data_card.json").read_text())
    assert payload["statistics"]["n_users"] == 6


def test_card_on_a_bare_dataset(tmp_path):
    # Like an imported real dataset: no posts, no groups, no ground truth, no prices,
    # only views and purchases, no post attribution, no device data.
    dataset = make_dataset(
        follows=[(0, 1), (1, 0), (2, 1)],
        events=[(0, 0, "view", None), (0, 0, "purchase", None), (1, 2, "view", None)],
        devices=["unknown"] * 6,
        prices=False,
    )
    stats = compute_statistics(dataset)
    assert stats["share_silent_accounts"] == 1.0
    for key in (
        "share_posts_with_hashtag",
        "share_posts_never_reposted",
        "mean_cascade_size",
        "share_users_buying_via_posts",
        "share_purchases_caused_by_friends",
        "mobile_share_active",
        "median_price",
        "n_groups",
    ):
        assert stats[key] is None, key
    assert stats["global_clustering"] == 0.0  # one open wedge 0-1-2
    assert stats["taobao_mix_view"] == pytest.approx(2 / 3)
    assert stats["event_share_cart"] == 0.0
    card = write_data_card(dataset, tmp_path)
    assert "n/a" in card.read_text(encoding="utf-8")
    assert all((tmp_path / name).exists() for name in PLOT_FILES.values())


def test_card_on_an_empty_dataset(tmp_path):
    stats = compute_statistics(make_dataset())
    assert stats["edge_reciprocity"] is None and stats["powerlaw_alpha_in"] is None
    assert stats["product_popularity_gini"] is None
    write_data_card(make_dataset(), tmp_path)
    assert (tmp_path / "data_card.md").exists()


# ------------------------------------------------------------------- CLI
def test_cli_data_card(tmp_path):
    rich_dataset().save(tmp_path / "ds")
    runner = CliRunner()
    result = runner.invoke(app, ["data-card", str(tmp_path / "ds")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "ds" / "data_card.md").exists()
    assert (tmp_path / "ds" / PLOT_FILES["degrees"]).exists()
    assert "Data card: measured vs published" in result.output
    assert "data_card.md and 4 plots" in result.output
    # Loaded from Parquet (Arrow-backed lists and nullable ids), the numbers are the same.
    saved = json.loads((tmp_path / "ds" / "data_card.json").read_text())["statistics"]
    assert saved == pytest.approx(compute_statistics(rich_dataset()))

    result = runner.invoke(
        app, ["data-card", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "--no-plots"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "data_card.md").exists()
    assert not any((tmp_path / "o").glob("*.png"))


def test_cli_data_card_on_a_bad_directory(tmp_path):
    result = CliRunner().invoke(app, ["data-card", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_random_graph_clustering_matches_its_configuration_model_baseline():
    # A heavy-tailed Chung-Lu graph is itself random: its clustering is the baseline's,
    # while the closed-form expectation overshoots because of its hubs.
    rng = np.random.default_rng(5)
    n = 5_000
    weights = np.minimum((rng.pareto(1.2, n) + 1) * 3, n / 4)
    p = weights / weights.sum()
    m = int(weights.sum() / 2)
    graph = undirected_graph(follow_matrix(rng.choice(n, m, p=p), rng.choice(n, m, p=p), n))
    clustering = global_clustering(graph, rng=0)
    assert clustering.value / clustering.random_baseline == pytest.approx(1.0, abs=0.25)
    assert clustering.random_formula > 2 * clustering.random_baseline
