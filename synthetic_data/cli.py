"""CLI commands of the generator package: ``generate`` and ``data-card``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXIT_BAD_INPUT = 2


def generate_command(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the dataset into.")],
    preset: Annotated[
        str, typer.Option(help="Size preset: tiny, small (default), medium or large.")
    ] = "small",
    seed: Annotated[int, typer.Option(help="Random seed; same seed and config, same files.")] = 0,
    lang: Annotated[
        str | None, typer.Option(help="Language of names and text: en (default) or zh.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="TOML file of knobs (top level or a [generator] table).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one knob, e.g. --set n_users=5000 (repeatable)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace a non-empty output directory.")] = False,
    card: Annotated[bool, typer.Option(help="Also write the data card into the dataset.")] = True,
) -> None:
    """Generate a synthetic Weibo/Taobao social-commerce dataset."""
    from rich.console import Console

    from synthetic_data.config import ConfigError, make_config, parse_overrides

    console = Console(stderr=True)
    try:
        cfg = make_config(
            preset, file=config, overrides=parse_overrides(set_ or []), seed=seed, lang=lang
        )
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    if out.exists() and not out.is_dir():
        console.print(f"[red]error:[/red] --out {out} exists and is not a directory")
        raise typer.Exit(EXIT_BAD_INPUT)
    if out.is_dir() and any(out.iterdir()) and not force:
        console.print(
            f"[red]error:[/red] --out {out} exists and is not empty; use --force to replace it"
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    timings: dict[str, float] = {}
    dataset = _generate_with_progress(cfg, timings, console)
    with console.status("writing Parquet files"):
        dataset.save(out, overwrite=True)
    counts = dataset.manifest["row_counts"]
    console.print(
        f"[green]wrote[/green] {out}: "
        + ", ".join(f"{counts[t]:,} {t}" for t in ("users", "follows", "posts", "products"))
        + f", {counts['interactions']:,} interactions"
    )
    console.print(
        "stage times: " + ", ".join(f"{name} {secs:.1f}s" for name, secs in timings.items())
    )
    if card:
        from synthetic_data.datacard import write_data_card

        with console.status("writing the data card"):
            path = write_data_card(dataset, out)
        console.print(f"data card: {path}")


def _generate_with_progress(cfg, timings, console):
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from synthetic_data.generate import generate

    with Progress(
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, int] = {}

        def hook(stage: str, advance: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.advance(tasks[stage], advance)

        return generate(cfg, progress=hook, timings=timings)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this package's commands to the root app."""
    from synthetic_data.datacard import data_card_command

    app.command("generate")(generate_command)
    app.command("data-card")(data_card_command)
