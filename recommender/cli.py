"""CLI commands of the recommender package: ``import csv`` and ``import lastfm-hetrec``.

Heavy modules (pandas, the importers) are imported inside the commands, so
``socialcart --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

SEPARATOR_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}

import_app = typer.Typer(
    help="Import real data (CSV/TSV files, LastFM HetRec 2011) into the dataset contract.",
    no_args_is_help=True,
)


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add this package's commands to the root app."""
    app.add_typer(import_app, name="import")


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(
        f"error: {message}", style="red", markup=False, highlight=False, soft_wrap=True
    )
    return typer.Exit(2)


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise _fail(f"{out} exists and is not empty (use --force to replace it)")


def _run(title: str, job: Callable[[Callable[[str], None]], Any], out: Path) -> None:
    """Run an import with a live status line; map expected failures to exit code 2."""
    from recommender.errors import DatasetError

    console = Console(stderr=True)
    try:
        with console.status(title) as status:
            dataset = job(lambda stage: status.update(f"{title}: {stage}"))
    except (FileNotFoundError, FileExistsError, DatasetError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    _summary(dataset, out)


def _summary(dataset: Any, out: Path) -> None:
    from rich.table import Table

    table = Table(title=f"imported {dataset.manifest.get('name', '')}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, frame in dataset.tables():
        table.add_row(name, f"{len(frame):,}")
    console = Console()
    console.print(table)
    if "split" in dataset.interactions.columns:
        counts = dataset.interactions["split"].value_counts()
        parts = ", ".join(f"{k} {v:,}" for k, v in counts.sort_index(ascending=False).items())
        console.print(f"fixed split: {parts}", markup=False, highlight=False)
    console.print(f"wrote {out}", markup=False, highlight=False, soft_wrap=True)


def _parse_event_map(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    mapping = {}
    for part in text.split(","):
        raw, sep, event = part.partition("=")
        if not sep or not raw.strip() or not event.strip():
            raise _fail(f"--event-map entry {part!r} must look like raw=event")
        mapping[raw.strip()] = event.strip()
    return mapping


@import_app.command("csv")
def import_csv_command(
    interactions: Annotated[
        Path, typer.Option(help="user-item interactions file (CSV/TSV with a header row)")
    ],
    out: Annotated[Path, typer.Option(help="dataset directory to write")],
    social: Annotated[Path | None, typer.Option(help="social edges file (user, friend)")] = None,
    items: Annotated[Path | None, typer.Option(help="item text file (item, title, ...)")] = None,
    item_tags: Annotated[
        Path | None, typer.Option(help="tag assignments file (item, tag, optional user, ts)")
    ] = None,
    split_train: Annotated[Path | None, typer.Option(help="fixed split: train pairs")] = None,
    split_test: Annotated[Path | None, typer.Option(help="fixed split: test pairs")] = None,
    split_user_map: Annotated[
        Path | None, typer.Option(help="JSON raw user id -> id used in the split files")
    ] = None,
    split_item_map: Annotated[
        Path | None, typer.Option(help="JSON raw item id -> id used in the split files")
    ] = None,
    user_col: Annotated[str, typer.Option(help="interactions: user column")] = "user",
    item_col: Annotated[str, typer.Option(help="interactions: item column")] = "item",
    weight_col: Annotated[
        str, typer.Option(help="interactions: weight column (kept as `weight`; '' = none)")
    ] = "weight",
    ts_col: Annotated[str, typer.Option(help="interactions: time column ('' = none)")] = "ts",
    event_col: Annotated[
        str, typer.Option(help="interactions: event column ('' = binarise to purchases)")
    ] = "",
    event_map: Annotated[
        str | None, typer.Option(help="raw=event pairs, e.g. 'pv=view,buy=purchase'")
    ] = None,
    social_user_col: Annotated[str, typer.Option(help="social: user column")] = "user",
    social_friend_col: Annotated[str, typer.Option(help="social: friend column")] = "friend",
    social_ts_col: Annotated[str, typer.Option(help="social: time column ('' = none)")] = "ts",
    social_directed: Annotated[
        bool,
        typer.Option(
            "--social-directed/--social-undirected",
            help="edges are one-way follows / friendships (two follows each)",
        ),
    ] = False,
    item_id_col: Annotated[str, typer.Option(help="items: id column")] = "item",
    title_col: Annotated[str, typer.Option(help="items: title column")] = "title",
    description_col: Annotated[str, typer.Option(help="items: description column")] = (
        "description"
    ),
    category_col: Annotated[str, typer.Option(help="items: category path column")] = "category",
    tag_user_col: Annotated[str, typer.Option(help="tags: user column ('' = none)")] = "user",
    tag_item_col: Annotated[str, typer.Option(help="tags: item column")] = "item",
    tag_col: Annotated[str, typer.Option(help="tags: tag column")] = "tag",
    tag_ts_col: Annotated[str, typer.Option(help="tags: time column ('' = none)")] = "ts",
    split_user_col: Annotated[str, typer.Option(help="split files: user column")] = "user",
    split_item_col: Annotated[str, typer.Option(help="split files: item column")] = "item",
    sep: Annotated[
        str | None,
        typer.Option(help="separator of every file (tab, comma, ';'...; default: detected)"),
    ] = None,
    default_ts: Annotated[
        str, typer.Option(help="time of rows whose file has none (UTC)")
    ] = "2000-01-01T00:00:00Z",
    name: Annotated[str | None, typer.Option(help="dataset name in the manifest")] = None,
    force: Annotated[bool, typer.Option(help="replace an existing output directory")] = False,
) -> None:
    """Import CSV/TSV files (interactions, social edges, item text, tags, a fixed split)."""
    _check_out(out, force)
    import pandas as pd

    from recommender.importers import CsvColumns, import_csv

    columns = CsvColumns(
        user=user_col,
        item=item_col,
        weight=weight_col or None,
        ts=ts_col or None,
        event=event_col or None,
        social_user=social_user_col,
        social_friend=social_friend_col,
        social_ts=social_ts_col or None,
        item_id=item_id_col,
        title=title_col,
        description=description_col or None,
        category=category_col or None,
        tag_user=tag_user_col or None,
        tag_item=tag_item_col,
        tag=tag_col,
        tag_ts=tag_ts_col or None,
        split_user=split_user_col,
        split_item=split_item_col,
    )
    try:
        when = pd.Timestamp(default_ts)
    except ValueError as exc:
        raise _fail(f"--default-ts {default_ts!r} is not a date/time") from exc
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    events = _parse_event_map(event_map)

    def job(progress: Callable[[str], None]) -> Any:
        return import_csv(
            interactions=interactions,
            social=social,
            items=items,
            item_tags=item_tags,
            split_train=split_train,
            split_test=split_test,
            split_user_map=split_user_map,
            split_item_map=split_item_map,
            columns=columns,
            sep=SEPARATOR_NAMES.get(sep, sep) if sep else None,
            social_directed=social_directed,
            event_map=events,
            default_ts=when,
            name=name,
            out=out,
            overwrite=force,
            progress=progress,
        )

    _run(f"importing {interactions.name}", job, out)


@import_app.command("lastfm-hetrec")
def import_lastfm_command(
    src_dir: Annotated[
        Path,
        typer.Argument(help="lastfm-hetrec2011 directory (raw/ and sociallgn-split/)"),
    ],
    out: Annotated[Path, typer.Option(help="dataset directory to write")],
    force: Annotated[bool, typer.Option(help="replace an existing output directory")] = False,
) -> None:
    """Import LastFM HetRec 2011 with SocialLGN's fixed train/test split."""
    _check_out(out, force)
    if not src_dir.is_dir():
        raise _fail(f"LastFM directory {str(src_dir)!r} does not exist")

    def job(progress: Callable[[str], None]) -> Any:
        from recommender.importers_lastfm import import_lastfm_hetrec

        return import_lastfm_hetrec(src_dir, out=out, overwrite=force, progress=progress)

    _run("importing LastFM HetRec 2011", job, out)
