"""Benchmark of serving: one person's top-k with reasons, and everyone's top-k in batch.

Run it as ``socialcart bench recommend`` (see :mod:`benchmarks.cli`). The figures and
targets, measured in one process holding the dataset and the trained hybrid
(``socialcart bench train`` trains and caches it):

- One person's top-20 with reasons, in process (``model.recommend([user], k=20)``, a
  DataFrame with reasons): p99 over ``n_users`` random people at most 10 ms. The first
  ``warmup`` calls are not timed.
- Top-20 of every person in batch (``model.recommend(users, k=20, explain=False)``, in
  chunks) at most 0.5 times what ``implicit``'s own batch recommend takes for the same
  people: ``als.recommend(users, user_items[users], N=20)`` on the hybrid's collaborative
  source (the same factors), filtering what each person interacted with. The hybrid runs
  one thread per pool (BLAS, OpenMP); ALS runs both with the process's threads and with
  one per pool, before and after the hybrid, and the fastest of the four runs is the
  baseline (the stricter ratio). The thread pools are recorded in the result.

The measurement runs in a child process (``python -m benchmarks.recommend ...``) so peak
memory is the serving process's own (:mod:`benchmarks.memory`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.generate import Figure
from benchmarks.memory import EventHook, emit_event, run_child
from benchmarks.train import thread_info

MAX_P99_MS = 10.0
MAX_BATCH_RATIO = 0.5
CHUNK = 16_384
"""People per call in the batch measurement (both sides), so progress can be shown."""

STALE = "stale"
"""Result key of a child that could not use the cached model (absent, another dataset or
an older feature layout): the model must be trained first."""


# ----------------------------------------------------------------- parent side
def measure_serving(
    data_path: Path,
    model_path: Path,
    on_event: EventHook,
    *,
    k: int = 20,
    n_users: int = 1000,
    warmup: int = 50,
    batch_users: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Latency and batch figures in a child; ``{STALE: reason}`` when the model is unusable."""
    argv = [sys.executable, "-m", "benchmarks.recommend", "--data", str(data_path)]
    argv += ["--model", str(model_path), "--k", str(k), "--n-users", str(n_users)]
    argv += ["--warmup", str(warmup), "--batch-users", str(batch_users), "--seed", str(seed)]
    run = run_child(argv, on_event=on_event)
    result = run.measured()
    return result


def figures(preset: str, result: dict[str, Any]) -> list[Figure]:
    """Every figure of one serving benchmark, gated ones with their targets."""
    lat = result["latency_ms"]
    k = result["k"]
    batch = result["batch"]
    als = batch["als_s"]
    best_als = min(als)
    who = f"{batch['n_users']:,} people" + (" (all)" if batch["all_users"] else " (a sample)")
    runs = ", ".join(f"{s:.2f}" for s in als)
    return [
        Figure(
            "single_p99_ms",
            f"{preset}: one top-{k} with reasons, p99",
            lat["p99"],
            "ms",
            MAX_P99_MS,
            "<=",
            f"{lat['n']} random people after {result['warmup']} untimed calls",
        ),
        Figure("single_p50_ms", f"{preset}: one top-{k} with reasons, p50", lat["p50"], "ms"),
        Figure("single_max_ms", f"{preset}: one top-{k} with reasons, max", lat["max"], "ms"),
        Figure(
            "batch_hybrid_s", f"{preset}: hybrid batch top-{k}", batch["hybrid_s"], "s", note=who
        ),
        Figure(
            "batch_als_s",
            f"{preset}: implicit ALS batch top-{k}",
            best_als,
            "s",
            note=f"all threads / 1 thread, before and after the hybrid: {runs} s; the "
            "fastest counts",
        ),
        Figure(
            "batch_ratio",
            f"{preset}: hybrid batch / ALS batch",
            batch["hybrid_s"] / best_als,
            "x",
            MAX_BATCH_RATIO,
            "<=",
            "same people, same process; the hybrid runs one thread per pool",
        ),
        Figure("load_s", f"{preset}: load dataset + model", result["load_s"], "s"),
        Figure(
            "peak_rss_gib",
            f"{preset}: peak RSS of the serving process",
            result["peak_rss_gib"],
            "GiB",
        ),
    ]


# ------------------------------------------------------------------ child side
def _serving_worker(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from recommender.dataset import Dataset
    from recommender.persistence import ModelFormatError, load_model

    emit_event(stage="load dataset + model", advance=0, total=1)
    start = time.perf_counter()
    dataset = Dataset.load(args.data)
    try:
        model = load_model(args.model, dataset)
        user_ids = dataset.users["user_id"].to_numpy()
        model.recommend(user_ids[:1], k=args.k)  # a model of an older feature layout fails
    except (ModelFormatError, ValueError) as exc:
        return {STALE: str(exc)}
    load_s = time.perf_counter() - start
    emit_event(stage="load dataset + model", advance=1, total=1)

    rng = np.random.default_rng(args.seed)
    sample = rng.choice(user_ids, min(args.warmup + args.n_users, len(user_ids)), replace=False)
    latency = _latency(model, sample[: args.warmup], sample[args.warmup :], args.k)
    if args.batch_users and args.batch_users < len(user_ids):
        batch_ids = np.sort(rng.choice(user_ids, args.batch_users, replace=False))
    else:
        batch_ids = user_ids
    batch = _batch(model, batch_ids, args.k)
    batch["all_users"] = len(batch_ids) == len(user_ids)
    return {
        "data": str(args.data),
        "model": str(args.model),
        "k": args.k,
        "warmup": len(sample[: args.warmup]),
        "n_users_total": len(user_ids),
        "n_items": model.data_.n_items,
        "load_s": load_s,
        "latency_ms": latency,
        "batch": batch,
        "threads": thread_info(),
    }


def _latency(model, warmup, users, k: int) -> dict[str, Any]:
    import numpy as np

    for user in warmup:
        model.recommend([user], k=k)
    times = []
    every, reported = max(len(users) // 50, 1), 0
    for j, user in enumerate(users, start=1):
        start = time.perf_counter()
        model.recommend([user], k=k)
        times.append((time.perf_counter() - start) * 1000)
        if j % every == 0 or j == len(users):
            emit_event(stage="one person at a time", advance=j - reported, total=len(users))
            reported = j
    ms = np.asarray(times)
    return {
        "n": len(ms),
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "p99": float(np.percentile(ms, 99)),
        "max": float(ms.max()),
        "mean": float(ms.mean()),
    }


def _batch(model, user_ids, k: int) -> dict[str, Any]:
    import scipy.sparse as sp
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()
    users = model.users_.lookup(user_ids)
    als = model._source("collaborative").model_
    user_items = sp.csr_matrix(model.data_.user_items)
    chunks = [slice(s, s + CHUNK) for s in range(0, len(users), CHUNK)]

    def run_als(name: str, threads: int | None) -> float:
        seconds = 0.0
        with controller.limit(limits=threads):
            for part in chunks:
                rows = users[part]
                start = time.perf_counter()
                als.recommend(rows, user_items[rows], N=k)
                seconds += time.perf_counter() - start
                emit_event(stage=name, advance=len(rows), total=len(users))
        return seconds

    def run_hybrid() -> float:
        seconds = 0.0
        for part in chunks:
            ids = user_ids[part]
            start = time.perf_counter()
            model.recommend(ids, k=k, explain=False)
            seconds += time.perf_counter() - start
            emit_event(stage="hybrid batch", advance=len(ids), total=len(users))
        return seconds

    # ALS with the process's threads and with one thread per pool (as the hybrid runs),
    # before and after the hybrid; the fastest run is the baseline.
    runs = {}

    def run_als_both(when: str) -> None:
        for threads, label in ((None, "all threads"), (1, "1 thread")):
            runs[f"{label}, {when}"] = run_als(f"ALS batch ({label}, {when})", threads)

    run_als_both("before")
    hybrid = run_hybrid()
    run_als_both("after")
    return {
        "n_users": len(users),
        "chunk": CHUNK,
        "als_s": list(runs.values()),
        "als_runs": runs,
        "hybrid_s": hybrid,
    }


def main(argv: list[str] | None = None) -> None:
    """Child entry point: measure, print the result as JSON on stdout."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recommend")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--n-users", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--batch-users", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    print(json.dumps(_serving_worker(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
