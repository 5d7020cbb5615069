"""Soak test of the HTTP service: ``socialcart bench soak`` (see :mod:`benchmarks.cli`).

``socialcart serve`` runs in a child process on a free loopback port (fresh SQLite store,
an API key, the write rate limit lifted) and ``wrk`` (see :mod:`benchmarks.load`) sends it
mixed traffic for ``seconds``: :data:`MIX` of recommendations (``k=10`` with reasons),
similar products and writes (``POST /v1/events``, a unique ``Idempotency-Key`` each), ids
drawn at random. An untimed warm-up of the same mix comes first. The promises:

- no failed request: every answer 2xx, no timeout, no socket error;
- no 5xx;
- the server's memory (resident set of the supervisor and every worker, sampled every
  quarter second) grows by less than :data:`MAX_GROWTH` between the first and the last
  :data:`WINDOW_S` seconds of the run (the mean of each window; a run shorter than
  three windows compares its first and last thirds);
- p50 and p99 over every request are reported, not gated.
"""

from __future__ import annotations

from pathlib import Path
from statistics import fmean
from typing import Any

from benchmarks.generate import GIB, Figure
from benchmarks.load import (
    MemorySampler,
    Server,
    ensure_wrk,
    id_ranges,
    lua_script,
    run_wrk,
    wrk_version,
)
from benchmarks.memory import EventHook
from benchmarks.serve import stage

MIX = {"reco": 0.8, "similar": 0.1, "write": 0.1}
MAX_GROWTH = 0.05
WINDOW_S = 10.0


def measure_soak(
    model_dir: Path,
    dataset_dir: Path,
    workdir: Path,
    on_event: EventHook,
    *,
    workers: int = 2,
    connections: int = 64,
    seconds: float = 60.0,
    warmup_s: float = 5.0,
    wrk_threads: int = 2,
    k: int = 10,
    seed: int = 0,
    server_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Start the server, warm it up, soak it; the raw data of every figure."""
    wrk = ensure_wrk()
    n_users, n_products = id_ranges(dataset_dir)
    stage(on_event, "start the server, load the model", 0)
    with Server(
        model_dir, dataset_dir, workdir, workers=workers, extra_env=dict(server_env or {})
    ) as server:
        stage(on_event, "start the server, load the model", 1)
        script = lua_script(
            MIX, n_users=n_users, n_products=n_products, api_key=server.api_key, k=k, seed=seed
        )
        options = {"threads": wrk_threads, "workdir": workdir}
        memory = server.memory
        warmup = None
        if warmup_s > 0:
            stage(on_event, "warm-up (untimed)", 0)
            warmup = run_wrk(
                wrk, server.url, script, connections=connections, seconds=warmup_s, **options
            )
            server.check()
            stage(on_event, "warm-up (untimed)", 1)
        stage(on_event, f"mixed traffic for {seconds:g} s", 0)
        start, cpu = memory.mark(), server.cpu_seconds()
        soak = run_wrk(wrk, server.url, script, connections=connections, seconds=seconds, **options)
        end = memory.mark()
        server.check()
        soak["server_cpu_s"] = server.cpu_seconds() - cpu
        stage(on_event, f"mixed traffic for {seconds:g} s", 1)
    return {
        "model": str(model_dir),
        "dataset": str(dataset_dir),
        "n_users": n_users,
        "n_products": n_products,
        "workers": workers,
        "server_env": dict(server_env or {}),
        "connections": connections,
        "mix": MIX,
        "seconds": seconds,
        "wrk": wrk_version(wrk),
        "wrk_threads": wrk_threads,
        "k": k,
        "server_ready_s": server.load_s,
        "memory": memory_growth(memory, start, end),
        "warmup": warmup,
        "soak": soak,
    }


def memory_growth(memory: MemorySampler, start: float, end: float) -> dict[str, Any]:
    """Mean resident set of the first and last windows of ``[start, end]`` and the growth."""
    window = min(WINDOW_S, (end - start) / 3)
    first = memory.window(start, start + window)
    last = memory.window(end - window, end)
    if not first or not last:
        raise RuntimeError("no memory sample in the first or last window of the run")
    first_rss, last_rss = fmean(s.rss for s in first), fmean(s.rss for s in last)
    during = memory.window(start, end)
    return {
        "window_s": window,
        "first_rss_gib": first_rss / GIB,
        "last_rss_gib": last_rss / GIB,
        "growth": last_rss / first_rss - 1,
        "peak_rss_gib": max(s.rss for s in during) / GIB,
        "samples": [[round(s.t - start, 2), s.rss, s.pss] for s in during],
    }


def figures(name: str, result: dict[str, Any]) -> list[Figure]:
    """Every figure of one soak run; the promises are gated."""
    soak, mem = result["soak"], result["memory"]
    classes = soak["status_classes"]
    sent = ", ".join(f"{k} {n:,}" for k, n in soak["sent"].items() if n)
    setup = (
        f"{result['connections']} connections, {result['workers']} worker(s), "
        f"{result['seconds']:g} s, {soak['requests']:,} requests ({sent} sent)"
    )
    window = f"{mem['window_s']:.0f} s"
    return [
        Figure("failed", f"{name}: failed requests", soak["failed"], "requests", 0, "<=", setup),
        Figure("5xx", f"{name}: 5xx answers", classes["5xx"], "requests", 0, "<="),
        Figure(
            "memory_growth_pct",
            f"{name}: memory growth, first {window} → last {window}",
            100 * mem["growth"],
            "%",
            100 * MAX_GROWTH,
            "<=",
            f"mean RSS of all server processes {mem['first_rss_gib']:.2f} → "
            f"{mem['last_rss_gib']:.2f} GiB (peak {mem['peak_rss_gib']:.2f} GiB)",
        ),
        Figure("rps", f"{name}: requests/s (mixed)", soak["rps"], "req/s"),
        Figure("p50_ms", f"{name}: p50 (mixed)", soak["latency_ms"]["p50"], "ms"),
        Figure("p99_ms", f"{name}: p99 (mixed)", soak["latency_ms"]["p99"], "ms"),
        Figure("peak_rss_gib", f"{name}: server memory peak (RSS)", mem["peak_rss_gib"], "GiB"),
    ]
