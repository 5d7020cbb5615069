"""Evaluation reports: a terminal table, ``report.md`` and a PNG of NDCG@k per method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recommender.evaluation import MethodResult, Split, results_frame

SHOWN = ("precision", "recall", "ndcg", "map", "hit_rate")


def rich_table(results: list[MethodResult], *, k: int = 10, title: str = ""):
    """A Rich table of the main metrics at ``k`` per method."""
    from rich.table import Table

    table = Table(title=title or f"full-ranking metrics @{k}")
    table.add_column("method")
    for m in SHOWN:
        table.add_column(f"{m}@{k}", justify="right")
    for extra in ("coverage@20", "diversity@20", "novelty@20", "fit s"):
        table.add_column(extra, justify="right")
    best = max(r.metrics.get(f"ndcg@{k}", 0.0) for r in results) if results else 0.0
    for r in results:
        ndcg = r.metrics.get(f"ndcg@{k}", float("nan"))
        name = f"[bold]{r.name}[/bold]" if ndcg == best else r.name
        cells = [_fmt(r.metrics.get(f"{m}@{k}")) for m in SHOWN]
        cells += [_fmt(r.metrics.get(c)) for c in ("coverage@20", "diversity@20", "novelty@20")]
        table.add_row(name, *cells, f"{r.fit_seconds:.1f}")
    return table


def write_report(
    results: list[MethodResult], split: Split, out_dir: str | Path, *, title: str
) -> Path:
    """Write ``report.md`` and ``ndcg_at_k.png`` into ``out_dir``; return the report path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = results_frame(results)
    _plot(frame, out / "ndcg_at_k.png")
    lines = [
        f"# {title}",
        "",
        f"Split: {split.kind}"
        + (f", cut-off {split.cutoff.isoformat()}" if split.cutoff is not None else "")
        + f"; {len(split.test_users):,} test users, {split.train.n_items:,} products ranked "
        "(past purchases masked), purchases as the target.",
        "",
        "## Accuracy",
        "",
        _markdown(frame, [f"{m}@{k}" for k in (5, 10, 20) for m in SHOWN if f"{m}@{k}" in frame]),
        "",
        "## Beyond accuracy and cost",
        "",
        _markdown(
            frame,
            [
                c
                for c in ("coverage@20", "diversity@20", "novelty@20", "fit_s", "rank_s")
                if c in frame
            ],
        ),
        "",
        "## NDCG@10 per segment",
        "",
        _segments_markdown(results),
        "",
        "![NDCG@k per method](ndcg_at_k.png)",
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _segments_markdown(results: list[MethodResult]) -> str:
    rows = {}
    for r in results:
        rows[r.name] = {
            f"{seg} (n={m.get('n_users', 0)})": m.get("ndcg@10", float("nan"))
            for seg, m in r.segments.items()
        }
    frame = pd.DataFrame(rows).T
    return _markdown(frame, list(frame.columns))


def _markdown(frame: pd.DataFrame, columns: list[str]) -> str:
    head = "| method | " + " | ".join(columns) + " |"
    rule = "|---|" + "|".join("---:" for _ in columns) + "|"
    body = [
        f"| {name} | " + " | ".join(_fmt(row.get(c)) for c in columns) + " |"
        for name, row in frame.iterrows()
    ]
    return "\n".join([head, rule, *body])


def _plot(frame: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = [k for k in (5, 10, 20) if f"ndcg@{k}" in frame]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for name, row in frame.iterrows():
        ax.plot(ks, [row[f"ndcg@{k}"] for k in ks], marker="o", label=str(name))
    ax.set_xlabel("k")
    ax.set_ylabel("NDCG@k")
    ax.set_xticks(ks)
    ax.set_title("NDCG@k per method")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncols=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    value = float(value)
    if np.isnan(value):
        return "n/a"
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.0f}"
