"""The fast inference paths equal the slow ones they replace.

Every source's ``candidates`` (pruned ALS scan, sparse rows, per-segment rankings) returns
exactly what the base class's dense path returns; ``_score_pairs`` equals ``_score`` at
those pairs; the hybrid's features and reasons do not depend on which path computed them.
"""

from __future__ import annotations

import numpy as np
import pytest

from recommender.base import Recommender, top_n
from recommender.hybrid import HybridRecommender, default_sources

from .contract import CUTOFF


@pytest.fixture(scope="module")
def fitted_sources(tiny_dataset):
    return [(name, source.fit(tiny_dataset, until=CUTOFF)) for name, source in default_sources()]


@pytest.fixture(scope="module")
def hybrid(tiny_dataset):
    return HybridRecommender().fit(tiny_dataset, until=CUTOFF)


def test_top_n_breaks_ties_by_lower_index():
    scores = np.array([[1.0, 2.0, 2.0, 2.0, 0.5, 2.0]], dtype=np.float32)
    items, values = top_n(scores, 3)
    assert items.tolist() == [[1, 2, 3]]
    assert values.tolist() == [[2.0, 2.0, 2.0]]
    items, _ = top_n(np.array([[-np.inf, 1.0, -np.inf]], dtype=np.float32), 2)
    assert items.tolist() == [[1, -1]]


@pytest.mark.parametrize("n", [10, 100, 2000])
@pytest.mark.parametrize("filtered", [False, True])
def test_candidates_equal_the_dense_path(fitted_sources, n, filtered):
    rng = np.random.default_rng(n)
    for name, source in fitted_sources:
        users = np.arange(source.data_.n_users)
        exclude = source.data_.purchased[users]
        blocked = rng.random(source.data_.n_items) < 0.3 if filtered else None
        dense = Recommender.candidates(source, users, n, exclude=exclude, blocked=blocked)
        fast = source.candidates(users, n, exclude=exclude, blocked=blocked)
        np.testing.assert_array_equal(fast[0], dense[0], err_msg=name)
        np.testing.assert_allclose(fast[1], dense[1], rtol=1e-5, err_msg=name)
        # One person per call (a request; content accumulates one person's scores rather
        # than its block product). Down to rank 100: deeper, ALS's matrix-vector and matrix-matrix
        # products round a few near-equal scores differently.
        if n > 100:
            continue
        for user in rng.choice(users, 25, replace=False):
            one = source.candidates(np.array([user]), n, exclude=exclude[[user]], blocked=blocked)
            np.testing.assert_array_equal(one[0][0], dense[0][user], err_msg=name)


def test_pair_scores_equal_the_dense_scores(fitted_sources):
    rng = np.random.default_rng(0)
    for name, source in fitted_sources:
        users = np.arange(source.data_.n_users)
        items = rng.integers(0, source.data_.n_items, (len(users), 30))
        items[rng.random(items.shape) < 0.1] = -1
        fast = source._score_pairs(users, items)
        dense = Recommender._score_pairs(source, users, items)
        np.testing.assert_allclose(fast, dense, rtol=1e-5, atol=1e-6, err_msg=name)


class _Dense(Recommender):
    """A fitted source seen only through ``_score``: the base class's dense paths."""

    def __init__(self, inner=None) -> None:
        self.inner = inner

    def _score(self, users):
        return self.inner._score(users)


def test_hybrid_features_do_not_depend_on_the_path(hybrid):
    users = np.arange(hybrid.data_.n_users)
    blocked = np.random.default_rng(1).random(hybrid.data_.n_items) < 0.3
    dense = []
    for source in hybrid.sources_:
        wrapper = _Dense(source)
        wrapper.data_ = source.data_
        dense.append(wrapper)
    for mask in (None, blocked):
        args = (hybrid.context_, hybrid.data_, None, mask)
        union, X = hybrid._candidate_features(users, hybrid.sources_, *args)
        slow_union, slow_X = hybrid._candidate_features(users, dense, *args)
        np.testing.assert_array_equal(union, slow_union)
        valid = union >= 0
        np.testing.assert_allclose(X[valid], slow_X[valid], rtol=1e-5, atol=1e-6)


def test_reasons_from_recorded_nominations_equal_recomputed_ones(hybrid, tiny_dataset):
    users = tiny_dataset.users["user_id"].to_numpy()[:25]
    recs = hybrid.recommend(users, k=10)
    for user, group in recs.groupby("user_id", sort=False):
        u = int(hybrid.users_.lookup(user)[0])
        items = hybrid.items_.lookup(group["product_id"].to_numpy())
        slow = [[r.to_dict() for r in why] for why in hybrid._explain(u, items)]
        assert group["reasons"].tolist() == slow


def test_tree_runtime_equals_scikit_learn(hybrid, tiny_dataset, tmp_path, monkeypatch):
    """Treelite's runtime (a person's few candidate rows) gives predict_proba's lists and
    scores, and never reaches the saved ranker."""
    from recommender import hybrid as hybrid_module
    from recommender.persistence import load_model

    assert hybrid.ranker_ is not None
    assert hybrid_module._tree_runtime(hybrid.ranker_) is not None
    users = tiny_dataset.users["user_id"].to_numpy()[:40]
    fast = [hybrid.recommend([u], k=10) for u in users]
    monkeypatch.setattr(hybrid_module, "TREE_RUNTIME_MAX_ROWS", 0)
    slow = [hybrid.recommend([u], k=10) for u in users]
    for a, b in zip(fast, slow, strict=True):
        assert a["product_id"].tolist() == b["product_id"].tolist()
        np.testing.assert_allclose(a["score"], b["score"], rtol=1e-6)
        assert a["reasons"].tolist() == b["reasons"].tolist()
    hybrid.save(tmp_path / "model")  # skops saves the ranker, not the runtime beside it
    loaded = load_model(tmp_path / "model", tiny_dataset)
    monkeypatch.undo()  # the runtime again, for the reloaded ranker
    again = loaded.recommend([users[0]], k=10)
    assert again["product_id"].tolist() == fast[0]["product_id"].tolist()


def test_tree_runtime_skips_other_rankers():
    from sklearn.linear_model import LogisticRegression

    from recommender.hybrid import _tree_runtime

    assert _tree_runtime(LogisticRegression()) is None


@pytest.mark.parametrize("filtered", [False, True])
def test_content_floor_keeps_the_exact_lists(fitted_sources, monkeypatch, filtered):
    """Content's floor (the n-th best among the heaviest term's products) drops only
    products that cannot make the list: forced on for everyone, the lists stay exact."""
    from recommender import content as content_module

    source = dict(fitted_sources)["content"]
    users = np.arange(source.data_.n_users)
    exclude = source.data_.purchased[users]
    rng = np.random.default_rng(3)
    blocked = rng.random(source.data_.n_items) < 0.3 if filtered else None
    dense = Recommender.candidates(source, users, 10, exclude=exclude, blocked=blocked)
    monkeypatch.setattr(content_module, "FLOOR_MIN_POSTINGS", 0)
    kept = source._accumulate(users, n=10, exclude=exclude, blocked=blocked)
    assert kept.nnz < source._accumulate(users).nnz  # the floor dropped something
    for batch in (users, *[users[[u]] for u in rng.choice(users, 40, replace=False)]):
        fast = source.candidates(batch, 10, exclude=exclude[batch], blocked=blocked)
        np.testing.assert_array_equal(fast[0], dense[0][batch])
        np.testing.assert_array_equal(fast[1], dense[1][batch])


@pytest.mark.parametrize("filtered", [False, True])
def test_pruned_als_scan_reads_zero_factors_off_directly(fitted_sources, filtered):
    """A person without events has a zero factor: every score ties at 0 and the list is the
    first unmasked items by index, as on the dense path."""
    import copy

    source = copy.deepcopy(dict(fitted_sources)["collaborative"])
    users = np.arange(source.data_.n_users)
    source.user_factors_[users[::3]] = 0.0  # a third of the people without a factor
    exclude = source.data_.purchased[users]
    blocked = np.random.default_rng(6).random(source.data_.n_items) < 0.3 if filtered else None
    dense = Recommender.candidates(source, users, 10, exclude=exclude, blocked=blocked)
    fast = source.candidates(users, 10, exclude=exclude, blocked=blocked)
    np.testing.assert_array_equal(fast[0], dense[0])
    np.testing.assert_allclose(fast[1], dense[1])
    assert (fast[0][::3] >= 0).all() and (fast[1][::3] == 0).all()
    for user in (0, 3, 4):
        one = source.candidates(users[[user]], 10, exclude=exclude[[user]], blocked=blocked)
        np.testing.assert_array_equal(one[0][0], dense[0][user])
