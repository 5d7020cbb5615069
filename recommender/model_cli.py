"""CLI commands for models: ``train``, ``recommend`` and ``evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

EXIT_BAD_INPUT = 2


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _load_dataset(path: Path):
    from recommender.dataset import Dataset
    from recommender.errors import DatasetError

    try:
        with _console().status(f"loading {path}"):
            return Dataset.load(path)
    except DatasetError as exc:
        _console().print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from exc


def train_command(
    data: Annotated[Path, typer.Argument(help="Dataset directory.")],
    out: Annotated[Path, typer.Option("--out", help="Model directory to write.")],
    until: Annotated[
        str | None,
        typer.Option(help="Train on what happened before this UTC time (default: everything)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace a non-empty model directory.")] = False,
) -> None:
    """Fit the hybrid recommender on a dataset and save it."""
    import time

    from recommender.hybrid import HybridRecommender

    console = _console()
    if out.exists() and any(out.iterdir()) and not force:
        console.print(f"[red]error:[/red] --out {out} exists and is not empty; use --force")
        raise typer.Exit(EXIT_BAD_INPUT)
    dataset = _load_dataset(data)
    start = time.perf_counter()
    with console.status("fitting sources and the ranker"):
        try:
            model = HybridRecommender().fit(dataset, until=until)
        except ValueError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(EXIT_BAD_INPUT) from exc
    seconds = time.perf_counter() - start
    model.save(out, overwrite=True)
    (out / "dataset_path").write_text(str(data.resolve()) + "\n")
    console.print(f"[green]trained[/green] in {seconds:.1f}s, saved to {out}")


def recommend_command(
    model_dir: Annotated[Path, typer.Argument(help="Model directory (from `socialcart train`).")],
    user: Annotated[list[int], typer.Option("--user", help="User id (repeatable).")],
    data: Annotated[
        Path | None, typer.Option(help="Dataset the model was trained on (default: recorded).")
    ] = None,
    k: Annotated[int, typer.Option(help="How many products.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Recommend products for people, with reasons."""
    from rich.console import Console
    from rich.table import Table

    from recommender.errors import UnknownIdError
    from recommender.persistence import ModelFormatError, load_model

    console = _console()
    dataset_dir = data or _recorded_dataset(model_dir)
    dataset = _load_dataset(dataset_dir)
    try:
        model = load_model(model_dir, dataset)
        recs = model.recommend(user, k=k)
    except (ModelFormatError, UnknownIdError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    products = dataset.products.set_index("product_id")
    recs["title"] = recs["product_id"].map(products["title"])
    recs["price"] = recs["product_id"].map(products["price"])
    if as_json:
        typer.echo(json.dumps(recs.to_dict(orient="records"), ensure_ascii=False, default=str))
        return
    table = Table(title=f"top {k}")
    for col in ("user", "#", "product", "title", "price", "score", "why"):
        table.add_column(col)
    for row in recs.itertuples():
        why = "; ".join(r["text"] for r in row.reasons[:2])
        table.add_row(
            str(row.user_id),
            str(row.rank),
            str(row.product_id),
            str(row.title)[:48],
            f"{row.price:.2f}" if row.price == row.price else "",
            f"{row.score:.3f}",
            why,
        )
    Console().print(table)


def _recorded_dataset(model_dir: Path) -> Path:
    marker = model_dir / "dataset_path"
    if marker.exists():
        return Path(marker.read_text().strip())
    _console().print("[red]error:[/red] pass --data DIR (the dataset the model was trained on)")
    raise typer.Exit(EXIT_BAD_INPUT)


def evaluate_command(
    data: Annotated[Path, typer.Argument(help="Dataset directory.")],
    split: Annotated[
        str, typer.Option(help="temporal (last --test-days are the test) or fixed (the dataset's).")
    ] = "temporal",
    test_days: Annotated[float, typer.Option(help="Test window of a temporal split.")] = 7.0,
    methods: Annotated[
        str | None,
        typer.Option(help="Comma-separated subset of methods (default: all that apply)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Directory for report.md and the NDCG@k plot.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object: method -> metric -> value.")
    ] = False,
) -> None:
    """Evaluate every source, the hybrid, ablations, baselines and (synthetic) the oracle."""
    from rich.console import Console

    from recommender.evaluation import (
        LeakySplitError,
        evaluate,
        fixed_split,
        results_json,
        temporal_split,
    )
    from recommender.methods import method_factories
    from recommender.report import rich_table, write_report

    console = _console()
    dataset = _load_dataset(data)
    try:
        if split == "temporal":
            the_split = temporal_split(dataset, test_days=test_days)
        elif split == "fixed":
            the_split = fixed_split(dataset)
        else:
            raise ValueError(f"--split {split!r}: must be temporal or fixed")
        factories = method_factories(dataset, the_split, only=methods)
    except (ValueError, LeakySplitError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    from rich.progress import Progress

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("evaluating", total=len(factories))

        def step(name: str) -> None:
            bar.update(task, description=f"fitting {name}")
            bar.advance(task)

        results = evaluate(the_split, factories, progress=step)
    if as_json:
        typer.echo(json.dumps(results_json(results)))
    else:
        Console().print(rich_table(results, title=f"{data} ({split} split)"))
    report_dir = out or (data / "evaluation")
    path = write_report(results, the_split, report_dir, title=f"Evaluation of {data.name}")
    console.print(f"report: {path}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the model commands to the root app."""
    app.command("train")(train_command)
    app.command("recommend")(recommend_command)
    app.command("evaluate")(evaluate_command)
