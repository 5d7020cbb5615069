"""The hybrid: candidate sources, a learned ranker, business rules and reasons.

Stage 1 — candidates: the union of every source's top ``n_candidates`` for the person.
Stage 2 — a gradient-boosted ranker (scikit-learn) over each candidate's features: every
source's score and rank plus :mod:`recommender.features`. The ranker is trained on a later
window than the sources were fitted on — sources are fitted on data before ``T - window``,
the ranker learns which of their candidates were bought in ``[T - window, T)`` — so it
learns how to combine them without leakage; then the sources are refitted on everything
before ``T`` for serving. A dataset with a fixed split and no time order (an imported one)
holds out a random share of each person's training interactions instead of a window.
"""

from __future__ import annotations

import functools
import threading
import weakref

import numpy as np
import pandas as pd
import scipy.sparse as sp
import treelite
import treelite.gtil
import treelite.sklearn
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.metaestimators import _BaseComposition
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import ThreadpoolController, threadpool_limits

from recommender.base import Reason, Recommender, sparse_pairs, sparse_top_n
from recommender.data import TrainingData, restrict, take_rows
from recommender.features import PAIR_FEATURES, FeatureContext, pair_values
from recommender.live import LiveUpdatesMixin

REASON_ORDER = (
    "friends_purchased",
    "kol_pick",
    "post_match",
    "friends_engaged",
    "friends_posted",
    "similar_to_purchased",
    "popular_in_your_category",
    "collaborative",
    "trending_in_segment",
    "trending",
)


def default_sources() -> list[tuple[str, Recommender]]:
    """Content, social, collaborative and popularity sources with their defaults."""
    from recommender.category import CategorySource
    from recommender.collaborative import ALSSource
    from recommender.content import ContentSource
    from recommender.popularity import PopularitySource
    from recommender.social import SocialSource

    return [
        ("content", ContentSource()),
        ("social", SocialSource()),
        ("collaborative", ALSSource()),
        ("category", CategorySource()),
        ("popularity", PopularitySource()),
    ]


class HybridRecommender(LiveUpdatesMixin, _BaseComposition, Recommender):
    """Candidate sources combined by a learned ranker, with business rules and reasons.

    Parameters
    ----------
    sources : list of (str, Recommender), optional
        Named candidate sources; default :func:`default_sources`. Parameters of a source
        are ``<name>__<param>`` in ``get_params``.
    ranker : classifier, optional
        Scikit-learn classifier with ``predict_proba``; default gradient-boosted trees.
        ``"none"`` ranks by the sum of the sources' normalised scores (no learning).
    n_candidates : int, default=20
        Candidates taken from each source per person. NDCG@10 / Recall@10 by value
        (2026-12-03): `medium` 10: 0.1454 / 0.2302, 15: 0.1471 / 0.2337, 20: 0.1480 /
        0.2356, 30: 0.1476 / 0.2353, 50: 0.1480 / 0.2358; LastFM (SocialLGN split) 10:
        0.2680 / 0.2132, 20: 0.2671 / 0.2099, 50: 0.2632 / 0.2069. 20 ranks as well as 50
        at a third less ranking time in batch.
    ranker_window_days : float, default=7.0
        Length of the window the ranker learns from (temporal data).
    ranker_holdout : float, default=0.2
        Share of each person's training interactions held out for the ranker when the data
        has no time order (a fixed split).
    max_train_users : int, default=10000
        People sampled to train the ranker.
    negatives_per_user : int, default=40
        Non-purchased candidates sampled per person for the ranker.
    max_per_category : int or None, default=None
        Diversity rule: at most this many products of one category in a list.
    max_per_kol : int or None, default=2
        At most this many products in a list endorsed by one KOL.
    intent_slots : int, default=1
        Fresh intent: the best matches of what a person posted in the last ``intent_days``
        take the first slots of their list (a new post changes the list at once, even
        before the ranker has seen many such posts).
    intent_days : float, default=3.0
    random_state : int, default=0
    """

    source_name = "hybrid"

    def __init__(
        self,
        *,
        sources: list[tuple[str, Recommender]] | None = None,
        ranker=None,
        n_candidates: int = 20,
        ranker_window_days: float = 7.0,
        ranker_holdout: float = 0.2,
        max_train_users: int = 10_000,
        negatives_per_user: int = 40,
        max_per_category: int | None = None,
        max_per_kol: int | None = 2,
        intent_slots: int = 1,
        intent_days: float = 3.0,
        random_state: int = 0,
    ) -> None:
        self.sources = sources
        self.ranker = ranker
        self.n_candidates = n_candidates
        self.ranker_window_days = ranker_window_days
        self.ranker_holdout = ranker_holdout
        self.max_train_users = max_train_users
        self.negatives_per_user = negatives_per_user
        self.max_per_category = max_per_category
        self.max_per_kol = max_per_kol
        self.intent_slots = intent_slots
        self.intent_days = intent_days
        self.random_state = random_state

    # ------------------------------------------------------------ params
    def get_params(self, deep: bool = True) -> dict:
        if self.sources is None:  # the defaults are built in fit; nothing nested to show
            return super().get_params(deep=False)
        return self._get_params("sources", deep=deep)

    def set_params(self, **params) -> HybridRecommender:
        if self.sources is None and any("__" in k for k in params):
            self.sources = default_sources()
        self._set_params("sources", **params)
        return self

    def _named_sources(self) -> list[tuple[str, Recommender]]:
        sources = default_sources() if self.sources is None else list(self.sources)
        if not sources:
            raise ValueError("sources == [], must name at least one source.")
        names = [n for n, _ in sources]
        self._validate_names(names)
        return sources

    # --------------------------------------------------------------- fit
    def _fit(self, data: TrainingData) -> None:
        if self.n_candidates < 1:
            raise ValueError(f"n_candidates == {self.n_candidates}, must be >= 1.")
        if not 0 < self.ranker_holdout < 1:
            raise ValueError(f"ranker_holdout == {self.ranker_holdout}, must be in (0, 1).")
        named = self._named_sources()
        self.source_names_ = [n for n, _ in named]
        warm: list[Recommender | None] = [None] * len(named)
        if isinstance(self.ranker, str) and self.ranker == "none":
            self.ranker_ = None
        else:
            warm = self._fit_ranker(data, named)
        # The stage-1 data, sources and training rows are gone by now (memory on `large`);
        # a source that can warm-start from its stage-1 fit does (ALS: fewer sweeps).
        self.sources_ = [
            (w if w is not None else clone(s)).fit(data)
            for w, (_, s) in zip(warm, named, strict=True)
        ]
        self.context_ = FeatureContext.build(data)
        self.feature_names_ = self._feature_names()

    def _fit_ranker(self, data: TrainingData, named) -> list[Recommender | None]:
        """Fit the ranker on the window after the stage-1 sources' data; return, for each
        source that can warm-start its final fit, its ``warm_start()`` copy (else ``None``)."""
        stage1, labels = self._ranker_split(data)
        stage1_sources = [clone(s).fit(stage1) for _, s in named]
        context = FeatureContext.build(stage1)
        X, y = self._training_rows(stage1, stage1_sources, context, labels)
        # A feature missing everywhere (no prices in an import) cannot be binned.
        X[:, np.isnan(X).all(axis=0)] = 0.0
        ranker = (
            clone(self.ranker) if self.ranker is not None else _default_ranker(self.random_state)
        )
        if y.sum() == 0 or y.sum() == len(y):
            self.ranker_ = None  # nothing to learn from: fall back to score fusion
        else:
            # One OpenMP thread: the ranker's trees are small, and threads that spin while
            # the other core is busy (a second worker, the data loader) cost far more than
            # they save.
            with threadpool_limits(1, "openmp"):
                self.ranker_ = ranker.fit(X, y)
        return [s.warm_start() if hasattr(s, "warm_start") else None for s in stage1_sources]

    def _rebuild(self, data: TrainingData) -> None:
        """After loading: sources and ranker are restored; rebuild the feature look-ups."""
        self.context_ = FeatureContext.build(data)
        self.feature_names_ = self._feature_names()

    def _ranker_split(self, data: TrainingData) -> tuple[TrainingData, sp.csr_array]:
        """Data the stage-1 sources see, and the purchases the ranker must predict."""
        rng = np.random.default_rng(self.random_state)
        inter = data.interactions
        if data.until is not None:
            start = data.until - pd.Timedelta(days=self.ranker_window_days)
            stage1 = TrainingData.from_dataset(
                data.dataset, until=start, event_weights=data.event_weights
            )
            window = inter[(inter["ts"] >= start) & (inter["event"].astype(str) == "purchase")]
        else:
            held = rng.random(len(inter)) < self.ranker_holdout
            stage1 = restrict(data, ~held)
            window = inter[held]
        u, i = window["u"].to_numpy(), window["i"].to_numpy()
        labels = sp.csr_array(
            (np.ones(len(u), np.float32), (u, i)), shape=(data.n_users, data.n_items)
        )
        labels.sum_duplicates()
        labels = sp.csr_array(labels - labels.multiply(stage1.purchased > 0))
        labels.eliminate_zeros()
        return stage1, labels

    def _training_rows(self, stage1, sources, context, labels):
        rng = np.random.default_rng(self.random_state)
        users = np.flatnonzero(np.diff(labels.indptr) > 0)
        if len(users) > self.max_train_users:
            users = np.sort(rng.choice(users, self.max_train_users, replace=False))
        X_parts, y_parts = [], []
        step = 512
        for start in range(0, len(users), step):
            block = users[start : start + step]
            items, feats = self._candidate_features(block, sources, context, stage1, None, None)
            rows = np.repeat(np.arange(len(block)), items.shape[1])
            flat_items = items.ravel()
            valid = flat_items >= 0
            hit = pair_values(labels, block[rows[valid]], flat_items[valid]) > 0
            feats = feats.reshape(-1, feats.shape[-1])[valid]
            row_of = rows[valid]
            # Keep users who bought a candidate; sample their negatives.
            has_pos = np.bincount(row_of[hit], minlength=len(block)) > 0
            keep = has_pos[row_of] & (hit | (rng.random(len(hit)) < self._negative_rate(items)))
            X_parts.append(feats[keep])
            y_parts.append(hit[keep])
        if not X_parts:
            return np.zeros((0, len(self._feature_names(len(sources))))), np.zeros(0, dtype=bool)
        return np.vstack(X_parts), np.concatenate(y_parts)

    def _negative_rate(self, items: np.ndarray) -> float:
        per_user = max(int((items >= 0).sum(axis=1).mean()), 1)
        return min(1.0, self.negatives_per_user / per_user)

    # ---------------------------------------------------------- ranking
    def _feature_names(self, n_sources: int | None = None) -> list[str]:
        names = self.source_names_ if n_sources is None else [f"s{j}" for j in range(n_sources)]
        out = []
        for n in names:
            out += [f"{n}_score", f"{n}_rank", f"{n}_present"]
        return out + list(PAIR_FEATURES)

    def _candidate_features(self, users, sources, context, data, exclude, blocked):
        """Union of the sources' candidates and the features of every (user, candidate)."""
        # Each source's own top-n (sources score only what can make their lists) and its
        # scores of the union's items: no dense users x items rows.
        n = self.n_candidates
        per_source_top, per_source_max = [], []
        ex = sp.csr_array(exclude if exclude is not None else data.rows("purchased", users))
        sparse = []
        for source in sources:
            # A source with sparse scores computes them once for its list and the pairs.
            scores = source._sparse_scores(users) if hasattr(source, "_sparse_scores") else None
            if scores is None:
                top, top_scores = source.candidates(users, n, exclude=ex, blocked=blocked)
            else:
                top, top_scores = sparse_top_n(scores, n, exclude=ex, blocked=blocked)
            sparse.append(scores)
            per_source_top.append(top)
            best = top_scores[:, 0] if top_scores.shape[1] else np.full(len(users), -np.inf)
            # The largest finite score of the masked row, 1 when there is none.
            per_source_max.append(np.where(np.isfinite(best), best, 1.0))
        union = _row_union(np.concatenate(per_source_top, axis=1))
        feats = []
        for source, scores, top, finite_max in zip(
            sources, sparse, per_source_top, per_source_max, strict=True
        ):
            s = sparse_pairs(scores, union) if scores is not None else None
            s = source._score_pairs(users, union) if s is None else s
            present = np.isfinite(s) & (s > -np.inf)
            s_norm = np.where(present, s / np.maximum(np.abs(finite_max)[:, None], 1e-9), np.nan)
            rank = _rank_in(top, union, n)
            in_top = rank <= n
            feats += [
                s_norm,
                np.where(in_top, rank, n + 1).astype(np.float32),
                in_top.astype(np.float32),
            ]
        valid = union >= 0
        pair = np.full((*union.shape, len(PAIR_FEATURES)), np.nan, dtype=np.float32)
        r_idx, c_idx = np.nonzero(valid)
        pair[r_idx, c_idx] = context.pair_features(users[r_idx], union[r_idx, c_idx])
        X = np.concatenate([np.stack(feats, axis=-1), pair], axis=-1).astype(np.float32)
        X[~np.isfinite(X)] = np.nan  # the trees treat NaN as "missing"; inf breaks binning
        return union, X

    def candidates(self, users, n, *, exclude=None, blocked=None):
        items, scores, _ = self._lists(users, n, exclude=exclude, blocked=blocked)
        return items, scores

    def _lists(self, users, n, *, exclude=None, blocked=None):
        """Top-``n`` per user index, their scores, and which sources nominated each item
        (bit ``j``: source ``j`` had it in its top ``n_candidates``; ``-1``: not a
        candidate, e.g. a fresh-intent pick), so explaining needs no second pass."""
        check_is_fitted(self, "sources_")
        users = np.asarray(users, dtype=np.int64)
        out_items = np.full((len(users), n), -1, dtype=np.int64)
        out_scores = np.full((len(users), n), -np.inf, dtype=np.float32)
        out_nominated = np.full((len(users), n), -1, dtype=np.int64)
        step = 256
        # One thread per library: small products on two busy cores cost more in thread
        # hand-offs than they save (measured: 20x slower per person on a loaded machine).
        with _limits().limit(limits=1):
            for start in range(0, len(users), step):
                block = users[start : start + step]
                ex = exclude[start : start + len(block)] if exclude is not None else None
                union, X = self._candidate_features(
                    block, self.sources_, self.context_, self.data_, ex, blocked
                )
                score = self._rank_scores(X)
                score[union < 0] = -np.inf
                order = np.argsort(-score, axis=1, kind="stable")
                ranked = np.take_along_axis(union, order, axis=1)
                ranked_scores = np.take_along_axis(score, order, axis=1)
                ranked, ranked_scores = self._intent_first(
                    block, ranked, ranked_scores, ex, blocked
                )
                items, scores = self._apply_rules(block, ranked, ranked_scores, n)
                rows = slice(start, start + len(block))
                out_items[rows], out_scores[rows] = items, scores
                out_nominated[rows] = _nominations(union, X, len(self.sources_), items)
        return out_items, out_scores, out_nominated

    def _intent_first(self, users, ranked, scores, exclude, blocked):
        """Move the best matches of each person's fresh posts to the front of their list."""
        content = self._source("content")
        if content is None or self.intent_slots <= 0:
            return ranked, scores
        excl = sp.csr_array(exclude if exclude is not None else self.data_.rows("purchased", users))
        for row, user in enumerate(users):
            items, _ = content.recent_matches(int(user), self.intent_days, 4 * self.intent_slots)
            if len(items) == 0:
                continue
            banned = set(excl.indices[excl.indptr[row] : excl.indptr[row + 1]].tolist())
            picks = [
                int(i)
                for i in items
                if int(i) not in banned and (blocked is None or not blocked[i])
            ][: self.intent_slots]
            if not picks:
                continue
            rest = [int(i) for i in ranked[row] if i >= 0 and int(i) not in picks]
            top = float(scores[row][0]) if np.isfinite(scores[row][0]) else 0.0
            new_scores = [top + 1e-3 * (len(picks) - j) for j in range(len(picks))]
            rest_scores = [
                float(s)
                for i, s in zip(ranked[row], scores[row], strict=True)
                if i >= 0 and int(i) not in picks
            ]
            width = ranked.shape[1]
            merged = (picks + rest)[:width]
            merged_scores = (new_scores + rest_scores)[:width]
            ranked[row, : len(merged)] = merged
            scores[row, : len(merged)] = merged_scores
        return ranked, scores

    def _rank_scores(self, X: np.ndarray) -> np.ndarray:
        shape = X.shape[:2]
        flat = X.reshape(-1, X.shape[-1])
        if self.ranker_ is None:
            n_src = len(self.sources_)
            fused = np.nansum(flat[:, : 3 * n_src : 3], axis=1)
            return fused.reshape(shape).astype(np.float32)
        runtime = _tree_runtime(self.ranker_) if len(flat) <= TREE_RUNTIME_MAX_ROWS else None
        if runtime is not None:
            # The same probabilities as predict_proba (tested), without scikit-learn's fixed
            # cost of a Python call per tree: 0.66 vs 1.07 ms CPU for 70 rows, 135 trees.
            proba = treelite.gtil.predict(runtime, flat.astype(np.float64), nthread=1)
            proba = proba.reshape(len(flat), -1)[:, -1]
        else:
            with _limits().limit(limits=1, user_api="openmp"):
                proba = self.ranker_.predict_proba(flat)[:, 1]
        return proba.reshape(shape).astype(np.float32)

    def _apply_rules(self, users, ranked, scores, n):
        """Diversity (a cap per category) and a cap per KOL, greedily down each list."""
        if self.max_per_category is None and self.max_per_kol is None:
            return ranked[:, :n], scores[:, :n]
        items_out = np.full((len(users), n), -1, dtype=np.int64)
        scores_out = np.full((len(users), n), -np.inf, dtype=np.float32)
        leaf = self.context_.item_leaf
        kol_at = self._kols_of(users, ranked) if self.max_per_kol is not None else None
        for row in range(len(users)):
            per_cat: dict[int, int] = {}
            per_kol: dict[int, int] = {}
            j = 0
            for col, (item, score) in enumerate(zip(ranked[row], scores[row], strict=True)):
                if item < 0 or not np.isfinite(score) or j == n:
                    break
                cat = int(leaf[item])
                if (
                    self.max_per_category is not None
                    and per_cat.get(cat, 0) >= self.max_per_category
                ):
                    continue
                kol = int(kol_at[row, col]) if kol_at is not None else -1
                if kol >= 0 and per_kol.get(kol, 0) >= self.max_per_kol:
                    continue
                per_cat[cat] = per_cat.get(cat, 0) + 1
                if kol >= 0:
                    per_kol[kol] = per_kol.get(kol, 0) + 1
                items_out[row, j], scores_out[row, j] = item, score
                j += 1
        return items_out, scores_out

    def _kols_of(self, users: np.ndarray, ranked: np.ndarray) -> np.ndarray:
        """For each ranked item, the followed KOL endorsing it (bought it visibly or linked
        it in a post; the first in the person's follow row), ``-1`` if none."""
        out = np.full(ranked.shape, -1, dtype=np.int64)
        follows = take_rows(self.context_.kol_follows, users)
        if follows.nnz == 0:
            return out
        endorsed = take_rows(self.context_.endorsed, follows.indices)  # one row per (person, KOL)
        owner = np.repeat(np.arange(follows.nnz), np.diff(endorsed.indptr))
        person = np.repeat(np.arange(len(users)), np.diff(follows.indptr))[owner]
        big = np.int64(max(self.data_.n_items, 1) + 1)
        keys = person * big + endorsed.indices
        wanted = np.arange(len(users), dtype=np.int64)[:, None] * big + ranked
        hit = np.isin(keys, wanted[ranked >= 0])
        keys, owner = keys[hit], owner[hit]
        order = np.lexsort((owner, keys))  # per (person, item): the first KOL first
        keys, owner = keys[order], owner[order]
        first = np.r_[True, keys[1:] != keys[:-1]] if len(keys) else np.zeros(0, bool)
        keys, kol = keys[first], follows.indices[owner[first]]
        if len(keys):
            pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
            found = (keys[pos] == wanted) & (ranked >= 0)
            out[found] = kol[pos[found]]
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        """Full-catalogue scores (for evaluation): ranked candidates get the ranker's
        probability, everything else ``-inf``."""
        items, scores = self.candidates(users, self.n_candidates)
        out = np.full((len(users), self.data_.n_items), -np.inf, dtype=np.float32)
        rows = np.repeat(np.arange(len(users)), items.shape[1]).reshape(items.shape)
        ok = items >= 0
        out[rows[ok], items[ok]] = scores[ok]
        return out

    # ---------------------------------------------------------- reasons
    def _explain_lists(self, users, items, nominated) -> list[list[list[Reason]]]:
        """Reasons of whole lists from the nominations :meth:`_lists` recorded."""
        out = []
        with _limits().limit(limits=1):
            for row, user in enumerate(users):
                valid = items[row] >= 0
                out.append(self._explain(int(user), items[row][valid], nominated[row][valid]))
        return out

    def _explain(self, user: int, items: np.ndarray, nominated=None) -> list[list[Reason]]:
        """Each source explains the items it nominated (its top ``n_candidates`` without
        the person's purchases). ``nominated`` (bit masks of :meth:`_lists`; ``-1``:
        unknown) saves recomputing the sources' lists; unknown items are looked up."""
        items = np.asarray(items, dtype=np.int64)
        per_item: list[list[Reason]] = [[] for _ in items]
        masks = np.full(len(items), -1, np.int64) if nominated is None else np.array(nominated)
        if (masks < 0).any():
            masks[masks < 0] = self._nominations_of(user, items[masks < 0])
        for j_source, (name, source) in enumerate(
            zip(self.source_names_, self.sources_, strict=True)
        ):
            mine = np.flatnonzero((masks >> j_source) & 1).tolist()
            if not mine:
                continue
            reasons = source._explain(user, np.asarray([items[j] for j in mine]))
            for j, why in zip(mine, reasons, strict=True):
                for reason in why:
                    reason.source = reason.source or name
                per_item[j].extend(why)
        rank = {t: r for r, t in enumerate(REASON_ORDER)}
        for why in per_item:
            why.sort(key=lambda r: rank.get(r.type, len(rank)))
            if not why:
                why.append(Reason("ranked", "Picked for you by the ranker", {}, self.source_name))
        return per_item

    def _nominations_of(self, user: int, items: np.ndarray) -> np.ndarray:
        """Bit masks of the sources whose top ``n_candidates`` hold each item (the slow
        path: every source ranks for the person)."""
        excl = self.data_.rows("purchased", [user])
        masks = np.zeros(len(items), dtype=np.int64)
        for j, source in enumerate(self.sources_):
            top, _ = source.candidates(np.array([user]), self.n_candidates, exclude=excl)
            masks |= np.isin(items, top[0][top[0] >= 0]).astype(np.int64) << j
        return masks


def _default_ranker(random_state: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=200,
        learning_rate=0.08,
        max_leaf_nodes=31,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=20,
        random_state=random_state,
    )


TREE_RUNTIME_MAX_ROWS = 160
"""Up to this many candidate rows the ranker's trees run in Treelite's runtime; beyond it,
scikit-learn's own prediction (a fixed cost per tree, then less per row) is the faster."""


def _tree_runtime(ranker) -> treelite.Model | None:
    """The ranker's trees as a Treelite model, converted once per fitted ranker; ``None``
    for a ranker Treelite cannot take (any other estimator than scikit-learn's
    gradient-boosted trees, e.g. one passed as ``ranker=``)."""
    if type(ranker) is not HistGradientBoostingClassifier or ranker.n_trees_per_iteration_ != 1:
        return None
    # Keyed by the fitted estimator (a refit clones a new one), beside it rather than on
    # it, so saving the ranker with skops never meets a Treelite object.
    with _TREE_RUNTIMES_LOCK:
        runtime = _TREE_RUNTIMES.get(ranker)
        if runtime is None:
            runtime = _TREE_RUNTIMES[ranker] = treelite.sklearn.import_model(ranker)
    return runtime


_TREE_RUNTIMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TREE_RUNTIMES_LOCK = threading.Lock()


@functools.cache
def _limits() -> ThreadpoolController:
    """The process's thread pools, found once: ``threadpool_limits`` looks for them on
    every call, which costs milliseconds."""
    return ThreadpoolController()


def _nominations(union: np.ndarray, X: np.ndarray, n_sources: int, items: np.ndarray):
    """Bit mask of the sources that nominated each of ``items`` (from the ``present``
    features of the union; ``-1`` for items outside the union)."""
    present = X[:, :, 2 : 3 * n_sources : 3] == 1
    masks = (present.astype(np.int64) << np.arange(n_sources)).sum(axis=-1)
    n_rows, width = union.shape
    big = np.int64(max(int(union.max(initial=0)), int(items.max(initial=0)), 0) + 2)
    keys = np.arange(n_rows, dtype=np.int64)[:, None] * big + union
    order = np.argsort(keys, axis=None)
    flat_keys, flat_masks = keys.ravel()[order], masks.ravel()[order]
    want = np.arange(len(items), dtype=np.int64)[:, None] * big + items
    pos = np.minimum(np.searchsorted(flat_keys, want), len(flat_keys) - 1)
    hit = (flat_keys[pos] == want) & (items >= 0)
    return np.where(hit, flat_masks[pos], -1)


def _row_union(items: np.ndarray) -> np.ndarray:
    """Unique non-negative items of each row, first occurrence first, -1 padded."""
    n_rows, width = items.shape
    if n_rows == 0 or width == 0:
        return np.full((n_rows, 1), -1, dtype=np.int64)
    big = np.int64(max(int(items.max()), 0) + 2)
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), width)
    flat = items.astype(np.int64).ravel()
    keys = rows * big + (flat + 1)  # -1 pads become 0 within each row
    order = np.argsort(keys, kind="stable")  # first occurrence first among equals
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[order][1:] != keys[order][:-1]
    keep = np.zeros(len(keys), dtype=bool)
    keep[order] = first
    keep &= flat >= 0
    keep = keep.reshape(n_rows, width)
    counts = keep.sum(axis=1)
    out_width = max(int(counts.max()), 1)
    out = np.full((n_rows, out_width), -1, dtype=np.int64)
    position = np.cumsum(keep, axis=1) - 1
    r, c = np.nonzero(keep)
    out[r, position[r, c]] = items[r, c]
    return out


def _rank_in(top: np.ndarray, union: np.ndarray, n: int) -> np.ndarray:
    """1-based rank of each union item in ``top`` (``n + 1`` when absent)."""
    n_rows = union.shape[0]
    big = np.int64(max(int(top.max(initial=0)), int(union.max(initial=0)), 0) + 2)
    t_rows = np.repeat(np.arange(n_rows, dtype=np.int64), top.shape[1])
    t_flat = top.astype(np.int64).ravel()
    valid = t_flat >= 0
    t_keys = t_rows[valid] * big + t_flat[valid]
    t_rank = np.tile(np.arange(1, top.shape[1] + 1), n_rows)[valid]
    order = np.argsort(t_keys, kind="stable")
    t_keys, t_rank = t_keys[order], t_rank[order]
    u_rows = np.repeat(np.arange(n_rows, dtype=np.int64), union.shape[1])
    u_keys = u_rows * big + union.astype(np.int64).ravel()
    rank = np.full(u_keys.shape, n + 1, dtype=np.int64)
    if len(t_keys):
        pos = np.minimum(np.searchsorted(t_keys, u_keys), len(t_keys) - 1)
        hit = (t_keys[pos] == u_keys) & (union.ravel() >= 0)
        rank[hit] = t_rank[pos[hit]]
    return rank.reshape(union.shape)
