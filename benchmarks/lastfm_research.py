"""Research record: which recipe reaches SocialLGN's figures on the LastFM HetRec split.

Target (SocialLGN's own numbers on its fixed split, full ranking, train items masked,
averaged over users with test items): NDCG@10 >= 0.2566, Recall@10 >= 0.2026.

Honest protocol: every hyper-parameter (and every blend weight) is chosen on a validation
split carved out of the training pairs (a random 20 %, seed 2020, like SocialLGN's own
``train_test_split``); the chosen configuration is then refit on the whole training set and
measured once on the test set. The script also prints the best test figure of each sweep
("oracle", i.e. tuned on test) for comparison with papers that select on test.

Run (about 20 minutes on 2 cores; ``--quick`` for a 2-minute smoke run)::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/lastfm_research.py > /tmp/research.txt

It reads ``../shared/datasets/lastfm-hetrec2011`` through the LastFM importer and writes
nothing: results go to stdout (progress lines, then Markdown tables).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # 2 shared cores: one BLAS thread, ALS uses 2

import argparse  # noqa: E402
import itertools  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from recommender.importers_lastfm import import_lastfm_hetrec  # noqa: E402
from recommender.metrics import evaluate_scores  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "lastfm-hetrec2011"
SEED = 2020
ALS_THREADS = 2


# ------------------------------------------------------------------------ data
@dataclass
class Split:
    """One train/target pair of user x item matrices plus the side data."""

    train: sp.csr_array  # binary
    listens: sp.csr_array  # listen counts of the training pairs only
    target: sp.csr_array  # binary, held-out pairs
    social: sp.csr_array  # user x user, symmetric, binary
    user_tags: sp.csr_array  # user x tag counts (the user's own tag assignments)
    item_tags: sp.csr_array  # item x tag counts (everyone's assignments)
    tagged: sp.csr_array  # user x item: the user tagged (posted about) the item
    assignments: tuple[np.ndarray, np.ndarray, np.ndarray]  # (user, item, tag) of linked tags


def load(data: Path) -> tuple[Split, Split]:
    """The (validation, test) splits in index space, from the contract dataset."""
    ds = import_lastfm_hetrec(data)
    users = np.sort(ds.users["user_id"].to_numpy())
    items = np.sort(ds.products["product_id"].to_numpy())
    n_users, n_items = len(users), len(items)
    inter = ds.interactions
    u = np.searchsorted(users, inter["user_id"].to_numpy())
    i = np.searchsorted(items, inter["product_id"].to_numpy())
    weight = inter["weight"].to_numpy(np.float64)
    is_train = inter["split"].to_numpy() == "train"

    def matrix(mask: np.ndarray, values: np.ndarray | None = None) -> sp.csr_array:
        vals = np.ones(mask.sum()) if values is None else values[mask]
        return sp.csr_array((vals, (u[mask], i[mask])), shape=(n_users, n_items))

    f = ds.follows
    a = np.searchsorted(users, f["follower_id"].to_numpy())
    b = np.searchsorted(users, f["followee_id"].to_numpy())
    social = sp.csr_array((np.ones(len(a)), (a, b)), shape=(n_users, n_users))
    social = ((social + social.T) > 0).astype(np.float64)

    posts = ds.posts.explode("hashtags").dropna(subset=["hashtags"])
    tag_codes, tag_names = pd.factorize(posts["hashtags"].astype(str))
    pu = np.searchsorted(users, posts["user_id"].to_numpy(np.int64))
    user_tags = sp.csr_array((np.ones(len(pu)), (pu, tag_codes)), shape=(n_users, len(tag_names)))
    linked = posts["product_id"].notna().to_numpy()
    pi = np.searchsorted(items, posts["product_id"][linked].to_numpy(np.int64))
    item_tags = sp.csr_array(
        (np.ones(len(pi)), (pi, tag_codes[linked])), shape=(n_items, len(tag_names))
    )
    tagged = sp.csr_array((np.ones(len(pi)), (pu[linked], pi)), shape=(n_users, n_items))
    tagged = (tagged > 0).astype(np.float64)
    side = {"social": social, "user_tags": user_tags, "item_tags": item_tags, "tagged": tagged}
    side["assignments"] = (pu[linked], pi, tag_codes[linked])

    train, listens = matrix(is_train), matrix(is_train, weight)
    test = Split(train, listens, matrix(~is_train), **side)
    # Validation: 20 % of the training pairs held out (seeded), the rest is "train".
    rng = np.random.default_rng(SEED)
    held = np.zeros(len(u), dtype=bool)
    train_rows = np.flatnonzero(is_train)
    held[rng.choice(train_rows, size=round(0.2 * len(train_rows)), replace=False)] = True
    fit = is_train & ~held
    val = Split(matrix(fit), matrix(fit, weight), matrix(held), **side)
    return val, test


def evaluate(scores: np.ndarray, split: Split) -> dict[str, float]:
    return evaluate_scores(scores, split.target, exclude=split.train, ks=(10, 20))


# ------------------------------------------------------------------ weighting
def weighted(split: Split, scheme: str) -> sp.csr_array:
    """The training matrix under a confidence scheme (listen counts of train pairs only)."""
    if scheme == "binary":
        return split.train.astype(np.float64)
    if scheme == "log":
        out = split.listens.copy()
        out.data = np.log1p(out.data)
        return out
    if scheme in ("bm25", "tfidf"):
        from implicit.nearest_neighbours import bm25_weight, tfidf_weight

        coo = sp.coo_matrix(split.train)
        weighted_ = bm25_weight(coo, K1=100, B=0.8) if scheme == "bm25" else tfidf_weight(coo)
        return sp.csr_array(weighted_)
    raise ValueError(f"scheme == {scheme!r}, must be binary, log, bm25 or tfidf.")


def row_normalise(m: sp.csr_array) -> sp.csr_array:
    sums = np.asarray(m.sum(axis=1)).ravel()
    return sp.csr_array(
        sp.diags_array(np.divide(1.0, sums, where=sums > 0, out=np.zeros_like(sums))) @ m
    )


# --------------------------------------------------------------------- models
def popularity(split: Split) -> np.ndarray:
    counts = np.asarray(split.train.sum(axis=0)).ravel()
    return np.tile(counts, (split.train.shape[0], 1))


def item_knn(split: Split, *, k: int, shrink: float) -> np.ndarray:
    """Item-item cosine (with shrinkage) keeping each item's k nearest neighbours."""
    x = split.train.astype(np.float64)
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
    co = sp.csr_array(x.T @ x)
    co.setdiag(0)
    co.eliminate_zeros()
    coo = co.tocoo()
    coo.data = coo.data / (norms[coo.row] * norms[coo.col] + shrink)
    sim = _keep_top_k(sp.csr_array(coo), k)
    return (x @ sim.T).toarray()


def _keep_top_k(m: sp.csr_array, k: int) -> sp.csr_array:
    """Keep the k largest entries of every row."""
    m = sp.csr_array(m)
    rows, cols, vals = [], [], []
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        keep = np.arange(lo, hi)
        if hi - lo > k:
            keep = lo + np.argpartition(-m.data[lo:hi], k - 1)[:k]
        rows.append(np.full(len(keep), r))
        cols.append(m.indices[keep])
        vals.append(m.data[keep])
    return sp.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape
    )


def user_knn(split: Split, *, k: int, power: float) -> np.ndarray:
    """User-user cosine, k nearest neighbours, similarities raised to ``power``."""
    x = split.train.astype(np.float64)
    norms = np.sqrt(np.asarray(x.sum(axis=1)).ravel())
    norms[norms == 0] = 1
    xn = sp.csr_array(sp.diags_array(1 / norms) @ x)
    sim = (xn @ xn.T).toarray()
    np.fill_diagonal(sim, 0)
    cut = np.partition(sim, -k, axis=1)[:, -k][:, None]
    sim = np.where(sim >= cut, sim, 0.0) ** power
    return np.asarray(sp.csr_array(x).T @ sim.T).T


def ease(split: Split, *, lam: float, scheme: str = "binary") -> np.ndarray:
    """EASE (Steck 2019) in its dual form: a users x users inverse instead of items x items.

    With ``P = (X'X + lam I)^-1 = (I - X' K X) / lam`` and ``K = (XX' + lam I)^-1``, the
    scores ``X B`` with ``B = I - P diag(P)^-1`` need only ``XX'`` (users x users), so all
    17,632 items cost seconds; an item without training data gets score 0.
    """
    x = weighted(split, scheme).toarray()
    gram = x @ x.T
    k_inv = np.linalg.inv(gram + lam * np.eye(len(gram)))
    kx = k_inv @ x
    diag_p = (1.0 - np.einsum("ui,ui->i", x, kx)) / lam
    xp = (x - gram @ kx) / lam
    return x - xp / diag_p


def rp3beta(split: Split, *, alpha: float, beta: float) -> np.ndarray:
    """RP3beta (Paudel et al. 2016) without neighbour pruning: P_ui^a P_iu^a P_ui^a / pop^b."""
    x = split.train.astype(np.float64)
    p_ui, p_iu = row_normalise(x), row_normalise(sp.csr_array(x.T))
    p_ui.data **= alpha
    p_iu.data **= alpha
    pop = np.asarray(x.sum(axis=0)).ravel()
    penalty = np.where(pop > 0, pop, 1.0) ** -beta
    walk = (p_ui @ p_iu).toarray()
    return (walk @ p_ui.toarray()) * penalty


def als(
    split: Split, *, factors: int, reg: float, iters: int, scheme: str, scale: float, seed=0
) -> np.ndarray:
    """implicit's conjugate-gradient ALS on the weighted training matrix."""
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=factors,
        regularization=reg,
        iterations=iters,
        random_state=seed,
        num_threads=ALS_THREADS,
    )
    model.fit(sp.csr_matrix(weighted(split, scheme) * scale), show_progress=False)
    return model.user_factors @ model.item_factors.T


def tagged_direct(split: Split) -> np.ndarray:
    """1 if the user tagged the artist (popularity breaks ties): a post-about-product link."""
    return split.tagged.toarray() + 1e-9 * popularity(split)


def friends_items(split: Split) -> np.ndarray:
    """Share of a user's friends who have each item in training."""
    return (row_normalise(split.social) @ split.train).toarray()


def tag_content(split: Split, *, own: bool) -> np.ndarray:
    """Cosine of the user's tag profile and each artist's tag profile (log-tf x idf).

    With ``own=False`` an artist's profile leaves out the user's own tags on that artist,
    so the score does not simply reveal "this user tagged this artist".
    """
    ut, it = split.user_tags, split.item_tags
    idf = np.log((it.shape[0] + 1) / (np.asarray((it > 0).sum(axis=0)).ravel() + 1))
    user = _l2(_log_tf(ut) @ sp.diags_array(idf))
    item = _l2(_log_tf(it) @ sp.diags_array(idf))
    scores = (user @ item.T).toarray()
    if own:
        return scores
    # Exact re-computation for the (user, artist) pairs where the user tagged the artist.
    pairs = split.tagged.tocoo()
    own_tags = _own_tag_counts(split, pairs.row, pairs.col)
    rest = sp.csr_array(it[pairs.col] - own_tags)
    rest.eliminate_zeros()
    rest = _l2(_log_tf(rest) @ sp.diags_array(idf))
    scores[pairs.row, pairs.col] = np.asarray(rest.multiply(user[pairs.row]).sum(axis=1)).ravel()
    return scores


def _own_tag_counts(split: Split, users: np.ndarray, items: np.ndarray) -> sp.csr_array:
    """Rows = the sorted (user, item) pairs, columns = tags: the user's own tag counts."""
    n_items = split.tagged.shape[1]
    keys = users.astype(np.int64) * n_items + items
    order = np.argsort(keys)
    a_user, a_item, a_tag = split.assignments
    pos = np.searchsorted(keys[order], a_user.astype(np.int64) * n_items + a_item)
    rows = order[pos]
    return sp.csr_array(
        (np.ones(len(rows)), (rows, a_tag)), shape=(len(users), split.item_tags.shape[1])
    )


def _log_tf(m: sp.csr_array) -> sp.csr_array:
    m = sp.csr_array(m, dtype=np.float64)
    m.data = np.log1p(m.data)
    return m


def _l2(m: sp.csr_array) -> sp.csr_array:
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    return sp.csr_array(sp.diags_array(np.divide(1.0, norms, where=norms > 0, out=norms)) @ m)


# ----------------------------------------------------------------- experiments
Model = Callable[..., np.ndarray]


@dataclass
class Result:
    method: str
    params: dict
    val: dict[str, float]
    test: dict[str, float]
    oracle_ndcg: float | None  # best test NDCG@10 over the sweep (selection on test)
    val_scores: np.ndarray
    test_scores: np.ndarray


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sweep(name: str, model: Model, grid: list[dict], val: Split, test: Split, oracle: bool):
    """Tune on validation, refit the best on the full train, measure once on test."""
    best, best_ndcg, best_scores, oracle_ndcg = None, -1.0, None, None
    for params in grid:
        start = time.perf_counter()
        scores = model(val, **params).astype(np.float32)
        ndcg = evaluate(scores, val)["ndcg@10"]
        line = f"{name:14s} {params} val ndcg@10={ndcg:.4f}"
        if oracle and len(grid) > 1:
            t_ndcg = evaluate(model(test, **params), test)["ndcg@10"]
            oracle_ndcg = max(oracle_ndcg or 0.0, t_ndcg)
            line += f" test={t_ndcg:.4f}"
        log(f"{line} ({time.perf_counter() - start:.1f}s)")
        if ndcg > best_ndcg:
            best, best_ndcg, best_scores = params, ndcg, scores
    test_scores = model(test, **best).astype(np.float32)
    result = Result(
        name,
        best,
        evaluate(best_scores, val),
        evaluate(test_scores, test),
        oracle_ndcg,
        best_scores,
        test_scores,
    )
    log(f"==> {name} {best}: test ndcg@10={result.test['ndcg@10']:.4f}")
    return result


def grids(quick: bool) -> dict[str, tuple[Model, list[dict]]]:
    def product(**axes) -> list[dict]:
        return [
            dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())
        ]

    if quick:
        als_grid = product(factors=[64], reg=[10.0], iters=[30], scheme=["bm25"], scale=[1.0])
        return {
            "popularity": (popularity, [{}]),
            "item-kNN": (item_knn, product(k=[200], shrink=[10.0])),
            "user-kNN": (user_knn, product(k=[100], power=[1.0])),
            "EASE": (ease, product(lam=[1600.0], scheme=["log"])),
            "RP3beta": (rp3beta, product(alpha=[1.0], beta=[0.3])),
            "ALS": (als, als_grid),
            "friends' items": (friends_items, [{}]),
            "tag content": (tag_content, [{"own": False}]),
        }
    als_grid = product(
        factors=[32, 48, 64, 96, 128],
        reg=[1.0, 5.0, 10.0, 20.0, 30.0, 50.0],
        iters=[30],
        scheme=["bm25"],
        scale=[1.0],
    )
    als_grid += product(
        factors=[48, 64, 96], reg=[5.0, 10.0, 20.0], iters=[30], scheme=["tfidf"], scale=[1.0]
    )
    als_grid += product(
        factors=[48, 64, 96], reg=[1.0, 10.0], iters=[30], scheme=["binary"], scale=[5.0, 20.0]
    )
    als_grid += product(
        factors=[48, 64, 96], reg=[1.0, 10.0], iters=[30], scheme=["log"], scale=[1.0, 5.0]
    )
    als_grid += product(
        factors=[192], reg=[30.0, 50.0, 80.0], iters=[30], scheme=["bm25"], scale=[1.0]
    )
    als_grid += product(factors=[96], reg=[30.0], iters=[15, 60], scheme=["bm25"], scale=[0.5, 2.0])
    ease_grid = product(lam=[25.0, 50.0, 100.0, 200.0, 400.0], scheme=["binary"])
    ease_grid += product(lam=[400.0, 800.0, 1600.0, 3200.0, 6400.0], scheme=["log"])
    ease_grid += product(lam=[400.0, 800.0, 1600.0, 3200.0, 6400.0, 12800.0], scheme=["bm25"])
    return {
        "popularity": (popularity, [{}]),
        "item-kNN": (
            item_knn,
            product(k=[50, 100, 200, 400, 1000, 3000], shrink=[0.0, 10.0, 50.0]),
        ),
        "user-kNN": (user_knn, product(k=[25, 50, 100, 200, 400], power=[1.0, 2.0])),
        "EASE": (ease, ease_grid),
        "RP3beta": (rp3beta, product(alpha=[0.4, 0.6, 0.8, 1.0], beta=[0.2, 0.3, 0.4, 0.5])),
        "ALS": (als, als_grid),
        "friends' items": (friends_items, [{}]),
        "tag content": (tag_content, [{"own": False}]),
        "tag content, own tags kept": (tag_content, [{"own": True}]),
        "tagged (direct)": (tagged_direct, [{}]),
    }


# --------------------------------------------------------------------- blends
def min_max(scores: np.ndarray, split: Split) -> np.ndarray:
    """Per-user min-max scaling over the candidate (non-training) items."""
    out = scores.astype(np.float64, copy=True)
    train = split.train.tocoo()
    out[train.row, train.col] = np.nan
    lo, hi = np.nanmin(out, axis=1, keepdims=True), np.nanmax(out, axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    out = (out - lo) / span
    out[train.row, train.col] = -np.inf
    return out.astype(np.float32)


WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def blend(
    names: list[str],
    results: dict[str, Result],
    val: Split,
    test: Split,
    start: dict[str, float],
    normalised: dict[tuple[str, str], np.ndarray],
) -> tuple[dict[str, float], dict, dict]:
    """Coordinate ascent on validation over the blend weights, two passes; then test."""
    for name in names:
        for part, split in (("val", val), ("test", test)):
            if (name, part) not in normalised:
                source = results[name].val_scores if part == "val" else results[name].test_scores
                normalised[name, part] = min_max(source, split)

    def combine(weights: dict[str, float], part: str) -> np.ndarray:
        total = np.zeros_like(normalised[names[0], part], dtype=np.float32)
        for name, w in weights.items():
            if w:
                total += np.float32(w) * normalised[name, part]
        return total

    weights = {name: start.get(name, 0.0) for name in names}
    if not any(weights.values()):
        weights[names[0]] = 1.0
    best = evaluate(combine(weights, "val"), val)["ndcg@10"]
    for _ in range(2):
        for name in names[1:]:
            for w in WEIGHTS:
                trial = weights | {name: w}
                ndcg = evaluate(combine(trial, "val"), val)["ndcg@10"]
                if ndcg > best + 1e-5:
                    best, weights = ndcg, trial
        log(f"blend {names}: {weights} val ndcg@10={best:.4f}")
    return weights, evaluate(combine(weights, "val"), val), evaluate(combine(weights, "test"), test)


# ----------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--quick", action="store_true", help="one config per method")
    parser.add_argument("--no-oracle", action="store_true", help="skip test-set sweeps")
    args = parser.parse_args()
    started = time.perf_counter()
    val, test = load(args.data)
    log(
        f"loaded: train {test.train.nnz}, test {test.target.nnz}, val-fit {val.train.nnz}, "
        f"val {val.target.nnz} pairs"
    )
    results = {
        name: sweep(name, model, grid, val, test, oracle=not args.no_oracle)
        for name, (model, grid) in grids(args.quick).items()
    }

    normalised: dict[tuple[str, str], np.ndarray] = {}
    families = [
        ("CF: ALS + EASE", ["ALS", "EASE"]),
        ("CF: ALS + EASE + RP3beta + user-kNN", ["ALS", "EASE", "RP3beta", "user-kNN"]),
        ("CF + friends' items", ["ALS", "EASE", "RP3beta", "user-kNN", "friends' items"]),
        (
            "CF + friends + tag content",
            ["ALS", "EASE", "RP3beta", "user-kNN", "friends' items", "tag content"],
        ),
    ]
    if "tagged (direct)" in results:
        own = ["tag content, own tags kept", "tagged (direct)"]
        families.append(("CF + friends + tags + the user's own tag links", families[-1][1] + own))
    blends, weights = [], {}
    for label, names in families:
        weights, val_r, test_r = blend(names, results, val, test, weights, normalised)
        blends.append((label, weights, val_r, test_r))

    seeds = []
    if not args.quick:
        for seed in (1, 2, 3):
            scores = als(test, **results["ALS"].params, seed=seed)
            seeds.append(evaluate(scores, test))
    print_report(results, blends, seeds, time.perf_counter() - started)


def _fmt(params: dict) -> str:
    return (
        ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
        or "-"
    )


def print_report(results: dict[str, Result], blends: list, seeds: list, elapsed: float) -> None:
    print("## Single methods (hyper-parameters chosen on validation, measured once on test)\n")
    print(
        "| method | best config (validation) | val NDCG@10 | NDCG@10 | Recall@10 | Precision@10 "
        "| NDCG@20 | Recall@20 | best test NDCG@10 over the sweep |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results.values():
        t = r.test
        oracle = f"{r.oracle_ndcg:.4f}" if r.oracle_ndcg is not None else "-"
        print(
            f"| {r.method} | {_fmt(r.params)} | {r.val['ndcg@10']:.4f} | {t['ndcg@10']:.4f} "
            f"| {t['recall@10']:.4f} | {t['precision@10']:.4f} | {t['ndcg@20']:.4f} "
            f"| {t['recall@20']:.4f} | {oracle} |"
        )
    print("\n## Blends (per-user min-max scores, weights by coordinate ascent on validation)\n")
    print(
        "| blend | weights | val NDCG@10 | NDCG@10 | Recall@10 | Precision@10 | NDCG@20 "
        "| Recall@20 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for label, weights, v, t in blends:
        shown = ", ".join(f"{k} {w:g}" for k, w in weights.items() if w)
        print(
            f"| {label} | {shown} | {v['ndcg@10']:.4f} | {t['ndcg@10']:.4f} | {t['recall@10']:.4f} "
            f"| {t['precision@10']:.4f} | {t['ndcg@20']:.4f} | {t['recall@20']:.4f} |"
        )
    if seeds:
        ndcg = np.array([s["ndcg@10"] for s in seeds])
        recall = np.array([s["recall@10"] for s in seeds])
        print(
            f"\nALS best config over seeds 1-3: NDCG@10 {ndcg.mean():.4f} ± {ndcg.std():.4f}, "
            f"Recall@10 {recall.mean():.4f} ± {recall.std():.4f}"
        )
    print(f"\nTotal time {elapsed / 60:.1f} min.")


if __name__ == "__main__":
    main()
