"""Collaborative (implicit ALS) source: the contract, live fold-in, validation."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.collaborative import ALSSource
from tests.recommender.contract import CUTOFF, RecommenderContract


class TestALSContract(RecommenderContract):
    def make_model(self) -> ALSSource:
        return ALSSource(factors=16, iterations=5, random_state=0, num_threads=1)


def test_reason_never_names_the_item_itself(tiny_dataset) -> None:
    model = ALSSource(factors=16, iterations=5, num_threads=1).fit(tiny_dataset, until=CUTOFF)
    recs = model.recommend(tiny_dataset.users["user_id"].to_numpy()[:20], k=10)
    for product, reasons in zip(recs["product_id"], recs["reasons"], strict=True):
        for reason in reasons:
            assert reason["evidence"].get("product_id") != product


def test_fold_in_changes_the_users_factors(tiny_dataset) -> None:
    model = ALSSource(factors=16, iterations=5, num_threads=1).fit(tiny_dataset, until=CUTOFF)
    before = model.user_factors_[0].copy()
    model.add_events(0, [5, 6, 7], [10.0, 10.0, 10.0])
    assert not (model.user_factors_[0] == before).all()


def test_deferred_fold_in_equals_one_re_solve_per_event(tiny_dataset) -> None:
    """Many events with ``refresh=False`` and one batched ``refresh_users`` leave every
    person with the factors a re-solve after each event would (the service's group
    apply)."""
    one = ALSSource(factors=16, iterations=5, num_threads=1).fit(tiny_dataset, until=CUTOFF)
    batched = ALSSource(factors=16, iterations=5, num_threads=1).fit(tiny_dataset, until=CUTOFF)
    users = one.users_.raw(np.array([0, 3, 0, 7, 3]))
    items = one.items_.raw(np.array([5, 6, 7, 8, 9]))
    for user, item in zip(users, items, strict=True):
        one.add_events(user, [item], [10.0])
        batched.add_events(user, [item], [10.0], refresh=False)
    untouched = batched.user_factors_.copy()
    assert not np.allclose(untouched[[0, 3, 7]], one.user_factors_[[0, 3, 7]])
    batched.refresh_users(users)
    np.testing.assert_allclose(batched.user_factors_, one.user_factors_, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("weighting", ["bm25", "log"])
def test_fold_in_weighs_a_row_as_the_fit_weighed_the_whole_matrix(tiny_dataset, weighting) -> None:
    """BM25 takes statistics from the whole matrix (item idf, mean row length): a lone
    person's row must be weighted with the fitted ones, or every confidence comes out
    negative and a live event pushes the person away from what they just bought."""
    model = ALSSource(factors=16, iterations=15, num_threads=1, weighting=weighting)
    model.fit(tiny_dataset, until=CUTOFF)
    users = np.arange(model.data_.n_users)
    rows = model._row_confidence(model.data_.rows("user_items", users))
    np.testing.assert_allclose(rows.toarray(), model.confidence_.toarray(), rtol=1e-5)

    u = int(np.argmax(np.diff(model.data_.user_items.indptr)))
    seen = set(model.data_.user_items[[u]].indices.tolist())
    scores = model.item_factors_ @ model.user_factors_[u]
    # Three well-known products (the longest factors) the person has not engaged with.
    by_norm = np.argsort(-np.linalg.norm(model.item_factors_, axis=1))
    fresh = [int(i) for i in by_norm if int(i) not in seen][:3]
    before = scores[fresh]
    model.add_events(
        model.users_.raw(np.array([u]))[0], model.items_.raw(np.array(fresh)), [8.0] * 3
    )
    conf = model._row_confidence(model.data_.rows("user_items", [u]))
    assert (conf.data > 0).all()
    after = model.item_factors_[fresh] @ model.user_factors_[u]
    assert np.isfinite(model.user_factors_[u]).all()
    assert (after > before).all()


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("factors", 0, "factors == 0, must be >= 1."),
        ("alpha", 0.0, "alpha == 0.0, must be > 0."),
        ("warm_iterations", 0, "warm_iterations == 0, must be >= 1."),
    ],
)
def test_rejects_bad_parameters(tiny_dataset, param, value, message) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        ALSSource(**{param: value}).fit(tiny_dataset, until=CUTOFF)


def test_refit_starts_from_the_earlier_factors(tiny_dataset) -> None:
    """A warm refit on later data stays close to the earlier solution, where a cold fit with
    the same few sweeps from another seed lands elsewhere, and it never touches the original."""
    early = ALSSource(factors=16, iterations=15, num_threads=1).fit(tiny_dataset, until=CUTOFF)
    kept = early.user_factors_.copy()
    warm = early.refit(tiny_dataset)
    assert (early.user_factors_ == kept).all()
    assert warm.user_factors_.shape == early.user_factors_.shape
    cold = ALSSource(factors=16, iterations=8, random_state=1, num_threads=1).fit(tiny_dataset)
    warm_gap = np.abs(warm.item_factors_ - early.item_factors_).mean()
    cold_gap = np.abs(cold.item_factors_ - early.item_factors_).mean()
    assert warm_gap < 0.5 * cold_gap


def test_a_private_persons_reasons_never_name_their_history(tiny_dataset) -> None:
    """ "Because you liked X" would show X to whoever reads the list: not for private people."""
    model = ALSSource(factors=16, iterations=5, num_threads=1).fit(tiny_dataset, until=CUTOFF)
    users = tiny_dataset.users
    private = users.loc[~users["share_purchases"], "user_id"].to_numpy()[:30]
    public = users.loc[users["share_purchases"], "user_id"].to_numpy()[:30]
    hidden = model.recommend(private, k=10)
    assert len(hidden) > 0
    assert all(r["type"] == "collaborative" for rs in hidden["reasons"] for r in rs)
    assert all(r["evidence"] == {} for rs in hidden["reasons"] for r in rs)
    shown = model.recommend(public, k=10)
    assert any(r["type"] == "similar_to_purchased" for rs in shown["reasons"] for r in rs)
