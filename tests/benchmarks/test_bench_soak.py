"""The short soak of CI: ``socialcart bench soak`` for 10 s of mixed traffic against a
``tiny`` model (2 workers, 64 connections as the full soak), asserting the promises:
no failed request, no 5xx, memory growth under 5 %."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from benchmarks import load
from socialcart.cli import app

SOAK_KEYS = {"failed", "5xx", "memory_growth_pct", "rps", "p50_ms", "p99_ms", "peak_rss_gib"}


def bench_dirs(tmp_path_factory) -> list[str]:
    """Dataset and model caches shared by the load benchmarks' tests (tiny, trained once)."""
    root = tmp_path_factory.getbasetemp() / "load-bench"
    args = ["--preset", "tiny", "--cache-dir", str(root / "data")]
    return [*args, "--model-dir", str(root / "models")]


def require_wrk() -> None:
    try:
        load.ensure_wrk()
    except load.LoadToolMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def soak_run(tmp_path_factory):
    require_wrk()
    out = tmp_path_factory.mktemp("soak") / "soak.json"
    args = ["bench", "soak", *bench_dirs(tmp_path_factory), "--seconds", "10", "--warmup", "2"]
    args += ["--connections", "64", "--json", str(out)]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert out.is_file(), result.output
    return result, json.loads(out.read_text())


def test_soak_keeps_its_promises(soak_run):
    result, report = soak_run
    figures = report["figures"]
    assert set(figures) == SOAK_KEYS
    assert figures["failed"]["value"] == 0, result.output
    assert figures["5xx"]["value"] == 0
    assert figures["memory_growth_pct"]["value"] < 5.0
    assert report["passed"] and result.exit_code == 0, result.output


def test_soak_sends_the_mix_and_reports_it(soak_run):
    result, report = soak_run
    soak = report["load"]["soak"]
    sent = soak["sent"]
    total = sum(sent.values())
    assert sent["health"] == 0
    for kind, share in (("reco", 0.8), ("similar", 0.1), ("write", 0.1)):
        assert abs(sent[kind] / total - share) < 0.08, sent
    assert soak["status_classes"]["2xx"] == soak["requests"] > 0
    assert set(soak["status"]) <= {"200", "201"}  # JSON keys
    for figure in report["figures"].values():
        assert figure["label"] in result.stdout
    assert "device: CPU" in result.stdout and "machine:" in result.stdout


def test_bad_options_exit_2():
    for args in (["--connections", "0"], ["--seconds", "0"], ["--preset", "nope"]):
        result = CliRunner().invoke(app, ["bench", "soak", *args])
        assert result.exit_code == 2, (args, result.output)
