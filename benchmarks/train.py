"""Benchmark of training: the hybrid's fit time against ``implicit``'s ALS alone.

Run it as ``socialcart bench train`` (see :mod:`benchmarks.cli`). The figures and targets:

- The whole hybrid's fit on ``<preset>`` at most 3 times the fit of ALS alone, both fitted
  on the training side of the evaluation's temporal split (everything before ``end - 7
  days``), in the same process, one after the other. ALS alone is the ``collaborative``
  method of ``socialcart evaluate``: :class:`~recommender.collaborative.ALSSource` with its
  defaults, the very ALS the hybrid fits as a source (same factors, BM25 confidences,
  ``implicit`` on every core, BLAS limited to one thread inside). It is fitted before and
  after the hybrid; the ratio uses the faster of the two (the stricter ratio).
- With ``tune_als`` the tuned ALS baseline (``als-tuned``: the grid of
  :data:`recommender.methods.ALS_GRID` picked on a validation split carved from the
  training side) is timed too and its ratio reported, ungated. The tuning itself is not
  timed, as in ``socialcart evaluate``; the chosen parameters are cached.
- Peak resident memory of the training process (dataset, split, both ALS fits and the
  hybrid): reported, not gated.

The fitted hybrid is saved under ``models/bench/<preset>-seed<seed>`` for
``socialcart bench recommend``. Training happens in a child process (``python -m
benchmarks.train ...``) so peak memory is that process's own (:mod:`benchmarks.memory`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.generate import GIB, Figure
from benchmarks.memory import EventHook, emit_event, run_child, self_peak_rss_bytes

MAX_FIT_RATIO = 3.0
TEST_DAYS = 7.0


# ----------------------------------------------------------------- parent side
def model_dir(model_root: Path, preset: str, seed: int) -> Path:
    """Where the benchmark keeps the hybrid trained on ``<preset>-seed<seed>``."""
    return model_root / f"{preset}-seed{seed}"


def measure_training(
    data_path: Path,
    model_out: Path | None,
    on_event: EventHook,
    *,
    tune_als: bool = False,
    tuned_cache: Path | None = None,
    baseline: bool = True,
) -> dict[str, Any]:
    """Fit ALS and the hybrid on ``data_path`` in a child; times, peak RSS, model path.
    Without ``baseline`` only the hybrid is fitted (to cache a model)."""
    argv = [sys.executable, "-m", "benchmarks.train", "--data", str(data_path)]
    if not baseline:
        argv += ["--no-baseline"]
    if model_out is not None:
        argv += ["--model-out", str(model_out)]
    if tune_als:
        argv += ["--tune-als"]
        if tuned_cache is not None:
            argv += ["--tuned-cache", str(tuned_cache)]
    run = run_child(argv, on_event=on_event)
    result = run.measured()
    return result


def figures(preset: str, result: dict[str, Any]) -> list[Figure]:
    """Every figure of one training benchmark, the gated one with its target."""
    als = result["als_fit_s"]
    best_als = min(als) if als else None
    hybrid = result["hybrid_fit_s"]
    runs = ", ".join(f"{s:.1f}" for s in als) or "not run (--no-baseline)"
    out = [
        Figure("hybrid_fit_s", f"{preset}: hybrid fit", hybrid, "s"),
        Figure(
            "als_fit_s",
            f"{preset}: ALS alone (collaborative) fit",
            best_als,
            "s",
            note=f"before and after the hybrid: {runs} s; the faster counts",
        ),
        Figure(
            "fit_ratio",
            f"{preset}: hybrid fit / ALS fit",
            None if best_als is None else hybrid / best_als,
            "x",
            MAX_FIT_RATIO,
            "<=",
            "same process, same training side, same thread settings",
        ),
    ]
    tuned = result.get("tuned_als")
    if tuned is not None:
        params = ", ".join(f"{k}={v}" for k, v in tuned["params"].items())
        out += [
            Figure("tuned_als_fit_s", f"{preset}: tuned ALS fit", tuned["fit_s"], "s", note=params),
            Figure(
                "tuned_fit_ratio",
                f"{preset}: hybrid fit / tuned ALS fit",
                hybrid / tuned["fit_s"],
                "x",
                note="reported, not gated; tuning itself not timed",
            ),
        ]
    out += [
        Figure(
            "peak_rss_gib",
            f"{preset}: peak RSS of the training process",
            result["peak_rss_gib"],
            "GiB",
            note=f"{result['peak_rss_before_hybrid_gib']:.2f} GiB before the hybrid's fit",
        ),
        Figure("load_s", f"{preset}: load dataset + split", result["load_s"], "s"),
    ]
    if result.get("save_s") is not None:
        out.append(Figure("save_s", f"{preset}: save the model", result["save_s"], "s"))
    return out


# ------------------------------------------------------------------ child side
def _train_worker(
    data_path: Path,
    model_out: Path | None,
    tune: bool,
    tuned_cache: Path | None,
    baseline: bool = True,
) -> dict[str, Any]:
    from recommender.collaborative import ALSSource
    from recommender.dataset import Dataset
    from recommender.evaluation import temporal_split
    from recommender.hybrid import HybridRecommender

    def stage(name: str, done: int) -> None:
        emit_event(stage=name, advance=done, total=1)

    stage("load + split", 0)
    start = time.perf_counter()
    dataset = Dataset.load(data_path)
    split = temporal_split(dataset, test_days=TEST_DAYS)
    train = split.train
    load_s = time.perf_counter() - start
    stage("load + split", 1)
    tuned_params = None
    if tune:
        stage("tune ALS (untimed)", 0)
        tuned_params = _tuned_params(split, dataset.checksum, tuned_cache)
        stage("tune ALS (untimed)", 1)

    def fit_als(name: str, params: dict) -> float:
        stage(name, 0)
        start = time.perf_counter()
        ALSSource(**params).fit(train)
        seconds = time.perf_counter() - start
        stage(name, 1)
        return seconds

    als = [fit_als("ALS fit (1)", {})] if baseline else []
    peak_before = self_peak_rss_bytes()
    stage("hybrid fit", 0)
    start = time.perf_counter()
    model = HybridRecommender().fit(train)
    hybrid_s = time.perf_counter() - start
    stage("hybrid fit", 1)
    if baseline:
        als.append(fit_als("ALS fit (2)", {}))
    tuned = None
    if tuned_params is not None:
        tuned = {"params": tuned_params, "fit_s": fit_als("tuned ALS fit", tuned_params)}
    save_s = None
    if model_out is not None:
        stage("save model", 0)
        start = time.perf_counter()
        model.save(model_out, overwrite=True)
        save_s = time.perf_counter() - start
        stage("save model", 1)
    return {
        "data": str(data_path),
        "until": train.until.isoformat(),
        "n_users": train.n_users,
        "n_items": train.n_items,
        "n_interactions": len(train.interactions),
        "load_s": load_s,
        "als_fit_s": als,
        "hybrid_fit_s": hybrid_s,
        "tuned_als": tuned,
        "save_s": save_s,
        "model": None if model_out is None else str(model_out),
        "peak_rss_before_hybrid_gib": peak_before / GIB,
        "threads": thread_info(),
    }


def _tuned_params(split, checksum: str, cache: Path | None) -> dict:
    """``tune_als`` on the split, cached per dataset checksum (tuning fits five models)."""
    from recommender.methods import tune_als

    if cache is not None and cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("dataset_checksum") == checksum:
            return stored["params"]
    params = tune_als(split)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"dataset_checksum": checksum, "params": params}) + "\n")
    return params


def thread_info() -> list[dict[str, Any]]:
    """The thread pools the process sees (BLAS, OpenMP) and their sizes."""
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "num_threads", "version")
    return [{k: pool.get(k) for k in keys} for pool in threadpool_info()]


def main(argv: list[str] | None = None) -> None:
    """Child entry point: fit, print the result as JSON on stdout."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model-out", type=Path)
    parser.add_argument("--tune-als", action="store_true")
    parser.add_argument("--tuned-cache", type=Path)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)
    result = _train_worker(
        args.data, args.model_out, args.tune_als, args.tuned_cache, not args.no_baseline
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
