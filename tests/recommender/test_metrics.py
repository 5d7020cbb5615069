"""Tests for :mod:`recommender.metrics`, against values computed by hand."""

from __future__ import annotations

from math import log2

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import metrics
from recommender.metrics import (
    catalogue_coverage,
    drop_excluded,
    evaluate_scores,
    intra_list_diversity,
    novelty,
    ranking_metrics,
    top_k,
)


def csr(rows: list[list[int]], n_items: int) -> sp.csr_array:
    """A binary user x item matrix from per-user item lists."""
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_array((np.ones(len(r)), (r, c)), shape=(len(rows), n_items))


# Three users, six items. User 2 has no test item, so it is never averaged over.
TOPK = np.array([[1, 2, 3, 0], [0, 4, 5, 2], [5, 4, 3, 2]])
RELEVANT = csr([[1, 3], [5], []], 6)


def test_ranking_metrics_match_hand_computed_values():
    # User 0: hits at ranks 1 and 3 of [1, 2, 3, 0]; 2 relevant items.
    # User 1: a hit at rank 3 of [0, 4, 5, 2]; 1 relevant item.
    idcg2 = 1 + 1 / log2(3)
    u0 = {
        "precision@2": 1 / 2,
        "recall@2": 1 / 2,
        "ndcg@2": 1 / idcg2,
        "map@2": (1 / 1) / 2,
        "hit_rate@2": 1.0,
        "precision@4": 2 / 4,
        "recall@4": 2 / 2,
        "ndcg@4": (1 + 1 / log2(4)) / idcg2,
        "map@4": (1 / 1 + 2 / 3) / 2,
        "hit_rate@4": 1.0,
    }
    u1 = {
        "precision@2": 0.0,
        "recall@2": 0.0,
        "ndcg@2": 0.0,
        "map@2": 0.0,
        "hit_rate@2": 0.0,
        "precision@4": 1 / 4,
        "recall@4": 1 / 1,
        "ndcg@4": (1 / log2(4)) / 1,
        "map@4": (1 / 3) / 1,
        "hit_rate@4": 1.0,
    }
    result = ranking_metrics(TOPK, RELEVANT, ks=(2, 4))
    assert result["n_users"] == 2
    for name in u0:
        assert result[name] == pytest.approx((u0[name] + u1[name]) / 2), name


def test_per_user_values_and_segments():
    per_user = ranking_metrics(TOPK, RELEVANT, ks=(4,), per_user=True)
    np.testing.assert_array_equal(per_user["users"], [0, 1])
    np.testing.assert_allclose(per_user["recall@4"], [1.0, 1.0])
    np.testing.assert_allclose(per_user["map@4"], [(1 + 2 / 3) / 2, 1 / 3])
    only_user_1 = ranking_metrics(TOPK, RELEVANT, ks=(4,), users=np.array([1, 2]))
    assert only_user_1["n_users"] == 1
    assert only_user_1["ndcg@4"] == pytest.approx(0.5)


def test_recall_divides_by_all_test_items_and_ndcg_by_min_rel_k():
    # 30 relevant items, the first 10 recommended are all relevant.
    relevant = csr([list(range(30))], 40)
    topk = np.arange(10)[None, :]
    result = ranking_metrics(topk, relevant, ks=(10,))
    assert result["recall@10"] == pytest.approx(10 / 30)
    assert result["precision@10"] == pytest.approx(1.0)
    assert result["ndcg@10"] == pytest.approx(1.0)
    assert result["map@10"] == pytest.approx(1.0)


def test_padding_minus_one_never_hits():
    relevant = csr([[0]], 3)
    result = ranking_metrics(np.array([[-1, 0]]), relevant, ks=(1, 2))
    assert result["hit_rate@1"] == 0.0
    assert result["ndcg@2"] == pytest.approx(1 / log2(3))


def test_ranking_metrics_rejects_bad_cut_offs():
    with pytest.raises(ValueError, match=r"ks == \[5\]"):
        ranking_metrics(TOPK, RELEVANT, ks=(5,))


def test_top_k_orders_by_score_breaks_ties_by_index_and_masks():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.0], [1.0, 2.0, 3.0, 4.0, 5.0]])
    exclude = csr([[3], [4, 3]], 5)
    np.testing.assert_array_equal(top_k(scores, 3), [[1, 3, 2], [4, 3, 2]])
    np.testing.assert_array_equal(top_k(scores, 3, exclude=exclude), [[1, 2, 0], [2, 1, 0]])


def test_top_k_pads_when_too_few_items_are_recommendable():
    scores = np.array([[1.0, -np.inf, np.nan]])
    np.testing.assert_array_equal(top_k(scores, 4), [[0, -1, -1, -1]])


def test_top_k_sparse_and_blocked_equal_a_stable_argsort(monkeypatch):
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 4, size=(23, 40)).astype(float)  # many ties
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :6]
    monkeypatch.setattr(metrics, "_BLOCK_CELLS", 100)  # several users per block, many blocks
    np.testing.assert_array_equal(top_k(scores, 6), expected)
    np.testing.assert_array_equal(top_k(sp.csr_array(scores), 6), expected)


def test_drop_excluded_moves_later_items_up():
    topk = np.array([[4, 2, 0, 1], [3, -1, -1, -1]])
    exclude = csr([[2], [3]], 5)
    np.testing.assert_array_equal(
        drop_excluded(topk, exclude, 5), [[4, 0, 1, -1], [-1, -1, -1, -1]]
    )


def test_evaluate_scores_masks_training_items():
    # Training item 0 has the best score for user 0 but must not take a slot.
    scores = np.array([[9.0, 5.0, 1.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    train = csr([[0], [3]], 4)
    test = csr([[1], [2]], 4)
    result = evaluate_scores(scores, test, exclude=train, ks=(1, 2))
    assert result["precision@1"] == pytest.approx(1.0)  # user 0: [1, 3], user 1: [2, 1]
    assert result["ndcg@2"] == pytest.approx(1.0)
    assert result["coverage@2"] == pytest.approx(3 / 4)  # items 1, 2, 3
    unmasked = evaluate_scores(scores, test, ks=(1,))
    assert unmasked["precision@1"] == pytest.approx(0.0)


def test_evaluate_scores_refuses_a_leaky_split():
    scores = np.ones((1, 3))
    with pytest.raises(ValueError, match="leaky split"):
        evaluate_scores(scores, csr([[1]], 3), exclude=csr([[1, 2]], 3))


def test_catalogue_coverage():
    assert catalogue_coverage(np.array([[0, 1], [1, -1]]), 4) == pytest.approx(0.5)


def test_intra_list_diversity_with_categories():
    categories = np.array(["rock", "rock", "jazz"])
    # [0, 1, 2]: 2 of 3 pairs differ; [0, 1]: none differ; [2, -1, 0]: its one pair differs.
    topk = np.array([[0, 1, 2], [0, 1, -1], [2, -1, 0]])
    assert intra_list_diversity(topk, categories=categories) == pytest.approx((2 / 3 + 0 + 1) / 3)


def test_intra_list_diversity_with_feature_vectors():
    features = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    topk = np.array([[0, 1], [0, 2]])
    # cos(0, 1) = 0, cos(0, 2) = 1 / sqrt(2).
    expected = ((1 - 0) + (1 - 1 / np.sqrt(2))) / 2
    assert intra_list_diversity(topk, item_features=features) == pytest.approx(expected)
    assert intra_list_diversity(topk, item_features=sp.csr_array(features)) == pytest.approx(
        expected
    )


def test_intra_list_diversity_needs_exactly_one_description():
    with pytest.raises(ValueError, match="exactly one"):
        intra_list_diversity(np.array([[0, 1]]))


def test_novelty_is_mean_self_information():
    counts = np.array([4, 2, 1, 0])  # popularity 1, 1/2, 1/4 and (unseen, as 1) 1/4
    topk = np.array([[0, 1], [2, 3], [-1, -1]])
    # -log2 p: 0, 1, 2, 2 -> lists 0.5 and 2.0; the empty list is left out.
    assert novelty(topk, counts, n_users=4) == pytest.approx(1.25)
