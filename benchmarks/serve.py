"""Benchmark of the HTTP service under load: ``socialcart bench serve`` (see
:mod:`benchmarks.cli`).

``socialcart serve`` runs in a child process on a free loopback port with a fresh SQLite
store (``synchronous=FULL``), an API key and the write rate limit lifted; ``wrk`` (see
:mod:`benchmarks.load`) drives it from the same machine, so client and server share the
cores. After an untimed warm-up of recommendations, four timed phases run one after the
other, each with one kind of request:

- the trivial endpoint ``GET /healthz`` at ``connections`` connections: the ceiling of the
  HTTP stack (uvicorn, FastAPI, the service's middleware and access log) in this run;
- ``GET /v1/users/{id}/recommendations?k=10`` (reasons included) for random people at
  ``connections`` connections: requests/s at least :data:`MIN_RPS_RATIO` times the trivial
  endpoint's, p99 at most :data:`MAX_RECO_P99_MS`;
- ``POST /v1/events`` (one view of a random product by a random person, a unique
  ``Idempotency-Key`` each) at ``write_connections`` connections: every answer comes after
  the commit, so its latency is that of a durable write; p99 at most
  :data:`MAX_WRITE_P99_MS`;
- the same writes over one connection, reported ungated: a write's own latency (commit,
  live update) without the queue in front of the store's one writer.

The server's memory (resident set of the supervisor and every worker, sampled every quarter
second) must stay at most :data:`MAX_RSS_GIB`; every request must succeed (2xx).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.generate import GIB, Figure
from benchmarks.load import (
    Server,
    ensure_wrk,
    id_ranges,
    lua_script,
    run_wrk,
    wrk_version,
)
from benchmarks.memory import EventHook

MIN_RPS_RATIO = 0.1
MAX_RECO_P99_MS = 25.0
MAX_WRITE_P99_MS = 20.0
MAX_RSS_GIB = 4.0

PHASES = {
    "health": ("trivial endpoint GET /healthz", {"health": 1.0}),
    "reco": ("recommendations", {"reco": 1.0}),
    "write": ("writes POST /v1/events", {"write": 1.0}),
    "write_alone": ("writes, one connection", {"write": 1.0}),
}


def measure_serve(
    model_dir: Path,
    dataset_dir: Path,
    workdir: Path,
    on_event: EventHook,
    *,
    workers: int = 2,
    connections: int = 32,
    write_connections: int = 32,
    seconds: float = 10.0,
    warmup_s: float = 3.0,
    wrk_threads: int = 2,
    k: int = 10,
    seed: int = 0,
    server_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Start the server, run the warm-up and the three phases; every figure's raw data."""
    wrk = ensure_wrk()
    n_users, n_products = id_ranges(dataset_dir)
    stage(on_event, "start the server, load the model", 0)
    with Server(
        model_dir, dataset_dir, workdir, workers=workers, extra_env=dict(server_env or {})
    ) as server:
        stage(on_event, "start the server, load the model", 1)
        memory = server.memory
        idle = memory.sample()

        def run(label: str, mix: dict[str, float], conns: int, secs: float) -> dict:
            script = lua_script(
                mix, n_users=n_users, n_products=n_products, api_key=server.api_key, k=k
            )
            stage(on_event, label, 0)
            cpu = server.cpu_seconds()
            result = run_wrk(
                wrk,
                server.url,
                script,
                connections=conns,
                seconds=secs,
                threads=wrk_threads,
                workdir=workdir,
            )
            server.check()
            result["server_cpu_s"] = server.cpu_seconds() - cpu
            result["connections"] = conns
            stage(on_event, label, 1)
            return result

        warmup = None
        if warmup_s > 0:
            warmup = run("warm-up (untimed)", PHASES["reco"][1], connections, warmup_s)
        phases = {}
        for key, (label, mix) in PHASES.items():
            conns = {"write": write_connections, "write_alone": 1}.get(key, connections)
            phases[key] = run(label, mix, conns, seconds)
        serving = memory.peak(server.ready_at)
        loading = memory.peak(0.0, server.ready_at)
    return {
        "model": str(model_dir),
        "dataset": str(dataset_dir),
        "n_users": n_users,
        "n_products": n_products,
        "workers": workers,
        "server_env": dict(server_env or {}),
        "wrk": wrk_version(wrk),
        "wrk_threads": wrk_threads,
        "k": k,
        "server_ready_s": server.load_s,
        "idle_rss_gib": idle.rss / GIB,
        "idle_pss_gib": idle.pss / GIB,
        "peak_rss_gib": serving.rss / GIB,
        "peak_pss_gib": serving.pss / GIB,
        "loading_peak_rss_gib": loading.rss / GIB,
        "processes": idle.processes,
        "warmup": warmup,
        "phases": phases,
    }


def stage(on_event: EventHook, name: str, done: int) -> None:
    on_event({"stage": name, "advance": done, "total": 1})


def figures(name: str, result: dict[str, Any]) -> list[Figure]:
    """Every figure of one run of ``bench serve``, the gated ones with their targets."""
    health, reco, write, alone = (result["phases"][key] for key in PHASES)
    setup = (
        f"{reco['connections']} connections, {result['workers']} worker(s), "
        f"{result['wrk_threads']} wrk threads"
    )
    failed = sum(p["failed"] for p in result["phases"].values())
    total = sum(p["requests"] for p in result["phases"].values())
    return [
        Figure("health_rps", f"{name}: /healthz requests/s", health["rps"], "req/s", note=setup),
        Figure("health_p99_ms", f"{name}: /healthz p99", health["latency_ms"]["p99"], "ms"),
        Figure("reco_rps", f"{name}: recommendations requests/s", reco["rps"], "req/s"),
        Figure(
            "rps_ratio",
            f"{name}: recommendations / /healthz requests/s",
            reco["rps"] / health["rps"],
            "x",
            MIN_RPS_RATIO,
            ">=",
            "same server, same run, one after the other",
        ),
        Figure("reco_p50_ms", f"{name}: recommendations p50", reco["latency_ms"]["p50"], "ms"),
        Figure(
            "reco_p99_ms",
            f"{name}: recommendations p99",
            reco["latency_ms"]["p99"],
            "ms",
            MAX_RECO_P99_MS,
            "<=",
            f"top-{result['k']} with reasons for random people, {setup}",
        ),
        Figure("write_rps", f"{name}: durable writes/s", write["rps"], "req/s"),
        Figure("write_p50_ms", f"{name}: write p50", write["latency_ms"]["p50"], "ms"),
        Figure(
            "write_p99_ms",
            f"{name}: write p99 (acknowledged after commit)",
            write["latency_ms"]["p99"],
            "ms",
            MAX_WRITE_P99_MS,
            "<=",
            f"POST /v1/events at {write['connections']} connections, SQLite synchronous=FULL",
        ),
        Figure(
            "write_alone_p99_ms",
            f"{name}: write p99, one connection",
            alone["latency_ms"]["p99"],
            "ms",
            note=f"no queue: commit and live update alone (p50 {alone['latency_ms']['p50']:.2f} "
            "ms); reported, not gated",
        ),
        Figure(
            "peak_rss_gib",
            f"{name}: server memory (RSS, all processes)",
            result["peak_rss_gib"],
            "GiB",
            MAX_RSS_GIB,
            "<=",
            f"peak while serving; {result['idle_rss_gib']:.2f} GiB idle after loading, "
            f"{result['loading_peak_rss_gib']:.2f} GiB peak while loading, PSS peak "
            f"{result['peak_pss_gib']:.2f} GiB, {result['processes']} processes",
        ),
        Figure(
            "failed",
            f"{name}: failed requests",
            failed,
            "requests",
            0,
            "<=",
            f"non-2xx answers, timeouts and socket errors of {total:,} timed requests",
        ),
        Figure("server_ready_s", f"{name}: server start to ready", result["server_ready_s"], "s"),
    ]
