"""Offline evaluation: a split, every method fitted on its train side, full ranking.

Protocol (``../shared/DESIGN.md``): purchases are the target; every product is a candidate
except the person's past purchases (masked); metrics are averaged over the people with at
least one test purchase; segments are cold-start people (no history before the split),
people without followees, and heavy users (the top decile by past events).

Two splits: *temporal* (train before ``T``, test from ``T`` on) and *fixed* (a dataset's
``interactions.split`` column, e.g. LastFM's SocialLGN split). A leaky split — a test
pair that is also a training pair, or a model fitted on data from after ``T`` — is refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.base import Recommender
from recommender.data import TrainingData
from recommender.dataset import Dataset
from recommender.metrics import (
    DEFAULT_KS,
    catalogue_coverage,
    intra_list_diversity,
    novelty,
    ranking_metrics,
)


class LeakySplitError(ValueError):
    """Train and test share information they must not share."""


@dataclass
class Split:
    """Training data (what models see) and the relevant test items per user index."""

    train: TrainingData
    relevant: sp.csr_array
    exclude: sp.csr_array
    kind: str
    cutoff: pd.Timestamp | None

    @property
    def test_users(self) -> np.ndarray:
        return np.flatnonzero(np.diff(self.relevant.indptr) > 0)


def temporal_split(dataset: Dataset, *, test_days: float = 7.0) -> Split:
    """Train on everything before ``end - test_days``; test on later purchases."""
    end = dataset.time_span[1]
    cutoff = end - pd.Timedelta(days=test_days)
    inter = dataset.interactions
    if not (inter["ts"] >= cutoff).any():
        raise ValueError(f"no interactions after the cut-off {cutoff}: test_days too small")
    train = TrainingData.from_dataset(dataset, until=cutoff)
    test = inter[(inter["ts"] >= cutoff) & (inter["event"].astype(str) == "purchase")]
    relevant = _pairs(train, test)
    exclude = sp.csr_array((train.purchased > 0).astype(np.float32))
    relevant = _minus(relevant, exclude)  # re-buying a past purchase cannot be recommended
    return _checked(Split(train, relevant, exclude, "temporal", cutoff))


def fixed_split(dataset: Dataset) -> Split:
    """The dataset's own split (``interactions.split`` in {train, test}); training items
    are masked, as in the published protocol."""
    inter = dataset.interactions
    if "split" not in inter.columns:
        raise ValueError("the dataset has no fixed split (no interactions.split column)")
    labels = inter["split"].astype(str)
    bad = ~labels.isin(["train", "test"])
    if bad.any():
        raise ValueError(
            f"interactions.split has values other than train/test: {labels[bad].unique()[:5]}"
        )
    train = TrainingData.from_dataset(dataset)  # keeps split == train rows
    test = inter[labels == "test"]
    relevant = _pairs(train, test)
    exclude = sp.csr_array((train.user_items > 0).astype(np.float32))
    return _checked(Split(train, relevant, exclude, "fixed", None))


def _pairs(train: TrainingData, rows: pd.DataFrame) -> sp.csr_array:
    u = train.users.lookup(rows["user_id"].to_numpy(np.int64))
    i = train.items.lookup(rows["product_id"].to_numpy(np.int64))
    m = sp.csr_array((np.ones(len(u), np.float32), (u, i)), shape=(train.n_users, train.n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def _minus(a: sp.csr_array, b: sp.csr_array) -> sp.csr_array:
    out = sp.csr_array(a - a.multiply(b > 0))
    out.eliminate_zeros()
    return out


def _checked(split: Split) -> Split:
    overlap = split.relevant.multiply(split.exclude).nnz
    if overlap:
        raise LeakySplitError(
            f"{overlap} test user-item pairs are also training pairs (a leaky split)"
        )
    if split.kind == "temporal":
        inter = split.train.interactions
        if len(inter) and inter["ts"].max() >= split.cutoff:
            raise LeakySplitError("training interactions reach past the cut-off")
    if len(split.test_users) == 0:
        raise ValueError("the split has no test users")
    return split


@dataclass
class MethodResult:
    name: str
    metrics: dict[str, float]
    segments: dict[str, dict[str, float]] = field(default_factory=dict)
    fit_seconds: float = 0.0
    rank_seconds: float = 0.0


def evaluate(
    split: Split,
    methods: dict[str, Callable[[], Recommender]],
    *,
    ks: tuple[int, ...] = DEFAULT_KS,
    progress: Callable[[str], None] | None = None,
) -> list[MethodResult]:
    """Fit each method (a zero-argument factory) on the split's train side and measure it."""
    results = []
    item_counts = np.asarray((split.train.user_items > 0).sum(axis=0)).ravel()
    categories = _categories(split.train)
    segments = _segments(split)
    users = split.test_users
    for name, factory in methods.items():
        if progress:
            progress(name)
        model = factory()
        start = time.perf_counter()
        model.fit(split.train)
        if getattr(model, "data_", split.train) is not split.train:
            raise LeakySplitError(f"{name} was not fitted on the split's training data")
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        topk, _ = model.candidates(users, max(ks), exclude=split.exclude[users])
        rank_seconds = time.perf_counter() - start
        relevant = split.relevant[users]
        metrics = ranking_metrics(topk, relevant, ks=ks)
        k = max(ks)
        metrics[f"coverage@{k}"] = catalogue_coverage(topk, split.train.n_items)
        metrics[f"diversity@{k}"] = intra_list_diversity(topk, categories=categories)
        metrics[f"novelty@{k}"] = novelty(topk, item_counts, split.train.n_users)
        by_segment = {
            seg: ranking_metrics(topk, relevant, ks=ks, users=np.flatnonzero(mask[users]))
            for seg, mask in segments.items()
        }
        results.append(MethodResult(name, metrics, by_segment, fit_seconds, rank_seconds))
    return results


def _categories(train: TrainingData) -> np.ndarray:
    paths = train.dataset.products["category_path"].astype(str)
    return pd.factorize(paths)[0]


def _segments(split: Split) -> dict[str, np.ndarray]:
    train = split.train
    events = np.diff(train.user_items.indptr)
    followees = np.diff(train.follows.indptr)
    active = events[events > 0]
    heavy_cut = np.quantile(active, 0.9) if len(active) else np.inf
    return {
        "cold_start": events == 0,
        "no_friends": followees == 0,
        "heavy": events >= max(heavy_cut, 1),
    }


def results_frame(results: list[MethodResult]) -> pd.DataFrame:
    """One row per method: every metric, plus fit and ranking seconds."""
    rows = []
    for r in results:
        rows.append(
            {"method": r.name, **r.metrics, "fit_s": r.fit_seconds, "rank_s": r.rank_seconds}
        )
    return pd.DataFrame(rows).set_index("method")


def results_json(results: list[MethodResult]) -> dict[str, dict[str, float]]:
    """``method -> metric -> value`` (segments as ``"<segment>/<metric>"``)."""
    out = {}
    for r in results:
        values = {k: _num(v) for k, v in r.metrics.items()}
        for seg, metrics in r.segments.items():
            values |= {f"{seg}/{k}": _num(v) for k, v in metrics.items()}
        values["fit_seconds"] = r.fit_seconds
        values["rank_seconds"] = r.rank_seconds
        out[r.name] = values
    return out


def _num(v) -> float | None:
    v = float(v)
    return None if np.isnan(v) else v
