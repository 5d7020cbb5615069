"""Tests of ``socialcart bench serve`` on a ``tiny`` model with short phases (tables, JSON,
exit codes, every request answered) and of the load tools it shares with ``bench soak``.
No timing is asserted: tiny on a busy CI machine says nothing about ``large``."""

from __future__ import annotations

import json
from numbers import Real

import pytest
from typer.testing import CliRunner

from benchmarks import load
from socialcart.cli import app
from tests.benchmarks.test_bench_soak import bench_dirs, require_wrk

SERVE_KEYS = {
    "health_rps",
    "health_p99_ms",
    "reco_rps",
    "rps_ratio",
    "reco_p50_ms",
    "reco_p99_ms",
    "write_rps",
    "write_p50_ms",
    "write_p99_ms",
    "write_alone_p99_ms",
    "peak_rss_gib",
    "failed",
    "server_ready_s",
}
GATED = {"rps_ratio", "reco_p99_ms", "write_p99_ms", "peak_rss_gib", "failed"}


@pytest.fixture(scope="module")
def serve_run(tmp_path_factory):
    require_wrk()
    out = tmp_path_factory.mktemp("serve") / "serve.json"
    args = ["bench", "serve", *bench_dirs(tmp_path_factory), "--seconds", "2", "--warmup", "1"]
    args += ["--workers", "1", "--connections", "8", "--write-connections", "4"]
    args += ["--server-env", "SOCIALCART_WRITE_BATCH=2"]
    result = CliRunner().invoke(app, [*args, "--json", str(out)], env={"COLUMNS": "200"})
    assert out.is_file(), result.output
    return result, json.loads(out.read_text())


def test_exit_code_says_whether_every_target_was_met(serve_run):
    result, report = serve_run
    assert result.exit_code == (0 if report["passed"] else 1), result.output
    for figure in report["figures"].values():
        assert figure["label"] in result.stdout
    assert "device: CPU" in result.stdout and "1 uvicorn worker(s)" in result.stdout


def test_json_holds_every_figure_and_every_request_succeeded(serve_run):
    _, report = serve_run
    figures = report["figures"]
    assert set(figures) == SERVE_KEYS
    assert {k for k, f in figures.items() if f["target"] is not None} == GATED
    for key, figure in figures.items():
        assert isinstance(figure["value"], Real), key
    assert figures["failed"]["value"] == 0
    phases = report["load"]["phases"]
    assert phases["write"]["connections"] == 4 and phases["reco"]["connections"] == 8
    assert phases["write_alone"]["connections"] == 1
    for key, phase in phases.items():
        assert phase["requests"] > 0 and phase["status_classes"]["2xx"] == phase["requests"], key
    assert set(phases["write"]["status"]) == {"201"}  # JSON keys
    assert report["load"]["workers"] == 1


@pytest.mark.parametrize("args", [["--connections", "0"], ["--workers", "0"], ["--preset", "x"]])
def test_bad_options_exit_2(args):
    assert CliRunner().invoke(app, ["bench", "serve", *args]).exit_code == 2


def test_lua_script_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="mix == "):
        load.lua_script({"delete": 1.0}, n_users=1, n_products=1, api_key="k")


def test_summary_counts_every_non_2xx_answer_and_socket_error_as_failed():
    raw = {
        "duration_us": 2_000_000,
        "requests": 10,
        "bytes": 1,
        "errors": {"connect": 0, "read": 1, "write": 0, "status": 3, "timeout": 2},
        "latency_us": {"p50": 1000, "p90": 2000, "p99": 5000, "max": 9000, "mean": 1500.0},
        "sent": {"reco": 10},
        "status": {"200": 7, "404": 1, "503": 2},
    }
    summary = load.summarize(raw, client_cpu_s=0.5)
    assert summary["rps"] == 5.0
    assert summary["latency_ms"]["p99"] == 5.0
    assert summary["status_classes"] == {"2xx": 7, "3xx": 0, "4xx": 1, "5xx": 2}
    assert summary["failed"] == 3 + 3  # read + timeout, then the 404 and the two 503s


def test_memory_guard_stops_the_server_when_the_machine_runs_short():
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    sampler = load.MemorySampler(child.pid, interval=0.05, min_available=1 << 60).start()
    try:
        assert child.wait(timeout=10) != 0
    finally:
        sampler.stop()
    assert "the server was stopped" in sampler.aborted
    assert sampler.samples and sampler.samples[0].rss > 0


def test_server_env_reaches_the_report_and_bad_pairs_exit_2(serve_run):
    _, report = serve_run
    assert report["load"]["server_env"] == {"SOCIALCART_WRITE_BATCH": "2"}
    assert load.parse_server_env(["SOCIALCART_A=x=y", "SOCIALCART_B="]) == {
        "SOCIALCART_A": "x=y",
        "SOCIALCART_B": "",
    }
    for bad in ("FOO=1", "SOCIALCART_=1", "SOCIALCART_X"):
        with pytest.raises(ValueError, match="expected SOCIALCART_NAME=VALUE"):
            load.parse_server_env([bad])
    result = CliRunner().invoke(app, ["bench", "serve", "--server-env", "FOO=1"])
    assert result.exit_code == 2 and "SOCIALCART_NAME=VALUE" in result.output
