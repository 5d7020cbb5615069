"""Tests of ``socialcart bench train`` and ``bench recommend`` on the tiny preset: tables,
JSON, the model cache and exit codes. No timing is asserted (tiny says nothing of large).
"""

from __future__ import annotations

import json
from numbers import Real

import pytest
from typer.testing import CliRunner

from benchmarks import recommend, train
from socialcart.cli import app

TRAIN_KEYS = {"hybrid_fit_s", "als_fit_s", "fit_ratio", "peak_rss_gib", "load_s", "save_s"}
SERVE_KEYS = {
    "single_p99_ms",
    "single_p50_ms",
    "single_max_ms",
    "batch_hybrid_s",
    "batch_als_s",
    "batch_ratio",
    "load_s",
    "peak_rss_gib",
}
SERVE_ARGS = ["--users", "20", "--warmup", "2", "--batch-users", "60"]


def _invoke(args):
    return CliRunner().invoke(app, args, env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    return [
        "--preset",
        "tiny",
        "--cache-dir",
        str(root / "data"),
        "--model-dir",
        str(root / "models"),
    ], root


@pytest.fixture(scope="module")
def train_run(dirs):
    args, root = dirs
    result = _invoke(["bench", "train", *args, "--json", str(root / "train.json")])
    return result, json.loads((root / "train.json").read_text())


@pytest.fixture(scope="module")
def serve_run(dirs, train_run):
    args, root = dirs
    result = _invoke(["bench", "recommend", *args, *SERVE_ARGS, "--json", str(root / "serve.json")])
    return result, json.loads((root / "serve.json").read_text())


@pytest.mark.parametrize("run", ["train_run", "serve_run"])
def test_exit_code_says_whether_every_target_was_met(run, request):
    result, report = request.getfixturevalue(run)
    assert result.exit_code in (0, 1), result.output
    assert result.exit_code == (0 if report["passed"] else 1)
    for figure in report["figures"].values():
        assert figure["label"] in result.stdout
    assert "machine:" in result.stdout


def test_train_json_holds_every_figure(train_run, dirs):
    _, report = train_run
    assert set(report["figures"]) == TRAIN_KEYS
    for key, figure in report["figures"].items():
        assert isinstance(figure["value"], Real) and figure["value"] > 0, key
    gated = {k for k, f in report["figures"].items() if f["target"] is not None}
    assert gated == {"fit_ratio"}
    assert len(report["training"]["als_fit_s"]) == 2
    assert report["machine"]["cores"] >= 1
    _, root = dirs
    assert (root / "models" / "tiny-seed0" / "model.json").is_file()
    assert (root / "data" / "tiny-seed0" / "manifest.json").is_file()


def test_recommend_reuses_the_cached_model(serve_run):
    _, report = serve_run
    assert report["training"] is None
    assert set(report["figures"]) == SERVE_KEYS
    gated = {k for k, f in report["figures"].items() if f["target"] is not None}
    assert gated == {"single_p99_ms", "batch_ratio"}
    serving = report["serving"]
    assert serving["latency_ms"]["n"] == 20
    assert serving["batch"]["n_users"] == 60
    assert serving["batch"]["all_users"] is False
    assert len(serving["batch"]["als_s"]) == 4


def test_an_unusable_cached_model_is_retrained(dirs, serve_run, tmp_path):
    args, root = dirs
    meta_file = root / "models" / "tiny-seed0" / "model.json"
    meta = json.loads(meta_file.read_text())
    meta["format_version"] = 999
    meta_file.write_text(json.dumps(meta))
    report_file = tmp_path / "serve.json"
    result = _invoke(["bench", "recommend", *args, *SERVE_ARGS, "--json", str(report_file)])
    assert result.exit_code in (0, 1), result.output
    report = json.loads(report_file.read_text())
    assert report["training"] is not None
    assert json.loads(meta_file.read_text())["format_version"] != 999


def test_missed_targets_fail_and_met_ones_pass():
    result = {
        "k": 20,
        "warmup": 5,
        "load_s": 1.0,
        "peak_rss_gib": 1.0,
        "latency_ms": {"n": 10, "p50": 2.0, "p99": 4.0, "max": 5.0},
        "batch": {"n_users": 100, "all_users": True, "als_s": [2.0, 1.0], "hybrid_s": 0.4},
    }
    by_key = {f.key: f for f in recommend.figures("x", result)}
    assert by_key["batch_ratio"].value == pytest.approx(0.4)  # the faster ALS run counts
    assert by_key["batch_ratio"].passed and by_key["single_p99_ms"].passed
    result["latency_ms"]["p99"] = 10.5
    assert {f.key: f for f in recommend.figures("x", result)}["single_p99_ms"].passed is False
    fit = {"als_fit_s": [10.0, 12.0], "hybrid_fit_s": 31.0, "peak_rss_gib": 2.0}
    fit |= {"peak_rss_before_hybrid_gib": 1.0, "load_s": 1.0, "save_s": None}
    by_key = {f.key: f for f in train.figures("x", fit)}
    assert by_key["fit_ratio"].value == pytest.approx(3.1)
    assert by_key["fit_ratio"].passed is False
    assert "save_s" not in by_key


@pytest.mark.parametrize(
    "args",
    [
        ["bench", "train", "--preset", "huge"],
        ["bench", "recommend", "--preset", "huge"],
        ["bench", "recommend", "--users", "0"],
        ["bench", "recommend", "--k", "0"],
        ["bench", "train", "--data", "/nonexistent/dataset"],
    ],
)
def test_bad_options_exit_2(args):
    result = _invoke(args)
    assert result.exit_code == 2, result.output
