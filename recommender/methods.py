"""The methods ``socialcart evaluate`` compares: each source alone, the hybrid, the hybrid
without each source (ablation), baselines (popularity, tuned ALS, item-kNN) and, on
synthetic data, the oracle."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from recommender.base import Recommender
from recommender.dataset import Dataset
from recommender.evaluation import Split
from recommender.metrics import ranking_metrics

ALS_GRID = [
    {"factors": 64, "alpha": 2.0, "regularization": 0.05},
    {"factors": 64, "alpha": 8.0, "regularization": 0.05},
    {"factors": 128, "alpha": 4.0, "regularization": 0.05},
    {"factors": 128, "alpha": 1.0, "regularization": 30.0, "iterations": 30, "weighting": "bm25"},
    {"factors": 96, "alpha": 1.0, "regularization": 10.0, "iterations": 30, "weighting": "bm25"},
]


def method_factories(
    dataset: Dataset, split: Split, *, only: str | None = None
) -> dict[str, Callable[[], Recommender]]:
    """Zero-argument factories of every method that applies to this dataset."""
    from recommender.collaborative import ALSSource
    from recommender.hybrid import HybridRecommender, default_sources
    from recommender.itemknn import ItemKNNSource
    from recommender.oracle import OracleRecommender

    names = [n for n, _ in default_sources()]
    methods: dict[str, Callable[[], Recommender]] = {}
    for name in names:
        methods[name] = lambda name=name: dict(default_sources())[name]
    methods["hybrid"] = HybridRecommender
    for name in names:
        methods[f"hybrid-without-{name}"] = lambda name=name: HybridRecommender(
            sources=[(n, s) for n, s in default_sources() if n != name]
        )
    # Tuning fits several models: do it only when the tuned baseline is asked for, when
    # its factory is called (outside the timed fit).
    methods["als-tuned"] = lambda: ALSSource(**tune_als(split))
    methods["item-knn"] = ItemKNNSource
    if {"user_interests", "product_appeal", "user_latent"} <= set(dataset.ground_truth):
        methods["oracle"] = OracleRecommender
    if only:
        wanted = [m.strip() for m in only.split(",") if m.strip()]
        unknown = sorted(set(wanted) - set(methods))
        if unknown:
            raise ValueError(f"unknown methods {unknown}; choose from {sorted(methods)}")
        methods = {m: methods[m] for m in wanted}
    return methods


def tune_als(split: Split, *, grid: list[dict] | None = None) -> dict:
    """Pick ALS hyperparameters on a validation split carved from the training side only
    (a random 20 % of each person's training interactions), never on the test."""
    from recommender.collaborative import ALSSource
    from recommender.data import restrict

    train = split.train
    rng = np.random.default_rng(0)
    held = rng.random(len(train.interactions)) < 0.2
    fit_part = restrict(train, ~held)
    inter = train.interactions[held]
    val = sp.csr_array(
        (np.ones(len(inter), np.float32), (inter["u"].to_numpy(), inter["i"].to_numpy())),
        shape=(train.n_users, train.n_items),
    )
    val = sp.csr_array(val - val.multiply(fit_part.user_items > 0))
    val.eliminate_zeros()
    users = np.flatnonzero(np.diff(val.indptr) > 0)
    if len(users) > 3000:
        users = np.sort(rng.choice(users, 3000, replace=False))
    exclude = sp.csr_array((fit_part.user_items > 0).astype(np.float32))
    best, best_score = {}, -1.0
    for params in grid or ALS_GRID:
        model = ALSSource(**params).fit(fit_part)
        top, _ = model.candidates(users, 10, exclude=exclude[users])
        score = ranking_metrics(top, val[users], ks=(10,))["ndcg@10"]
        if score > best_score:
            best, best_score = params, score
    return best
