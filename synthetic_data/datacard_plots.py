"""The data card's plots: small PNGs drawn with matplotlib's Agg canvas.

Figures are built with :class:`matplotlib.figure.Figure` directly (no ``pyplot``), so drawing
touches no global backend state and works headless. A plot whose data is missing (no posts,
no follows, ...) still gets its file, showing what is missing, so the card's links hold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from recommender.atomic import atomic_file
from synthetic_data.datacard_graph import PowerLawFit, power_law_ccdf
from synthetic_data.datacard_stats import TAOBAO_EVENTS, TAOBAO_MIX, Measurements

FIGSIZE = (8, 5)
DPI = 100

PLOT_FILES: dict[str, str] = {
    "degrees": "data_card_degrees.png",
    "products": "data_card_products.png",
    "cascades": "data_card_cascades.png",
    "events": "data_card_events.png",
}
"""Plot name -> file name inside the output directory."""

PLOT_TITLES: dict[str, str] = {
    "degrees": "In- and out-degree distributions (CCDF) with fitted power laws",
    "products": "Product popularity long tail",
    "cascades": "Repost cascade sizes (CCDF)",
    "events": "Event mix against Taobao UserBehavior",
}


def write_plots(m: Measurements, out_dir: Path) -> dict[str, Path]:
    """Draw every plot into ``out_dir``; return plot name -> path written."""
    drawers = {
        "degrees": _draw_degrees,
        "products": _draw_products,
        "cascades": _draw_cascades,
        "events": _draw_events,
    }
    written = {}
    for name, draw in drawers.items():
        fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="tight")
        ax = fig.add_subplot()
        draw(ax, m)
        ax.set_title(PLOT_TITLES[name])
        path = out_dir / PLOT_FILES[name]
        with atomic_file(path) as tmp:  # a killed writer leaves no half-drawn plot
            fig.savefig(tmp, dpi=DPI)
        written[name] = path
    return written


def _ccdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct positive values and ``P(X >= value)`` among the positive values."""
    values = values[values > 0]
    uniq, counts = np.unique(values, return_counts=True)
    tail = np.cumsum(counts[::-1])[::-1]
    return uniq, tail / len(values)


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes, fontsize=14)
    ax.set_axis_off()


def _draw_degrees(ax: Axes, m: Measurements) -> None:
    if not (m.in_degrees > 0).any():
        _no_data(ax, "no follows in this dataset")
        return
    for label, degrees, fit, color in (
        ("in-degree (followers)", m.in_degrees, m.fit_in, "tab:blue"),
        ("out-degree (followees)", m.out_degrees, m.fit_out, "tab:orange"),
    ):
        k, ccdf = _ccdf(degrees)
        ax.loglog(k, ccdf, ".", color=color, markersize=4, label=label)
        if fit is not None:
            _draw_fit(ax, k, ccdf, fit, color)
    ax.set_xlabel("degree k")
    ax.set_ylabel("P(K >= k)")
    ax.legend()


def _draw_fit(ax: Axes, k: np.ndarray, ccdf: np.ndarray, fit: PowerLawFit, color: str) -> None:
    grid = np.unique(np.geomspace(fit.k_min, k.max(), 60).round())
    # The fitted tail is conditional on K >= k_min; scale it to the empirical tail weight.
    weight = ccdf[np.searchsorted(k, fit.k_min)]
    ax.loglog(
        grid,
        weight * power_law_ccdf(grid, fit),
        "-",
        color=color,
        label=f"fit alpha={fit.alpha:.2f}, k_min={fit.k_min}",
    )


def _draw_products(ax: Axes, m: Measurements) -> None:
    if m.product_interactions.sum() == 0:
        _no_data(ax, "no interactions in this dataset")
        return
    for label, counts in (
        ("all events", m.product_interactions),
        ("purchases", m.product_purchases),
    ):
        ranked = np.sort(counts)[::-1]
        ranked = ranked[ranked > 0]
        if len(ranked):
            ax.loglog(np.arange(1, len(ranked) + 1), ranked, "-", label=label)
    ax.set_xlabel("product rank")
    ax.set_ylabel("events per product")
    ax.legend()


def _draw_cascades(ax: Axes, m: Measurements) -> None:
    if len(m.cascade_sizes) == 0:
        _no_data(ax, "no posts in this dataset")
        return
    size, ccdf = _ccdf(m.cascade_sizes)
    ax.loglog(size, ccdf, "o-", markersize=3)
    ax.set_xlabel("cascade size s (posts in the repost tree, root included)")
    ax.set_ylabel("P(S >= s)")


def _draw_events(ax: Axes, m: Measurements) -> None:
    measured = [m.stats.get(f"taobao_mix_{e}") for e in TAOBAO_EVENTS]
    if any(v is None for v in measured):
        _no_data(ax, "no view/cart/favorite/purchase events in this dataset")
        return
    x = np.arange(len(TAOBAO_EVENTS))
    target = [TAOBAO_MIX[e] for e in TAOBAO_EVENTS]
    ax.bar(x - 0.2, measured, width=0.4, label="measured")
    ax.bar(x + 0.2, target, width=0.4, label="Taobao UserBehavior")
    ax.set_xticks(x, TAOBAO_EVENTS)
    ax.set_yscale("log")
    ax.set_ylabel("share of view/cart/favorite/purchase events (log)")
    ax.legend()
