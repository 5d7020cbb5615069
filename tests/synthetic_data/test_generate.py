"""Tests of ``generate``: determinism, the contract, ground truth, language and statistics.

Schema and integrity tests use the session ``tiny`` datasets (see ``conftest.py``);
statistical tests run over several seeds of a slightly bigger world and assert tolerances;
one pinned-seed test asserts exact row counts to flag unintended changes to the generator.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import synthetic_data
from recommender.dataset import Dataset
from synthetic_data import generate, make_config
from synthetic_data.config import GeneratorConfig
from synthetic_data.datacard_stats import compute_statistics
from synthetic_data.timeline import DAY_US, Timeline
from synthetic_data.vocab import load_vocabulary

TABLE_FILES = (
    "users.parquet",
    "follows.parquet",
    "posts.parquet",
    "products.parquet",
    "interactions.parquet",
    "groups.parquet",
    "group_members.parquet",
)
GROUND_TRUTH = (
    "life_event_leaves",
    "post_kinds",
    "product_appeal",
    "purchase_causes",
    "user_interests",
    "user_latent",
    "user_life_events",
)
CAUSES = {"interest", "life_event", "popularity", "friends", "kol"}
CJK = "[\u4e00-\u9fff]"  # literal characters: Arrow's RE2 has no \u escapes

STAT_SEEDS = (0, 1, 2)
STAT_SIZE = {"n_users": 3000, "n_products": 2000, "n_days": 20}


# ------------------------------------------------------------------ helpers
def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _micros(ts: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 microseconds since the epoch."""
    return ((ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "us")).to_numpy(np.int64)


def _ids(values: pd.Series) -> np.ndarray:
    """A nullable id column as int64, -1 for null."""
    return values.to_numpy(dtype=np.int64, na_value=-1)


def _timeline(dataset: Dataset) -> Timeline:
    c = dataset.manifest["config"]
    return Timeline.from_config(c["start_date"], c["n_days"], c["signup_years"])


def _follow_keys(dataset: Dataset) -> np.ndarray:
    """Sorted ``follower * n_users + followee`` keys."""
    n = len(dataset.users)
    f = dataset.follows
    return np.sort(f["follower_id"].to_numpy(np.int64) * n + f["followee_id"].to_numpy(np.int64))


def _is_follow(dataset: Dataset, follower: np.ndarray, followee: np.ndarray) -> np.ndarray:
    keys = _follow_keys(dataset)
    wanted = follower.astype(np.int64) * len(dataset.users) + followee.astype(np.int64)
    return np.isin(wanted, keys)


def _clock_like_values(value: object, now: float) -> list[object]:
    """Numbers or date-like strings in a JSON value that could be the time of writing."""
    found: list[object] = []
    if isinstance(value, dict):
        for item in value.values():
            found += _clock_like_values(item, now)
    elif isinstance(value, list):
        for item in value:
            found += _clock_like_values(item, now)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        ten_years = 10 * 365 * 86_400
        for scale in (1, 1e3, 1e6, 1e9):  # seconds, ms, us, ns since the epoch
            if (now - ten_years) * scale <= value <= (now + ten_years) * scale:
                found.append(value)
    elif isinstance(value, str) and re.search(r"\d{4}-\d\d-\d\d|\d\d:\d\d:\d\d", value):
        found.append(value)
    return found


# -------------------------------------------------------------- determinism
def test_same_seed_gives_byte_identical_files(tiny_en_dir: Path, tmp_path: Path) -> None:
    again = generate(make_config("tiny", seed=0)).save(tmp_path / "again")
    first, second = _files(tiny_en_dir), _files(again)
    assert "manifest.json" in first
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def test_same_seed_gives_identical_files_in_a_fresh_process(
    tiny_en_dir: Path, tmp_path: Path
) -> None:
    # Another interpreter with another string-hash seed: no dependence on set or dict
    # order, object ids or state left over in this process.
    out = tmp_path / "fresh"
    code = (
        "import sys; from synthetic_data import generate, make_config; "
        "generate(make_config('tiny', seed=0)).save(sys.argv[1])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, env=env, timeout=300)
    assert _files(out) == _files(tiny_en_dir)


def test_different_seed_gives_different_files(tiny_en_dir: Path, tmp_path: Path) -> None:
    other = generate(make_config("tiny", seed=1)).save(tmp_path / "seed1")
    first, second = _files(tiny_en_dir), _files(other)
    assert first.keys() == second.keys()
    same = [name for name in (*TABLE_FILES, "manifest.json") if first[name] == second[name]]
    assert same == []


def test_manifest_records_provenance(tiny_en_dir: Path) -> None:
    manifest = json.loads((tiny_en_dir / "manifest.json").read_text(encoding="utf-8"))
    config = make_config("tiny", seed=0)
    assert manifest["config"] == config.to_dict()
    assert manifest["seed"] == 0
    assert manifest["generator"] == {
        "name": "socialcart.synthetic_data",
        "version": synthetic_data.__version__,
    }
    timeline = Timeline.from_config(config.start_date, config.n_days, config.signup_years)
    assert manifest["time_span"] == timeline.span()

    on_disk = {
        str(p.relative_to(tiny_en_dir)) for p in tiny_en_dir.rglob("*.parquet") if p.is_file()
    }
    assert set(manifest["files"]) == on_disk
    assert on_disk == {*TABLE_FILES, *(f"ground_truth/{name}.parquet" for name in GROUND_TRUTH)}
    for rel, meta in manifest["files"].items():
        assert meta["sha256"] == hashlib.sha256((tiny_en_dir / rel).read_bytes()).hexdigest()

    loaded = Dataset.load(tiny_en_dir)
    expected_counts = {name: len(frame) for name, frame in loaded.tables()}
    expected_counts |= {f"ground_truth/{k}": len(v) for k, v in loaded.ground_truth.items()}
    assert manifest["row_counts"] == expected_counts


def test_manifest_has_no_wall_clock_fields(tiny_en_dir: Path) -> None:
    manifest = json.loads((tiny_en_dir / "manifest.json").read_text(encoding="utf-8"))
    # The simulated period's dates are configuration, not the time of writing.
    rest = {k: v for k, v in manifest.items() if k not in ("config", "time_span")}
    assert _clock_like_values(rest, time.time()) == []
    assert set(manifest["time_span"]) == {"start", "end"}


def test_pinned_seed_row_counts(tiny_en_dir: Path) -> None:
    # Computed once from `tiny`, seed 0. A change here means the generator's output
    # changed: if that was intended, update the numbers in the same change.
    manifest = json.loads((tiny_en_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["row_counts"] == PINNED_TINY_SEED0_ROW_COUNTS


PINNED_TINY_SEED0_ROW_COUNTS = {
    "follows": 23059,
    "ground_truth/life_event_leaves": 104,
    "ground_truth/post_kinds": 3603,
    "ground_truth/product_appeal": 1500,
    "ground_truth/purchase_causes": 1539,
    "ground_truth/user_interests": 5092,
    "ground_truth/user_latent": 1000,
    "ground_truth/user_life_events": 261,
    "group_members": 703,
    "groups": 20,
    "interactions": 84561,
    "posts": 3603,
    "products": 1500,
    "users": 1000,
}


# ------------------------------------------------------- schema, integrity
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_saved_dataset_loads_and_validates(lang: str, request: pytest.FixtureRequest) -> None:
    directory = request.getfixturevalue(f"tiny_{lang}_dir")
    dataset = request.getfixturevalue(f"tiny_{lang}")
    loaded = Dataset.load(directory)  # validates: types, keys, foreign keys, ranges
    assert {name: len(f) for name, f in loaded.tables()} == {
        name: len(f) for name, f in dataset.tables()
    }
    assert set(loaded.ground_truth) == set(GROUND_TRUTH)
    assert loaded.manifest["config"]["lang"] == lang


def test_generated_dataset_validates_in_memory(tiny_en: Dataset) -> None:
    tiny_en.validate()


def test_every_reference_resolves(tiny_en: Dataset) -> None:
    d = tiny_en
    users = d.users["user_id"]
    products = d.products["product_id"]
    posts = d.posts["post_id"]
    assert users.is_unique and products.is_unique and posts.is_unique
    assert d.follows["follower_id"].isin(users).all()
    assert d.follows["followee_id"].isin(users).all()
    assert d.posts["user_id"].isin(users).all()
    assert d.interactions["user_id"].isin(users).all()
    assert d.interactions["product_id"].isin(products).all()
    assert d.group_members["user_id"].isin(users).all()
    assert d.group_members["group_id"].isin(d.groups["group_id"]).all()
    linked = _ids(d.posts["product_id"])
    assert np.isin(linked[linked >= 0], products).all()
    parents = _ids(d.posts["repost_of"])
    assert np.isin(parents[parents >= 0], posts).all()
    via = _ids(d.interactions["via_post_id"])
    assert np.isin(via[via >= 0], posts).all()
    mentioned = d.posts["mentions"].list.flatten().to_numpy(np.int64)
    assert len(mentioned) > 0
    assert np.isin(mentioned, users).all()


def test_no_self_follows_or_duplicate_follows(tiny_en: Dataset) -> None:
    f = tiny_en.follows
    assert not (f["follower_id"] == f["followee_id"]).any()
    assert not f.duplicated(["follower_id", "followee_id"]).any()


def test_timestamps_fall_in_their_periods(tiny_en: Dataset) -> None:
    d, tl = tiny_en, _timeline(tiny_en)
    signup = _micros(d.users["signup_ts"])
    assert (signup >= tl.signup_start_us).all() and (signup < tl.start_us).all()
    for ts in (d.posts["created_ts"], d.interactions["ts"]):
        us = _micros(ts)
        assert (us >= tl.start_us).all() and (us <= tl.end_us).all()
    # Follows are made before the simulated period, after both people signed up.
    followed = _micros(d.follows["created_ts"])
    assert (followed < tl.start_us).all()
    assert (followed >= signup[d.follows["follower_id"]]).all()
    assert (followed >= signup[d.follows["followee_id"]]).all()


def test_reposts_share_an_earlier_post_of_someone_followed(tiny_en: Dataset) -> None:
    p = tiny_en.posts
    parent = _ids(p["repost_of"])
    child = np.flatnonzero(parent >= 0)
    assert len(child) > 0
    created = _micros(p["created_ts"])
    assert (created[parent[child]] < created[child]).all()
    author = p["user_id"].to_numpy(np.int64)
    assert _is_follow(tiny_en, author[child], author[parent[child]]).all()


def test_a_repost_links_the_product_of_the_post_it_shares(tiny_en: Dataset) -> None:
    p = tiny_en.posts
    parent = _ids(p["repost_of"])
    product = _ids(p["product_id"])
    child = np.flatnonzero(parent >= 0)
    mismatched = child[product[child] != product[parent[child]]]
    assert mismatched.tolist() == []


def test_via_post_links_the_product_interacted_with(tiny_en: Dataset) -> None:
    it, posts = tiny_en.interactions, tiny_en.posts
    via = _ids(it["via_post_id"])
    rows = np.flatnonzero(via >= 0)
    assert len(rows) > 0
    post_product = _ids(posts["product_id"])[via[rows]]
    assert (post_product == it["product_id"].to_numpy(np.int64)[rows]).all()
    # The post existed before the interaction it led to.
    assert (_micros(posts["created_ts"])[via[rows]] <= _micros(it["ts"])[rows]).all()


def test_mentions_are_people_the_author_follows(tiny_en: Dataset) -> None:
    p = tiny_en.posts
    lengths = p["mentions"].list.len().to_numpy(np.int64)
    author = np.repeat(p["user_id"].to_numpy(np.int64), lengths)
    mentioned = p["mentions"].list.flatten().to_numpy(np.int64)
    assert len(mentioned) > 0
    assert _is_follow(tiny_en, author, mentioned).all()


def test_every_purchase_follows_a_view_the_same_day(tiny_en: Dataset) -> None:
    it = tiny_en.interactions
    units = pd.DataFrame(
        {
            "user_id": it["user_id"].to_numpy(np.int64),
            "product_id": it["product_id"].to_numpy(np.int64),
            "day": _micros(it["ts"]) // DAY_US,
            "event": it["event"].astype(str).to_numpy(),
        }
    )
    keys = ["user_id", "product_id", "day"]
    viewed = units.loc[units["event"] == "view", keys].drop_duplicates()
    bought = units.loc[units["event"] == "purchase", keys]
    assert len(bought) > 0
    assert len(bought.merge(viewed, on=keys)) == len(bought)


def test_user_attributes_look_like_weibo(tiny_en: Dataset) -> None:
    users, config = tiny_en.users, make_config("tiny", seed=0)
    assert 0.75 <= users["share_purchases"].mean() <= 0.95
    assert users["is_kol"].sum() == config.n_kols
    assert users["is_kol"].mean() <= 0.02
    assert users["handle"].is_unique
    active = users["user_id"].isin(tiny_en.interactions["user_id"]) | users["user_id"].isin(
        tiny_en.posts["user_id"]
    )
    mobile = (users.loc[active, "device"] == "mobile").mean()
    assert 0.7 <= mobile < 1.0


def test_category_paths_have_at_least_two_levels(tiny_en: Dataset) -> None:
    vocab = load_vocabulary("en")
    assert all(len(path.split("/")) >= 2 for path in vocab.leaves)
    assert len(vocab.top_levels) >= 12
    assert vocab.n_leaves >= 80
    paths = tiny_en.products["category_path"]
    assert paths.isin(vocab.leaves).all()
    assert (paths.str.split("/").str.len() >= 2).all()


def test_both_languages_share_the_category_tree() -> None:
    en, zh = load_vocabulary("en"), load_vocabulary("zh")
    assert en.leaves == zh.leaves and en.top_levels == zh.top_levels


# -------------------------------------------------------------- ground truth
def test_user_interests_and_communities(tiny_en: Dataset) -> None:
    gt = tiny_en.ground_truth
    assert set(gt) == set(GROUND_TRUTH)
    interests = gt["user_interests"]
    weights = interests.groupby("user_id")["weight"].sum()
    assert weights.index.tolist() == tiny_en.users["user_id"].tolist()  # everyone has some
    np.testing.assert_allclose(weights.to_numpy(), 1.0, rtol=1e-9)
    assert interests["category_path"].isin(load_vocabulary("en").leaves).all()
    # A person's community is their strongest interest.
    strongest = interests.loc[interests.groupby("user_id")["weight"].idxmax()]
    latent = gt["user_latent"].set_index("user_id")["community"]
    assert (latent.loc[strongest["user_id"]].to_numpy() == strongest["category_path"]).all()


def test_purchase_causes_has_one_row_per_purchase(tiny_en: Dataset) -> None:
    causes = tiny_en.ground_truth["purchase_causes"]
    it = tiny_en.interactions
    purchases = it.loc[it["event"] == "purchase", ["user_id", "product_id", "ts", "via_post_id"]]
    assert len(purchases) > 0

    def canonical(frame: pd.DataFrame) -> np.ndarray:
        rows = np.column_stack(
            [
                frame["user_id"].to_numpy(np.int64),
                frame["product_id"].to_numpy(np.int64),
                _micros(frame["ts"]),
                _ids(frame["via_post_id"]),
            ]
        )
        return rows[np.lexsort(rows.T[::-1])]

    np.testing.assert_array_equal(canonical(causes), canonical(purchases))
    assert set(causes["cause"]) <= CAUSES
    assert {"interest", "friends"} <= set(causes["cause"])


def test_user_life_events(tiny_en: Dataset) -> None:
    events = tiny_en.ground_truth["user_life_events"]
    config, tl = make_config("tiny", seed=0), _timeline(tiny_en)
    assert events["user_id"].is_unique
    assert events["user_id"].isin(tiny_en.users["user_id"]).all()
    assert events["event"].isin(load_vocabulary("en").events).all()
    assert (
        events["end_ts"] - events["start_ts"] == pd.Timedelta(days=config.life_event_days)
    ).all()
    start = _micros(events["start_ts"])
    assert (start >= tl.start_us).all() and (start <= tl.end_us).all()
    assert abs(len(events) / config.n_users - config.life_event_rate) <= 0.05


# ----------------------------------------------------------------- language
def test_chinese_text_is_chinese(tiny_zh: Dataset) -> None:
    d = tiny_zh
    assert d.users["handle"].str.contains(CJK).all()
    assert d.products["title"].str.contains(CJK).all()
    assert d.groups["name"].str.contains(CJK).all()
    # Reposts may be a bare "//" (a repost without comment); every original post is Chinese.
    original = d.posts["repost_of"].isna()
    assert d.posts.loc[original, "text"].str.contains(CJK).all()
    assert d.posts["text"].str.contains(CJK).mean() >= 0.95


def test_english_text_has_no_chinese(tiny_en: Dataset) -> None:
    d = tiny_en
    for column in (d.users["handle"], d.products["title"], d.posts["text"], d.groups["name"]):
        assert not column.str.contains(CJK).any()


@pytest.mark.parametrize(("lang", "written"), [("zh", "#{}#"), ("en", "#{}")])
def test_hashtags_are_written_in_the_text(
    lang: str, written: str, request: pytest.FixtureRequest
) -> None:
    posts = request.getfixturevalue(f"tiny_{lang}").posts
    tagged = posts[posts["hashtags"].list.len() > 0]
    assert len(tagged) > 0
    for text, tags in zip(tagged["text"], tagged["hashtags"], strict=True):
        assert written.format(tags[0]) in text
        if lang == "en":
            assert f"#{tags[0]}#" not in text


# -------------------------------------------------------------- statistics
def _stat_config(seed: int, **overrides: float) -> GeneratorConfig:
    return make_config("tiny", seed=seed, overrides={**STAT_SIZE, **overrides})


@pytest.fixture(scope="module")
def worlds() -> list[Dataset]:
    """Seeds 0, 1, 2 at 3000 users, 2000 products, 20 days."""
    return [generate(_stat_config(seed)) for seed in STAT_SEEDS]


@pytest.fixture(scope="module")
def world_stats(worlds: list[Dataset]) -> list[dict]:
    return [compute_statistics(d) for d in worlds]


def test_edge_reciprocity_is_low(world_stats: list[dict]) -> None:
    for stats in world_stats:
        assert 0.05 <= stats["edge_reciprocity"] <= 0.15


def test_in_degree_tail_is_heavy() -> None:
    # The most-followed account is capped at ~5 % of all people (graph.MAX_FOLLOWER_SHARE),
    # so at 3000 users the largest in-degree is only ~11-14x the median; at 10 000 users the
    # cap no longer hides the tail. One day suffices: the graph does not depend on n_days.
    for seed in STAT_SEEDS:
        config = make_config(
            "tiny", seed=seed, overrides={"n_users": 10_000, "n_products": 500, "n_days": 1}
        )
        follows = generate(config).follows
        in_degree = np.bincount(follows["followee_id"], minlength=config.n_users)
        assert in_degree.max() >= 20 * np.median(in_degree)


def test_clustering_is_far_above_a_random_graph(world_stats: list[dict]) -> None:
    for stats in world_stats:
        assert stats["clustering_vs_random"] > 1.5


def test_follows_are_homophilous(worlds: list[Dataset]) -> None:
    for d in worlds:
        community = d.ground_truth["user_latent"]["community"].to_numpy()
        follower = d.follows["follower_id"].to_numpy(np.int64)
        followee = d.follows["followee_id"].to_numpy(np.int64)
        same = np.mean(community[follower] == community[followee])
        # Probability that two distinct people drawn at random share their community.
        _, sizes = np.unique(community, return_counts=True)
        n = len(community)
        random_pairs = np.sum(sizes * (sizes - 1)) / (n * (n - 1))
        assert same >= 3 * random_pairs


def test_event_mix_matches_taobao(world_stats: list[dict]) -> None:
    for stats in world_stats:
        assert 0.85 <= stats["taobao_mix_view"] <= 0.93
        assert 0.012 <= stats["taobao_mix_purchase"] <= 0.03


def test_silent_share_matches_the_config(world_stats: list[dict]) -> None:
    silent_share = _stat_config(0).silent_share
    for stats in world_stats:
        assert abs(stats["share_silent_accounts"] - silent_share) <= 0.05


def test_generation_without_social_exposure() -> None:
    config = make_config(
        "tiny", seed=0, overrides={"friend_reach": 0.0, "showoff_reach": 0.0, "kol_exposure": 0.0}
    )
    causes = generate(config).ground_truth["purchase_causes"]["cause"]
    assert len(causes) > 0
    assert not causes.isin(["friends", "kol"]).any()


# ------------------------------------------------------- social influence
def _followee_purchase_lift(dataset: Dataset) -> tuple[int, int, int, int]:
    """Purchases after views, split by whether someone followed had bought first.

    The unit is a (user, product, day) on which the user viewed the product; the outcome is
    whether the user bought it that day; the unit is *exposed* if someone the user follows
    bought the product on a strictly earlier day. Both groups are restricted to views, so
    the comparison is of buying given a view, not of being shown the product.

    Returns ``(exposed purchases, exposed units, unexposed purchases, unexposed units)``.
    """
    it = dataset.interactions
    events = pd.DataFrame(
        {
            "user_id": it["user_id"].to_numpy(np.int64),
            "product_id": it["product_id"].to_numpy(np.int64),
            "day": _micros(it["ts"]) // DAY_US,
            "event": it["event"].astype(str).to_numpy(),
        }
    )
    keys = ["user_id", "product_id", "day"]
    viewed = events.loc[events["event"] == "view", keys].drop_duplicates()
    bought = events.loc[events["event"] == "purchase", keys].drop_duplicates()
    units = viewed.merge(bought, on=keys, how="left", indicator=True)
    units["bought"] = units.pop("_merge") == "both"
    follows = dataset.follows[["follower_id", "followee_id"]]
    first_followee_purchase = (
        bought.rename(columns={"user_id": "followee_id"})
        .merge(follows, on="followee_id")
        .groupby(["follower_id", "product_id"], as_index=False)["day"]
        .min()
        .rename(columns={"follower_id": "user_id", "day": "followee_day"})
    )
    units = units.merge(first_followee_purchase, on=["user_id", "product_id"], how="left")
    exposed = (units["followee_day"] < units["day"]).to_numpy()  # NaN (never) is False
    bought_flags = units["bought"].to_numpy()
    return (
        int(bought_flags[exposed].sum()),
        int(exposed.sum()),
        int(bought_flags[~exposed].sum()),
        int((~exposed).sum()),
    )


def _lift(counts: tuple[int, int, int, int]) -> float:
    exposed_buys, exposed, other_buys, other = counts
    assert exposed >= 1000 and other >= 1000  # enough units for a stable rate
    return (exposed_buys / exposed) / (other_buys / other)


@pytest.fixture(scope="module")
def lifts(worlds: list[Dataset]) -> list[tuple[int, int, int, int]]:
    return [_followee_purchase_lift(d) for d in worlds]


@pytest.fixture(scope="module")
def lifts_without_influence() -> list[tuple[int, int, int, int]]:
    """The same worlds (users, graph, posts) with the causal social knob switched off."""
    return [
        _followee_purchase_lift(generate(_stat_config(seed, influence_strength=0.0)))
        for seed in STAT_SEEDS
    ]


def test_purchases_more_likely_after_a_followee_bought(lifts: list) -> None:
    # Seen at about 2x with the default influence_strength; the causal comparison is below.
    for counts in lifts:
        assert _lift(counts) > 1.6


def test_social_influence_is_causal(lifts: list, lifts_without_influence: list) -> None:
    # Shared tastes and popular products make followees' purchases predictive even without
    # influence (the lift is ~1.3 with influence_strength=0). The causal effect is what the
    # influence knob adds on top of that, in the same users, graph and posts.
    for on, off in zip(lifts, lifts_without_influence, strict=True):
        assert _lift(on) > 1.5
        assert _lift(on) > _lift(off)
    pooled_on = tuple(map(sum, zip(*lifts, strict=True)))
    pooled_off = tuple(map(sum, zip(*lifts_without_influence, strict=True)))
    assert _lift(pooled_on) >= 1.2 * _lift(pooled_off)
