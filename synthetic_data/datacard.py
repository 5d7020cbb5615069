"""The data card: a dataset's measured statistics beside targets from published measurements.

``socialcart data-card DIR`` loads any dataset in the contract (real or synthetic), prints a
table of statistic | measured | target | source | within target?, and writes
``data_card.md``, ``data_card.json`` and PNG plots into ``DIR`` (or ``--out``).

Library use::

    from synthetic_data.datacard import compute_statistics, write_data_card, TARGETS
    stats = compute_statistics(dataset)          # flat dict, see STAT_DESCRIPTIONS
    write_data_card(dataset, "out/")             # -> out/data_card.md

The statistics live in :mod:`synthetic_data.datacard_stats` (follow-graph maths in
:mod:`synthetic_data.datacard_graph`), the plots in :mod:`synthetic_data.datacard_plots`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from recommender.atomic import atomic_file
from recommender.dataset import Dataset
from recommender.errors import DatasetError
from synthetic_data.datacard_graph import N_WEDGE_SAMPLES
from synthetic_data.datacard_plots import PLOT_FILES, PLOT_TITLES, write_plots
from synthetic_data.datacard_stats import (
    STAT_DESCRIPTIONS,
    TAOBAO_MIX,
    Stat,
    compute_statistics,
    measure,
)

__all__ = [
    "STAT_DESCRIPTIONS",
    "TARGETS",
    "Target",
    "check_targets",
    "compute_statistics",
    "data_card_command",
    "write_data_card",
]

CARD_FILE = "data_card.md"
STATS_FILE = "data_card.json"

EVENT_MIX_TOLERANCE = 0.40
"""Each share of the Taobao event mix may be off by this much, relative."""


@dataclass(frozen=True)
class Target:
    """One published measurement a statistic is compared with.

    ``bounds`` is the accepted ``(lo, hi)`` range, inclusive (``math.inf`` for open-ended),
    or None when the target is for reading only.
    """

    key: str
    label: str
    target: str
    bounds: tuple[float, float] | None
    source: str

    def check(self, value: Stat) -> bool | None:
        """Whether ``value`` lies within the bounds (None: not measured or no bounds)."""
        if self.bounds is None or value is None or isinstance(value, str | bool):
            return None
        lo, hi = self.bounds
        return bool(lo <= value <= hi)


def _event_target(event: str) -> Target:
    share = TAOBAO_MIX[event]
    lo, hi = share * (1 - EVENT_MIX_TOLERANCE), min(1.0, share * (1 + EVENT_MIX_TOLERANCE))
    return Target(
        f"taobao_mix_{event}",
        f"event mix: {event} (of view/cart/favorite/purchase)",
        f"{100 * share:.1f} % (±40 % relative; mix 89.6 : 5.5 : 2.9 : 2.0)",
        (lo, hi),
        "Taobao UserBehavior (Tianchi)",
    )


TARGETS: list[Target] = [
    Target("mean_followees", "mean followees", "50–120", (50, 120),
           "Han et al. 2016; Chen et al. 2012"),
    Target("edge_reciprocity", "edge reciprocity",
           "≈ 0.09 (0.05–0.15), well under Twitter's 0.36", (0.05, 0.15),
           "Han et al. 2016; Kwak et al. 2010 / KONECT"),
    Target("powerlaw_alpha_in", "power-law exponent in-degree", "2.1–2.3 (accept 1.8–2.6)",
           (1.8, 2.6), "Kwak et al. 2010"),
    Target("powerlaw_alpha_out", "power-law exponent out-degree", "2.3–2.5 (accept 2.0–2.8)",
           (2.0, 2.8), "Kwak et al. 2010 (out 2.276)"),
    Target("clustering_vs_random", "average clustering vs a random graph, same degrees",
           "far above random (≥ 3×)", (3.0, math.inf), "Watts & Strogatz 1998; Newman 2003"),
    Target("share_silent_accounts", "accounts that never post", "≈ 57 % (0.45–0.70)",
           (0.45, 0.70), "Fu & Chau, PLOS ONE 2013"),
    Target("share_posts_top10pct_posters", "share of posts by top 10 % of posters",
           "≈ 80 % (0.65–0.92)", (0.65, 0.92), "Pew 2019 (Twitter)"),
    Target("share_posts_with_hashtag", "posts with a hashtag", "≈ 6 % (0.03–0.12)",
           (0.03, 0.12), "Gao et al., UMAP 2012"),
    Target("share_posts_with_product_link", "posts with a link (product link)",
           "≈ 15 % (0.08–0.25)", (0.08, 0.25), "Gao et al., UMAP 2012"),
    Target("share_posts_never_reposted", "posts never reposted", "> 90 %", (0.90, 1.0),
           "Goel et al. 2012/2016"),
    Target("mobile_share_active", "active users on mobile", "75–85 %", (0.75, 0.85),
           "Sina Q4 2012; Weibo 2013, 2015 reports"),
    Target("share_users_buying_via_posts", "users who buy through microblog links",
           "≈ 28 % (0.15–0.45)", (0.15, 0.45), "Sina Weibo user report 2013"),
    *(_event_target(e) for e in ("view", "cart", "favorite", "purchase")),
]  # fmt: skip
"""The published measurements of the card, in display order."""


def check_targets(stats: dict[str, Stat]) -> dict[str, bool | None]:
    """Target key -> within target (None when the statistic is not measured)."""
    return {t.key: t.check(stats.get(t.key)) for t in TARGETS}


# ------------------------------------------------------------------ rendering
def format_value(value: Stat) -> str:
    """A statistic as the card shows it."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str):
        return value
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}"


def _measured_text(target: Target, stats: dict[str, Stat]) -> str:
    value = format_value(stats.get(target.key))
    if target.key == "clustering_vs_random" and stats.get("avg_clustering") is not None:
        how = "sampled" if stats.get("global_clustering_sampled") else "exact"
        return (
            f"{value}× (average local C = {format_value(stats['avg_clustering'])}; random "
            f"graph {format_value(stats['avg_clustering_random'])}; transitivity "
            f"{format_value(stats['global_clustering'])} {how} vs random "
            f"{format_value(stats['global_clustering_random'])})"
        )
    if target.key.startswith("powerlaw_alpha_"):
        k_min = stats.get(target.key.replace("alpha", "kmin"))
        if k_min is not None:
            return f"{value} (k_min {k_min})"
    return value


def _verdict(ok: bool | None) -> str:
    return {True: "✓", False: "✗", None: "n/a"}[ok]


def _describe(dataset: Dataset, name: str | None) -> list[str]:
    """Title and provenance lines from the manifest."""
    manifest = dataset.manifest
    generator = manifest.get("generator")
    if isinstance(generator, dict):
        generator = " ".join(str(v) for k, v in generator.items() if k in ("name", "version"))
    lines = [f"# Data card: {name or manifest.get('name') or 'unnamed dataset'}", ""]
    if generator:
        lines.append(f"- generator: {generator}")
    for key in ("preset", "seed", "schema_version"):
        if manifest.get(key) is not None:
            lines.append(f"- {key.replace('_', ' ')}: {manifest[key]}")
    span = manifest.get("time_span")
    if isinstance(span, dict) and {"start", "end"} <= span.keys():
        lines.append(f"- time span: {span['start']} to {span['end']}")
    return lines


def _row_counts(dataset: Dataset) -> list[tuple[str, int]]:
    rows = [(name, len(frame)) for name, frame in dataset.tables()]
    rows += [(f"ground_truth/{k}", len(v)) for k, v in sorted(dataset.ground_truth.items())]
    return rows


HOW_TO_READ = """\
Each row compares a statistic measured on this dataset with a published measurement of
Sina Weibo, Twitter or Taobao. ✓ means the value lies inside the accepted range, ✗ outside,
n/a that the dataset cannot support it (no posts, no purchases, no device data, ...).
Published figures come from crawls of millions of users, so a small synthetic preset is
expected to sit below the target for mean followees and to have noisier power-law tails.
Power-law exponents are discrete maximum-likelihood fits to the tail k >= k_min, with
k_min chosen by the Kolmogorov-Smirnov distance (Clauset, Shalizi & Newman 2009).
Clustering is the transitivity of the undirected follow graph, exact on small graphs and
otherwise estimated from {samples:,} sampled wedges. Its random baseline is measured the
same way on configuration-model graphs with the same degree sequence (stubs matched at
random, multi-edges erased); the closed form (<k^2>-<k>)^2 / (<k>^3 n) is listed too, but
it assumes no hub beyond sqrt(<k> n) and overshoots badly on follow graphs with KOLs, so
the comparison uses the measured baseline. An exponent far above 3 means the tail is not
heavy at all (a capped friend list, say). The event mix is taken over view, cart, favorite
and purchase only ('click' has no Taobao counterpart). Cascade sizes count every post in a
repost tree, the original included (size 1 = never reposted).
"""


def render_markdown(
    dataset: Dataset,
    stats: dict[str, Stat],
    plots: dict[str, Path] | None = None,
    *,
    name: str | None = None,
) -> str:
    """The card as Markdown; ``plots`` maps plot name -> PNG path (linked by file name)."""
    verdicts = check_targets(stats)
    out = [*_describe(dataset, name), "", "## Size", ""]
    out += ["| table | rows |", "|---|---:|"]
    out += [f"| {table} | {rows:,} |" for table, rows in _row_counts(dataset)]
    out += ["", "## Against published measurements", ""]
    out += ["| statistic | measured | target | source | within target? |", "|---|---|---|---|---|"]
    for t in TARGETS:
        out.append(
            f"| {t.label} (`{t.key}`) | {_measured_text(t, stats)} | {t.target} | {t.source} "
            f"| {_verdict(verdicts[t.key])} |"
        )
    passed = sum(v is True for v in verdicts.values())
    measured = sum(v is not None for v in verdicts.values())
    out += ["", f"{passed} of {measured} measured targets met.", ""]
    if plots:
        out += ["## Plots", ""]
        for key, path in plots.items():
            out += [f"![{PLOT_TITLES[key]}]({Path(path).name})", ""]
    out += ["## All statistics", "", "| key | value | meaning |", "|---|---|---|"]
    out += [f"| `{k}` | {format_value(stats[k])} | {STAT_DESCRIPTIONS[k]} |" for k in stats]
    out += ["", "## How to read this", "", HOW_TO_READ.format(samples=N_WEDGE_SAMPLES)]
    return "\n".join(out)


def write_data_card(
    dataset: Dataset,
    out_dir: str | Path,
    *,
    plots: bool = True,
    name: str | None = None,
) -> Path:
    """Measure ``dataset`` and write ``data_card.md``, ``data_card.json`` and the plots.

    Parameters
    ----------
    dataset : Dataset
        Any dataset in the contract.
    out_dir : str or Path
        Directory to write into (created if missing).
    plots : bool
        Whether to draw the PNG plots (``data_card_<name>.png``).
    name : str, optional
        Dataset name for the title block (default: the manifest's ``name``).

    Returns
    -------
    Path
        The path of ``data_card.md``.
    """
    return _write_card(dataset, Path(out_dir), plots=plots, name=name)[0]


def _write_card(
    dataset: Dataset, out: Path, *, plots: bool, name: str | None
) -> tuple[Path, dict[str, Stat]]:
    out.mkdir(parents=True, exist_ok=True)
    m = measure(dataset)
    written = write_plots(m, out) if plots else {}
    payload = {"statistics": m.stats, "within_target": check_targets(m.stats)}
    _write_text(out / STATS_FILE, json.dumps(payload, indent=2) + "\n")
    card = out / CARD_FILE
    _write_text(card, render_markdown(dataset, m.stats, written, name=name))
    return card, m.stats


def _write_text(path: Path, text: str) -> None:
    """Written whole or not at all (the card sits inside a dataset directory)."""
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------ CLI
def _console_table(stats: dict[str, Stat]) -> Table:
    table = Table(title="Data card: measured vs published")
    for column in ("statistic", "measured", "target", "source", "within target?"):
        table.add_column(column)
    style = {True: "green", False: "red", None: "dim"}
    for t, ok in zip(TARGETS, check_targets(stats).values(), strict=True):
        table.add_row(
            t.label, _measured_text(t, stats), t.target, t.source, _verdict(ok), style=style[ok]
        )
    return table


def data_card_command(
    dataset_dir: Annotated[
        Path, typer.Argument(help="dataset directory (Parquet tables + manifest.json)")
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="where to write data_card.md and plots (default: the dataset dir)"),
    ] = None,
    plots: Annotated[bool, typer.Option(help="draw the PNG plots")] = True,
) -> None:
    """Measure a dataset against published Weibo/Twitter/Taobao figures; write data_card.md."""
    console, errors = Console(), Console(stderr=True)
    try:
        dataset = Dataset.load(dataset_dir)
    except DatasetError as exc:
        errors.print(
            f"cannot read dataset: {exc}",
            style="red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2) from exc
    target_dir = out if out is not None else dataset_dir
    name = dataset.manifest.get("name") or Path(dataset_dir).name
    card, stats = _write_card(dataset, target_dir, plots=plots, name=name)
    console.print(_console_table(stats))
    done = f"wrote {card}" + (f" and {len(PLOT_FILES)} plots" if plots else "")
    console.print(done, markup=False, highlight=False, soft_wrap=True)
