"""Tests of ``socialcart bench generate`` on the tiny preset: table, JSON and exit codes.

No timing is asserted; the figures of ``tiny`` say nothing about ``large``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from numbers import Real

import pytest
from typer.testing import CliRunner

from benchmarks.generate import NETWORKIT_HINT, figures
from benchmarks.memory import run_child
from socialcart.cli import app
from synthetic_data.generate import STAGES

HAS_NETWORKIT = importlib.util.find_spec("networkit") is not None
FIGURE_KEYS = {
    "generate_total_s",
    "generate_s",
    "save_s",
    "peak_rss_gib",
    "follows_edges_per_s",
    "networkit_edges_per_s",
    "follows_ratio",
    "load_median_s",
    "load_best_s",
}
NETWORKIT_KEYS = {"networkit_edges_per_s", "follows_ratio"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    report = root / "report.json"
    args = ["bench", "generate", "--preset", "tiny", "--load-preset", "tiny", "--repeats", "1"]
    args += ["--cache-dir", str(root / "cache"), "--out", str(root / "out"), "--json", str(report)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    return result, json.loads(report.read_text()), root


def test_exit_code_says_whether_every_target_was_met(tiny_run):
    result, report, _ = tiny_run
    assert result.exit_code in (0, 1), result.output
    assert result.exit_code == (0 if report["passed"] else 1)


def test_table_names_every_figure_and_stage(tiny_run):
    result, report, _ = tiny_run
    for figure in report["figures"].values():
        assert figure["label"] in result.stdout
    for stage in STAGES:
        assert stage in result.stdout
    assert "machine:" in result.stdout


def test_json_holds_every_figure_as_a_number(tiny_run):
    _, report, _ = tiny_run
    assert set(report["figures"]) == FIGURE_KEYS
    for key, figure in report["figures"].items():
        if key in NETWORKIT_KEYS and not HAS_NETWORKIT:
            assert figure["value"] is None and figure["passed"] is None
            assert NETWORKIT_HINT in figure["note"]
        else:
            assert isinstance(figure["value"], Real) and figure["value"] > 0, key
    gated = {k for k, f in report["figures"].items() if f["target"] is not None}
    assert gated == {"generate_total_s", "peak_rss_gib", "follows_ratio", "load_median_s"}
    assert set(report["generation"]["stages"]) == set(STAGES)
    assert all(isinstance(s, Real) for s in report["generation"]["stages"].values())
    assert report["generation"]["rows"]["follows"] == report["follows"]["edges"]


def test_out_keeps_the_dataset_and_load_uses_the_cache(tiny_run):
    _, _, root = tiny_run
    assert (root / "out" / "manifest.json").is_file()
    assert (root / "cache" / "tiny-seed0" / "manifest.json").is_file()
    assert (root / "cache" / "tiny-seed0.fingerprint").is_file()


def test_without_networkit_the_ratio_is_skipped_not_guessed():
    generation = {
        "total_s": 2.0,
        "generate_s": 1.5,
        "save_s": 0.5,
        "peak_rss_gib": 1.0,
        "peak_rss_generate_gib": 0.9,
    }
    follows = {"edges": 100, "seconds": [1.0], "edges_per_s": 100.0, "networkit": None}
    by_key = {f.key: f for f in figures("tiny", "tiny", generation, follows, None)}
    assert by_key["follows_ratio"].value is None
    assert by_key["follows_ratio"].passed is None
    assert NETWORKIT_HINT in by_key["follows_ratio"].note
    assert by_key["generate_total_s"].passed is True
    assert "load_median_s" not in by_key


@pytest.mark.parametrize(("option", "value"), [("--preset", "huge"), ("--load-preset", "huge")])
def test_unknown_preset_exits_2(option, value):
    result = CliRunner().invoke(app, ["bench", "generate", option, value])
    assert result.exit_code == 2
    assert "huge" in result.output


def test_refuses_to_replace_a_directory_that_is_not_a_dataset(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(app, ["bench", "generate", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_peak_rss_is_the_childs_own_and_events_reach_the_parent():
    code = (
        "import numpy as np; from benchmarks.memory import emit_event\n"
        "a = np.ones(300 * 2**20 // 8); emit_event(stage='alloc', advance=1, total=1)\n"
        "print('{\"ok\": true}')"
    )
    events = []
    run = run_child([sys.executable, "-c", code], on_event=events.append)
    assert run.result() == {"ok": True}
    assert events == [{"stage": "alloc", "advance": 1, "total": 1}]
    assert run.peak_rss_bytes > 300 * 2**20
