"""Benchmark of the synthetic-data generator: speed, peak memory, follow-graph rate, load time.

Run it as ``socialcart bench generate`` (see :mod:`benchmarks.cli`). The figures and targets:

- ``<preset>`` generated **and written as Parquet** in at most 120 s wall: the gate counts
  ``generate()`` plus ``Dataset.save()``, the time a user waits for a dataset on disk;
  ``generate()`` alone is reported next to it. Interpreter start-up is reported, not gated.
- The generating process's own peak resident memory at most 8 GiB.
- The follow-graph stage at least 0.7 times the edge rate of networkit's C++ Chung–Lu
  generator, run in the same benchmark on the same degree sequence (each graph's total
  degree, in plus out); each side is the best of ``repeats`` interleaved runs.
- Loading a ``medium`` dataset with full validation in at most 5 s (median of 3 loads).

Generation and the follow-graph runs happen in child processes (``python -m
benchmarks.generate dataset|follows ...``) so peak memory is that process's own and the
parent stays small; see :mod:`benchmarks.memory` for the protocol.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.memory import EventHook, emit_event, run_child, self_peak_rss_bytes

MAX_GENERATE_S = 120.0
MAX_PEAK_GIB = 8.0
MIN_FOLLOW_RATIO = 0.7
MAX_LOAD_S = 5.0
LOAD_REPEATS = 3
GIB = 1024**3
NETWORKIT_HINT = "networkit not installed: pip install -e '.[bench]'"


@dataclass(frozen=True)
class Figure:
    """One measured figure and, if it is gated, its target (``rule`` is ``<=`` or ``>=``)."""

    key: str
    label: str
    value: float | None
    unit: str
    target: float | None = None
    rule: str | None = None
    note: str = ""

    @property
    def passed(self) -> bool | None:
        """True or False against the target; None if ungated or not measured."""
        if self.target is None or self.value is None:
            return None
        return self.value <= self.target if self.rule == "<=" else self.value >= self.target

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


# ----------------------------------------------------------------- parent side
def measure_generation(preset: str, seed: int, out: Path, on_event: EventHook) -> dict[str, Any]:
    """Generate and save ``preset`` in a child; its stage times, wall times and peak RSS."""
    run = run_child(_worker_argv("dataset", preset, seed, "--out", str(out)), on_event=on_event)
    result = run.measured()
    result["total_s"] = result["generate_s"] + result["save_s"]
    return result


def measure_follow_rate(preset: str, seed: int, repeats: int, on_event: EventHook) -> dict:
    """Edge rates of our follow stage and networkit's Chung–Lu, measured in one child."""
    argv = _worker_argv("follows", preset, seed, "--repeats", str(repeats))
    return run_child(argv, on_event=on_event).result()


def cached_dataset(preset: str, seed: int, cache_root: Path, on_event: EventHook) -> Path:
    """The ``preset`` dataset under ``cache_root``, generated first if absent or stale.

    A cache is stale when the configuration or the source of the generator or of the
    on-disk format changed since it was written (other people edit both).
    """
    path = cache_root / f"{preset}-seed{seed}"
    stamp = cache_root / f"{preset}-seed{seed}.fingerprint"
    fingerprint = _source_fingerprint(preset, seed)
    fresh = stamp.is_file() and stamp.read_text().strip() == fingerprint
    if fresh and (path / "manifest.json").is_file():
        return path
    run_child(_worker_argv("dataset", preset, seed, "--out", str(path)), on_event=on_event).result()
    stamp.write_text(fingerprint + "\n")
    return path


def measure_load(path: Path, on_event: EventHook, repeats: int = LOAD_REPEATS) -> dict:
    """Seconds of ``Dataset.load(path)`` with full validation, ``repeats`` times."""
    from recommender.dataset import Dataset

    times = []
    for i in range(repeats):
        on_event({"stage": "load + validate", "advance": 0, "total": repeats})
        gc.collect()
        start = time.perf_counter()
        dataset = Dataset.load(path)
        times.append(time.perf_counter() - start)
        on_event({"stage": "load + validate", "advance": 1, "total": repeats})
        if i == repeats - 1:
            rows = {name: len(frame) for name, frame in dataset.tables()}
        del dataset
    return {
        "times_s": times,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "rows": rows,
    }


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, load average and library versions, for reading the figures."""
    import numpy as np

    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "cpu_model": model,
        "load_avg_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "networkit": _networkit_version(),
    }


def figures(
    preset: str, load_preset: str, generation: dict, follows: dict, load: dict | None
) -> list[Figure]:
    """Every figure of one benchmark run, gated ones with their targets."""
    out = [
        Figure(
            "generate_total_s",
            f"{preset}: generate + write Parquet",
            generation["total_s"],
            "s",
            MAX_GENERATE_S,
            "<=",
            "the gated wall time",
        ),
        Figure("generate_s", f"{preset}: generate only, in memory", generation["generate_s"], "s"),
        Figure("save_s", f"{preset}: write Parquet", generation["save_s"], "s"),
        Figure(
            "peak_rss_gib",
            f"{preset}: peak RSS of the process",
            generation["peak_rss_gib"],
            "GiB",
            MAX_PEAK_GIB,
            "<=",
            f"{generation['peak_rss_generate_gib']:.2f} GiB by the end of generate()",
        ),
        Figure(
            "follows_edges_per_s",
            f"{preset}: follow stage, ours",
            follows["edges_per_s"],
            "edges/s",
            note=f"{follows['edges']:,} edges, {_best_of(follows['seconds'])}",
        ),
    ]
    nk = follows.get("networkit")
    threads = f", {nk['threads']} threads" if nk else ""
    out += [
        Figure(
            "networkit_edges_per_s",
            f"{preset}: networkit Chung–Lu",
            nk["edges_per_s"] if nk else None,
            "edges/s",
            note=(
                f"{nk['edges']:,} edges, {_best_of(nk['seconds'])}{threads}"
                if nk
                else NETWORKIT_HINT
            ),
        ),
        Figure(
            "follows_ratio",
            f"{preset}: follow rate ours / networkit",
            follows["edges_per_s"] / nk["edges_per_s"] if nk else None,
            "x",
            MIN_FOLLOW_RATIO,
            ">=",
            "same degree sequence, same run" if nk else NETWORKIT_HINT,
        ),
    ]
    if load is not None:
        times = ", ".join(f"{t:.2f}" for t in load["times_s"])
        out += [
            Figure(
                "load_median_s",
                f"{load_preset}: load + full validation",
                load["median_s"],
                "s",
                MAX_LOAD_S,
                "<=",
                f"median of {len(load['times_s'])}: {times} s",
            ),
            Figure(
                "load_best_s", f"{load_preset}: load, best of {LOAD_REPEATS}", load["best_s"], "s"
            ),
        ]
    return out


def _best_of(seconds: list[float]) -> str:
    return f"best of {len(seconds)} runs" if len(seconds) > 1 else "1 run"


def _worker_argv(mode: str, preset: str, seed: int, *extra: str) -> list[str]:
    argv = [sys.executable, "-m", "benchmarks.generate", mode, "--preset", preset]
    return [*argv, "--seed", str(seed), *extra]


def _source_fingerprint(preset: str, seed: int) -> str:
    from synthetic_data import make_config

    digest = hashlib.sha256(
        json.dumps(make_config(preset, seed=seed).to_dict(), sort_keys=True).encode()
    )
    generator = Path(importlib.util.find_spec("synthetic_data").origin).parent
    sources = sorted(p for p in generator.rglob("*") if p.suffix in {".py", ".toml"})
    sources += [
        Path(importlib.util.find_spec(f"recommender.{m}").origin) for m in ("dataset", "schema")
    ]
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def _networkit_version() -> str | None:
    if importlib.util.find_spec("networkit") is None:
        return None
    from importlib.metadata import version

    return version("networkit")


# ------------------------------------------------------------------ child side
def _dataset_worker(preset: str, seed: int, out: Path) -> dict[str, Any]:
    from synthetic_data import generate, make_config

    def hook(stage: str, advance: int, total: int) -> None:
        emit_event(stage=stage, advance=advance, total=total)

    config = make_config(preset, seed=seed)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    dataset = generate(config, progress=hook, timings=timings)
    generate_s = time.perf_counter() - start
    peak_generate = self_peak_rss_bytes()
    hook("write Parquet", 0, 1)
    start = time.perf_counter()
    dataset.save(out, overwrite=True)
    save_s = time.perf_counter() - start
    hook("write Parquet", 1, 1)
    return {
        "generate_s": generate_s,
        "save_s": save_s,
        "stages": timings,
        "peak_rss_generate_gib": peak_generate / GIB,
        "rows": dataset.manifest["row_counts"],
    }


def _follows_worker(preset: str, seed: int, repeats: int) -> dict[str, Any]:
    import numpy as np

    from synthetic_data import make_config
    from synthetic_data.generate import STAGES
    from synthetic_data.graph import make_follow_graph
    from synthetic_data.timeline import Timeline
    from synthetic_data.users import make_users
    from synthetic_data.vocab import load_vocabulary

    config = make_config(preset, seed=seed)

    def stream(stage: str) -> np.random.Generator:
        # The same streams as generate(), so this is the graph of the full run.
        return np.random.default_rng(config.seed).spawn(len(STAGES))[STAGES.index(stage)]

    vocab = load_vocabulary(config.lang)
    timeline = Timeline.from_config(config.start_date, config.n_days, config.signup_years)
    emit_event(stage="users (untimed)", advance=0, total=1)
    users = make_users(config, vocab, timeline, rng=stream("users"))
    emit_event(stage="users (untimed)", advance=1, total=1)
    try:
        import networkit as nk
    except ImportError:
        nk = None
    ours: list[float] = []
    theirs: list[float] = []
    nk_edges = 0
    for i in range(repeats):  # interleaved, so both sides see the same machine load
        emit_event(stage="follows, ours", advance=0, total=repeats)
        start = time.perf_counter()
        graph = make_follow_graph(config, users, timeline, rng=stream("follows"))
        ours.append(time.perf_counter() - start)
        emit_event(stage="follows, ours", advance=1, total=repeats)
        edges = graph.n_edges
        degree = np.bincount(graph.follower, minlength=users.n)
        degree += np.bincount(graph.followee, minlength=users.n)
        del graph
        if nk is None:
            continue
        emit_event(stage="networkit Chung–Lu", advance=0, total=repeats)
        nk.setSeed(seed + i, False)
        generator = nk.generators.ChungLuGenerator(degree.tolist())
        start = time.perf_counter()
        nk_graph = generator.generate()
        theirs.append(time.perf_counter() - start)
        nk_edges = nk_graph.numberOfEdges()
        del nk_graph, generator
        emit_event(stage="networkit Chung–Lu", advance=1, total=repeats)
    result: dict[str, Any] = {
        "edges": edges,
        "seconds": ours,
        "edges_per_s": edges / min(ours),
        "degree_sum": int(degree.sum()),
        "networkit": None,
    }
    if nk is not None:
        result["networkit"] = {
            "edges": nk_edges,
            "seconds": theirs,
            "edges_per_s": nk_edges / min(theirs),
            "threads": nk.getMaxNumberOfThreads(),
            "version": _networkit_version(),
        }
    return result


def main(argv: list[str] | None = None) -> None:
    """Child entry point: run one measurement, print its result as JSON on stdout."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.generate")
    parser.add_argument("mode", choices=("dataset", "follows"))
    parser.add_argument("--preset", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    if args.mode == "dataset":
        if args.out is None:
            parser.error("dataset needs --out")
        result = _dataset_worker(args.preset, args.seed, args.out)
    else:
        result = _follows_worker(args.preset, args.seed, args.repeats)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
