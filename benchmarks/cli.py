"""``socialcart bench generate``: run the generator benchmark and print its figures.

Exit code 0 when every measured target is met, 1 when one is missed or a measurement
failed, 2 on bad options. Targets that cannot be measured (networkit absent) are shown as
skipped, never guessed.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

EXIT_MISSED = 1
EXIT_BAD_INPUT = 2


def bench_generate_command(
    preset: Annotated[str, typer.Option(help="Preset to generate and time.")] = "large",
    seed: Annotated[int, typer.Option(help="Random seed of every generated dataset.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(help="Keep the generated dataset here (default: a temporary directory)."),
    ] = None,
    skip_load: Annotated[
        bool, typer.Option("--skip-load", help="Skip the load-time figure.")
    ] = False,
    load_preset: Annotated[str, typer.Option(help="Preset whose loading is timed.")] = "medium",
    cache_dir: Annotated[
        Path, typer.Option(help="Where the load benchmark's dataset is cached.")
    ] = Path("data/bench"),
    repeats: Annotated[
        int, typer.Option(min=1, help="Follow-graph runs per side (ours, networkit); best counts.")
    ] = 2,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write every figure to this JSON file.")
    ] = None,
) -> None:
    """Time and size the generator against its targets (large: <= 120 s, <= 8 GiB)."""
    from rich.console import Console
    from rich.markup import escape

    from benchmarks import generate as bench
    from recommender.errors import DatasetError
    from synthetic_data.config import ConfigError, make_config

    err = Console(stderr=True)
    try:
        for name in (preset, load_preset):
            make_config(name, seed=seed)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    if out is not None and _refuse_out(out):
        err.print(f"[red]error:[/red] --out {out} is a file or a non-empty non-dataset directory")
        raise typer.Exit(EXIT_BAD_INPUT)

    report: dict[str, Any] = {"preset": preset, "seed": seed, "load_preset": load_preset}
    report["machine"] = bench.machine_info()
    try:
        with ExitStack() as stack:
            target = out or Path(stack.enter_context(tempfile.TemporaryDirectory())) / "dataset"
            with _ProgressView(err, f"generating {preset} in a child process") as hook:
                report["generation"] = bench.measure_generation(preset, seed, target, hook)
        with _ProgressView(err, f"follow graph of {preset}: ours vs networkit") as hook:
            report["follows"] = bench.measure_follow_rate(preset, seed, repeats, hook)
        report["load"] = None
        if not skip_load:
            with _ProgressView(err, f"{load_preset} dataset for the load benchmark") as hook:
                path = bench.cached_dataset(load_preset, seed, cache_dir, hook)
            with _ProgressView(err, f"loading {path}") as hook:
                report["load"] = bench.measure_load(path, hook)
    except (RuntimeError, DatasetError) as exc:  # a crashed child, an invalid dataset
        err.print(f"[red]benchmark failed:[/red] {escape(str(exc))}")
        raise typer.Exit(EXIT_MISSED) from exc

    figures = bench.figures(
        preset, load_preset, report["generation"], report["follows"], report["load"]
    )
    report["load_avg_end"] = os.getloadavg()[0]
    report["figures"] = {f.key: f.to_dict() for f in figures}
    report["passed"] = all(f.passed is not False for f in figures)
    _print_report(Console(), report, figures)
    if json_file is not None:
        json_file.write_text(json.dumps(report, indent=2) + "\n")
    if not report["passed"]:
        raise typer.Exit(EXIT_MISSED)


def _refuse_out(out: Path) -> bool:
    """Refuse to replace a file, or a non-empty directory that is not a dataset."""
    if not out.exists():
        return False
    if not out.is_dir():
        return True
    return any(out.iterdir()) and not (out / "manifest.json").is_file()


class _ProgressView:
    """Shows a benchmark child's ``{stage, advance, total}`` events: a Rich progress display
    on a terminal, one line per finished stage otherwise (CI logs, pipes)."""

    def __init__(self, console, title: str) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._console = console
        self._title = title
        self._live = console.is_terminal
        self._bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<24}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}
        self._done: dict[str, int] = {}

    def __enter__(self):
        if self._live:
            self._bar.start()
            self._bar.add_task(self._title, total=None)
        else:
            self._console.print(f"{self._title}...")
        return self._on_event

    def __exit__(self, *exc_info) -> None:
        if self._live:
            self._bar.stop()

    def _on_event(self, event: dict[str, Any]) -> None:
        stage, advance, total = event["stage"], event["advance"], event["total"]
        if self._live:
            if stage not in self._tasks:
                self._tasks[stage] = self._bar.add_task(stage, total=total)
            self._bar.advance(self._tasks[stage], advance)
            return
        self._done[stage] = self._done.get(stage, 0) + advance
        if advance and self._done[stage] == total:
            self._console.print(f"  {stage}: done")


def _print_report(console, report: dict[str, Any], figures) -> None:
    from rich.table import Table

    table = Table(title="Generator benchmark", title_justify="left")
    for column in ("figure", "measured", "target", "pass?"):
        table.add_column(column, no_wrap=True)
    verdicts = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: "—"}
    for fig in figures:
        measured = "not measured" if fig.value is None else _fmt(fig.value, fig.unit)
        rule = {"<=": "≤", ">=": "≥"}.get(fig.rule or "", "")
        target = "—" if fig.target is None else f"{rule} {_fmt(fig.target, fig.unit)}"
        verdict = "skipped" if fig.target is not None and fig.value is None else None
        table.add_row(fig.label, measured, target, verdict or verdicts[fig.passed])
    console.print(table)
    for fig in figures:
        if fig.note:
            console.print(f"  {fig.label}: {fig.note}", markup=False, highlight=False)
    console.print(_stage_table(report))
    m = report["machine"]
    console.print(
        f"machine: {m['cores']} cores ({m['usable_cores']} usable), {m['cpu_model']}, "
        f"load average {m['load_avg_1min']:.2f} at start, {report['load_avg_end']:.2f} at end; "
        f"Python {m['python']}, "
        f"numpy {m['numpy']}, networkit {m['networkit'] or 'not installed'}"
    )
    missed = [f.label for f in figures if f.passed is False]
    skipped = [f.label for f in figures if f.target is not None and f.value is None]
    if missed:
        console.print(f"[red]target missed:[/red] {'; '.join(missed)}", highlight=False)
    else:
        console.print("[green]every measured target met[/green]")
    if skipped:
        console.print(f"[yellow]not measured:[/yellow] {'; '.join(skipped)}", highlight=False)


def _stage_table(report: dict[str, Any]):
    from rich.table import Table

    gen = report["generation"]
    table = Table(title=f"{report['preset']}: stage times", title_justify="left")
    table.add_column("stage", no_wrap=True)
    table.add_column("seconds", justify="right")
    table.add_column("share", justify="right")
    total = gen["total_s"]
    unstaged = gen["generate_s"] - sum(gen["stages"].values())
    rows = [
        *gen["stages"].items(),
        ("outside stages (vocabulary...)", unstaged),
        ("write Parquet", gen["save_s"]),
    ]
    for name, secs in rows:
        table.add_row(name, _secs(secs), f"{secs / total:.0%}")
    table.add_section()
    table.add_row("generate() total", _secs(gen["generate_s"]), f"{gen['generate_s'] / total:.0%}")
    table.add_row("generate + write", _secs(total), "100%")
    table.add_row("process wall (with start-up)", _secs(gen["process_wall_s"]), "")
    return table


def _secs(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def _fmt(value: float, unit: str) -> str:
    if unit == "edges/s":
        return f"{value / 1e6:.2f} M edges/s"
    if unit == "x":
        return f"{value:.2f}×"
    if unit == "GiB":
        return f"{value:.2f} GiB"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "req/s":
        return f"{value:,.0f} req/s"
    if unit == "%":
        return f"{value:+.1f} %"
    if unit == "requests":
        return f"{value:,.0f}"
    return f"{_secs(value)} s"


def bench_train_command(
    preset: Annotated[str, typer.Option(help="Preset whose dataset trains the models.")] = "medium",
    seed: Annotated[int, typer.Option(help="Random seed of the generated dataset.")] = 0,
    data: Annotated[
        Path | None,
        typer.Option(help="Train on this dataset directory instead of the cached preset."),
    ] = None,
    cache_dir: Annotated[Path, typer.Option(help="Where generated datasets are cached.")] = Path(
        "data/bench"
    ),
    model_dir: Annotated[
        Path, typer.Option(help="Where the trained hybrid is kept (for `bench recommend`).")
    ] = Path("models/bench"),
    tune_als: Annotated[
        bool,
        typer.Option("--tune-als", help="Also time the tuned ALS baseline (tuning is cached)."),
    ] = False,
    baseline: Annotated[
        bool,
        typer.Option("--baseline/--no-baseline", help="Time ALS alone (no ratio without it)."),
    ] = True,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write every figure to this JSON file.")
    ] = None,
) -> None:
    """Time the hybrid's fit against implicit's ALS alone (target: <= 3x), peak memory."""
    from rich.console import Console

    from benchmarks import train as bench
    from benchmarks.generate import machine_info

    err = Console(stderr=True)
    path, name = _bench_dataset(err, preset, seed, data, cache_dir)
    report: dict[str, Any] = {"dataset": str(path), "name": name, "machine": machine_info()}
    model_out = model_dir / name
    with _failures(err), _ProgressView(err, f"training on {name} in a child process") as hook:
        report["training"] = bench.measure_training(
            path,
            model_out,
            hook,
            tune_als=tune_als,
            tuned_cache=model_dir / f"{name}.als-tuned.json",
            baseline=baseline,
        )
    _finish(report, bench.figures(name, report["training"]), "Training benchmark", json_file)


def bench_recommend_command(
    preset: Annotated[str, typer.Option(help="Preset whose dataset and model serve.")] = "large",
    seed: Annotated[int, typer.Option(help="Random seed of the generated dataset.")] = 0,
    data: Annotated[
        Path | None,
        typer.Option(help="Serve this dataset directory instead of the cached preset."),
    ] = None,
    cache_dir: Annotated[Path, typer.Option(help="Where generated datasets are cached.")] = Path(
        "data/bench"
    ),
    model_dir: Annotated[
        Path, typer.Option(help="Where trained models are cached (trained here if absent).")
    ] = Path("models/bench"),
    k: Annotated[int, typer.Option(min=1, help="Products per list.")] = 20,
    users: Annotated[
        int, typer.Option(min=1, help="People timed one at a time (random, after warm-up).")
    ] = 1000,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed calls before timing.")] = 50,
    batch_users: Annotated[
        int, typer.Option(min=0, help="People in the batch comparison (0: every person).")
    ] = 0,
    retrain: Annotated[
        bool, typer.Option("--retrain", help="Train the model again even if cached.")
    ] = False,
    json_file: Annotated[
        Path | None, typer.Option("--json", help="Also write every figure to this JSON file.")
    ] = None,
) -> None:
    """Time one person's top-k with reasons (p99 <= 10 ms) and everyone's top-k in batch
    against implicit's ALS batch recommend (<= 0.5x)."""
    from rich.console import Console

    from benchmarks import recommend as bench
    from benchmarks.generate import machine_info
    from benchmarks.train import measure_training

    err = Console(stderr=True)
    path, name = _bench_dataset(err, preset, seed, data, cache_dir)
    report: dict[str, Any] = {"dataset": str(path), "name": name, "machine": machine_info()}
    model_path = model_dir / name
    report["training"] = None

    def train() -> None:
        with _ProgressView(err, f"training the hybrid on {name} (cached afterwards)") as hook:
            report["training"] = measure_training(path, model_path, hook, baseline=False)

    options = {"k": k, "n_users": users, "warmup": warmup, "batch_users": batch_users}
    with _failures(err):
        if retrain or not (model_path / "model.json").is_file():
            train()
        with _ProgressView(err, f"serving {name} in a child process") as hook:
            serving = bench.measure_serving(path, model_path, hook, seed=seed, **options)
        if bench.STALE in serving and report["training"] is None:
            err.print(f"cached model unusable ({serving[bench.STALE]}); retraining")
            train()
            with _ProgressView(err, f"serving {name} in a child process") as hook:
                serving = bench.measure_serving(path, model_path, hook, seed=seed, **options)
        if bench.STALE in serving:
            raise RuntimeError(f"the model cannot serve: {serving[bench.STALE]}")
    report["serving"] = serving
    _finish(report, bench.figures(name, serving), "Serving benchmark", json_file)


def _bench_dataset(err, preset: str, seed: int, data: Path | None, cache_dir: Path):
    """The dataset a benchmark runs on and its name: ``--data``, or the cached preset."""
    from benchmarks.generate import cached_dataset
    from synthetic_data.config import ConfigError, make_config

    if data is not None:
        if not (data / "manifest.json").is_file():
            err.print(f"[red]error:[/red] --data {data} is not a dataset directory")
            raise typer.Exit(EXIT_BAD_INPUT)
        return data, data.resolve().name
    try:
        make_config(preset, seed=seed)
    except ConfigError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    with _failures(err), _ProgressView(err, f"{preset} dataset (cached)") as hook:
        path = cached_dataset(preset, seed, cache_dir, hook)
    return path, path.name


class _failures:
    """A crashed benchmark child (or an invalid dataset) exits 1 with its message."""

    def __init__(self, console) -> None:
        self._console = console

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        from rich.markup import escape

        from recommender.errors import DatasetError

        if exc is not None and isinstance(exc, RuntimeError | DatasetError):
            self._console.print(f"[red]benchmark failed:[/red] {escape(str(exc))}")
            raise typer.Exit(EXIT_MISSED) from exc
        return False


def _finish(report: dict[str, Any], figures, title: str, json_file: Path | None) -> None:
    """Print the figures and the machine, write the JSON, exit 1 when a target is missed."""
    from rich.console import Console

    report["load_avg_end"] = os.getloadavg()[0]
    report["figures"] = {f.key: f.to_dict() for f in figures}
    report["passed"] = all(f.passed is not False for f in figures)
    console = Console()
    console.print(_figure_table(title, figures))
    for fig in figures:
        if fig.note:
            console.print(f"  {fig.label}: {fig.note}", markup=False, highlight=False)
    m = report["machine"]
    threads = next(
        (r.get("threads") for r in (report.get("serving"), report.get("training")) if r), []
    )
    pools = ", ".join(f"{t['internal_api']} {t['num_threads']}" for t in threads)
    console.print(
        f"machine: {m['cores']} cores ({m['usable_cores']} usable), {m['cpu_model']}, "
        f"load average {m['load_avg_1min']:.2f} at start, {report['load_avg_end']:.2f} at end; "
        f"Python {m['python']}, numpy {m['numpy']}; thread pools: {pools or 'none'}",
        highlight=False,
    )
    missed = [f.label for f in figures if f.passed is False]
    if missed:
        console.print(f"[red]target missed:[/red] {'; '.join(missed)}", highlight=False)
    else:
        console.print("[green]every measured target met[/green]")
    if json_file is not None:
        json_file.write_text(json.dumps(report, indent=2) + "\n")
    if not report["passed"]:
        raise typer.Exit(EXIT_MISSED)


def _figure_table(title: str, figures):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in ("figure", "measured", "target", "pass?"):
        table.add_column(column, no_wrap=True)
    verdicts = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: "—"}
    for fig in figures:
        measured = "not measured" if fig.value is None else _fmt(fig.value, fig.unit)
        rule = {"<=": "≤", ">=": "≥"}.get(fig.rule or "", "")
        target = "—" if fig.target is None else f"{rule} {_fmt(fig.target, fig.unit)}"
        table.add_row(fig.label, measured, target, verdicts[fig.passed])
    return table


Workers = Annotated[int, typer.Option(min=1, max=64, help="Server worker processes.")]
WrkThreads = Annotated[int, typer.Option(min=1, max=64, help="wrk threads (client side).")]
ServerEnv = Annotated[
    list[str] | None,
    typer.Option(
        "--server-env",
        help="A SOCIALCART_NAME=VALUE setting for the server (repeatable), e.g. "
        "SOCIALCART_RECOMMEND_BATCH=1 to compare against no batching.",
    ),
]
JsonFile = Annotated[
    Path | None, typer.Option("--json", help="Also write every figure to this JSON file.")
]
CacheDir = Annotated[Path, typer.Option(help="Where generated datasets are cached.")]
ModelDir = Annotated[
    Path, typer.Option(help="Where trained models are cached (trained here if absent).")
]


def bench_serve_command(
    preset: Annotated[str, typer.Option(help="Preset whose dataset and model serve.")] = "large",
    seed: Annotated[int, typer.Option(help="Random seed of the generated dataset.")] = 0,
    data: Annotated[Path | None, typer.Option(help="Serve this dataset instead.")] = None,
    cache_dir: CacheDir = Path("data/bench"),
    model_dir: ModelDir = Path("models/bench"),
    workers: Workers = 2,
    connections: Annotated[int, typer.Option(min=1, help="Concurrent connections.")] = 32,
    write_connections: Annotated[
        int, typer.Option(min=1, help="Concurrent connections of the write phase.")
    ] = 32,
    seconds: Annotated[float, typer.Option(min=1, help="Seconds per timed phase.")] = 10.0,
    warmup: Annotated[float, typer.Option(min=0, help="Untimed warm-up seconds.")] = 3.0,
    wrk_threads: WrkThreads = 2,
    server_env: ServerEnv = None,
    json_file: JsonFile = None,
) -> None:
    """Load the HTTP service over loopback: recommendations against /healthz (>= 0.1x),
    p99 <= 25 ms, durable writes p99 <= 20 ms, server memory <= 4 GiB."""
    from benchmarks import serve as bench

    options = {"workers": workers, "connections": connections, "seconds": seconds}
    options["server_env"] = _server_env(server_env)
    options |= {"write_connections": write_connections, "warmup_s": warmup}
    _load_bench(
        bench.measure_serve,
        bench.figures,
        "HTTP serving benchmark",
        preset,
        seed,
        data,
        cache_dir,
        model_dir,
        dict(options, wrk_threads=wrk_threads),
        json_file,
    )


def bench_soak_command(
    preset: Annotated[str, typer.Option(help="Preset whose dataset and model serve.")] = "medium",
    seed: Annotated[int, typer.Option(help="Random seed of the generated dataset.")] = 0,
    data: Annotated[Path | None, typer.Option(help="Serve this dataset instead.")] = None,
    cache_dir: CacheDir = Path("data/bench"),
    model_dir: ModelDir = Path("models/bench"),
    workers: Workers = 2,
    connections: Annotated[int, typer.Option(min=1, help="Concurrent connections.")] = 64,
    seconds: Annotated[float, typer.Option(min=1, help="Seconds of mixed traffic.")] = 60.0,
    warmup: Annotated[float, typer.Option(min=0, help="Untimed warm-up seconds.")] = 5.0,
    wrk_threads: WrkThreads = 2,
    server_env: ServerEnv = None,
    json_file: JsonFile = None,
) -> None:
    """Mixed traffic (80 % recommendations, 10 % similar, 10 % writes) over loopback: no
    failed request, no 5xx, server memory growth < 5 %; p99 reported."""
    from benchmarks import soak as bench

    options = {"workers": workers, "connections": connections, "seconds": seconds}
    options["server_env"] = _server_env(server_env)
    _load_bench(
        bench.measure_soak,
        bench.figures,
        "HTTP soak",
        preset,
        seed,
        data,
        cache_dir,
        model_dir,
        dict(options, warmup_s=warmup, wrk_threads=wrk_threads),
        json_file,
    )


def _server_env(pairs: list[str] | None) -> dict[str, str]:
    from benchmarks.load import parse_server_env

    try:
        return parse_server_env(pairs)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--server-env") from exc


def _load_bench(measure, figures, title, preset, seed, data, cache_dir, model_dir, options, out):
    """Dataset and model (trained and cached if absent), then ``measure`` against a server
    in a child process; figures, JSON and the exit code as the other benchmarks."""
    import signal
    import sys

    from rich.console import Console

    err = Console(stderr=True)
    # SIGTERM unwinds like Ctrl-C, so the server started here is stopped too.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        _run_load_bench(
            err, measure, figures, title, preset, seed, data, cache_dir, model_dir, options, out
        )
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_load_bench(
    err, measure, figures, title, preset, seed, data, cache_dir, model_dir, options, out
):
    import tempfile

    from rich.console import Console

    from benchmarks.generate import machine_info
    from benchmarks.load import cpu_shares, stale_model
    from benchmarks.train import measure_training

    path, name = _bench_dataset(err, preset, seed, data, cache_dir)
    report: dict[str, Any] = {"dataset": str(path), "name": name, "machine": machine_info()}
    model_path = model_dir / name
    with _failures(err):
        stale = stale_model(model_path, path)
        if stale is not None:
            err.print(f"no usable model in {model_path} ({stale}): training one")
            with _ProgressView(err, f"training the hybrid on {name} (cached afterwards)") as hook:
                # Not "training": the report's thread pools are the server's, not these.
                report["model_training"] = measure_training(path, model_path, hook, baseline=False)
        with (
            tempfile.TemporaryDirectory(prefix="socialcart-load-") as tmp,
            _ProgressView(err, f"serving {name} over loopback") as hook,
        ):
            report["load"] = measure(model_path, path, Path(tmp), hook, **options)
    m, load = report["machine"], report["load"]
    Console().print(
        f"device: CPU ({m['cpu_model']}, {m['cores']} cores) shared by the server "
        f"({load['workers']} uvicorn worker(s)) and the load generator ({load['wrk']}, "
        f"{load['wrk_threads']} threads) on loopback; CPU used: "
        + cpu_shares(load.get("phases") or {"mixed": load["soak"]}),
        highlight=False,
    )
    _finish(report, figures(name, load), title, out)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``socialcart bench generate``, ``train``, ``recommend``, ``serve`` and ``soak``."""
    bench_app.command("generate")(bench_generate_command)
    bench_app.command("train")(bench_train_command)
    bench_app.command("recommend")(bench_recommend_command)
    bench_app.command("serve")(bench_serve_command)
    bench_app.command("soak")(bench_soak_command)
