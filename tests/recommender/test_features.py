"""Pair features of the ranker: the fresh social cue counts only recent, visible purchases."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.data import TrainingData
from recommender.features import PAIR_FEATURES, FeatureContext


def _recent_column(context: FeatureContext, user: int, item: int) -> float:
    column = PAIR_FEATURES.index("followees_bought_recent")
    return float(context.pair_features(np.array([user]), np.array([item]))[0, column])


def test_followees_bought_recent_counts_fresh_visible_purchases_only(tiny_dataset) -> None:
    data = TrainingData.from_dataset(tiny_dataset)
    context = FeatureContext.build(data, feed_days=3.0)
    inter = data.interactions
    shares = tiny_dataset.users["share_purchases"].to_numpy(bool)
    age = (data.now - inter["ts"]).dt.total_seconds().to_numpy() / 86_400
    buys = inter[(inter["event"].astype(str) == "purchase").to_numpy()]
    buy_age = age[(inter["event"].astype(str) == "purchase").to_numpy()]
    followers = data.follows.T.tocsr()
    checked = {"fresh": 0, "old": 0, "private": 0}
    for (buyer, item), days in zip(buys[["u", "i"]].to_numpy(), buy_age, strict=True):
        fans = followers.indices[followers.indptr[buyer] : followers.indptr[buyer + 1]]
        if len(fans) == 0:
            continue
        fan = int(fans[0])
        others = data.follows[[fan]].indices
        # Count the fan's followees whose purchases of this item are fresh and visible.
        mine = buys[(buys["i"] == item) & buys["u"].isin(others)]
        mine_age = buy_age[((buys["i"] == item) & buys["u"].isin(others)).to_numpy()]
        fresh_visible = {
            int(u) for u, a in zip(mine["u"], mine_age, strict=True) if a <= 3.0 and shares[int(u)]
        }
        kind = "private" if not shares[buyer] else ("fresh" if days <= 3.0 else "old")
        assert _recent_column(context, fan, int(item)) == len(fresh_visible), kind
        checked[kind] += 1
        if min(checked.values()) >= 3:
            break
    assert min(checked.values()) >= 1, checked


def test_feed_window_is_a_parameter(tiny_dataset) -> None:
    data = TrainingData.from_dataset(tiny_dataset, until=pd.Timestamp("2026-03-21", tz="UTC"))
    narrow = FeatureContext.build(data, feed_days=1.0).bought_recent.nnz
    wide = FeatureContext.build(data, feed_days=10.0).bought_recent.nnz
    assert 0 < narrow < wide


def test_pair_values_equals_scipy_pair_indexing() -> None:
    import scipy.sparse as sp

    from recommender.features import pair_values

    rng = np.random.default_rng(0)
    for seed in range(20):
        a = sp.random(30, 40, density=0.2, random_state=seed, format="csr")
        b = sp.random(40, 50, density=0.2, random_state=seed + 100, format="csr")
        product = sp.csr_array(a @ b)  # unsorted indices, as the feature products are
        rows, cols = rng.integers(0, 30, 300), rng.integers(0, 50, 300)
        expected = np.asarray(product[rows, cols], dtype=np.float32).ravel()
        np.testing.assert_allclose(pair_values(product, rows, cols), expected, rtol=1e-6)


def test_pair_products_equal_the_product_at_the_pairs() -> None:
    import scipy.sparse as sp

    from recommender.features import pair_products

    rng = np.random.default_rng(1)
    for seed in range(20):
        a = sp.random(30, 40, density=0.1 * (seed % 4), random_state=seed, format="csr")
        b = sp.random(40, 50, density=0.2, random_state=seed + 100, format="csr")
        dense = (a @ b).toarray()
        # Repeated pairs and rows with nothing to gather included.
        rows, cols = rng.integers(0, 30, 300), rng.integers(0, 50, 300)
        got = pair_products(a, b, rows, cols)
        np.testing.assert_allclose(got, dense[rows, cols].astype(np.float32), rtol=1e-5)
    assert (pair_products(a, b, rows, cols) != 0).any()  # not vacuous
    assert pair_products(a, b, np.zeros(0, int), np.zeros(0, int)).shape == (0,)


def test_take_rows_equals_scipy_row_indexing() -> None:
    import scipy.sparse as sp

    from recommender.data import take_rows

    rng = np.random.default_rng(2)
    for seed in range(10):
        m = sp.csr_array(sp.random(40, 30, density=0.15, random_state=seed, format="csr"))
        for rows in ([], [3], [5, 5, 0], rng.integers(0, 40, 25), np.arange(40)):
            got, want = take_rows(m, rows), m[np.asarray(rows, dtype=np.intp)]
            assert got.shape == want.shape
            np.testing.assert_array_equal(got.indptr, want.indptr)
            np.testing.assert_array_equal(got.indices, want.indices)
            np.testing.assert_array_equal(got.data, want.data)


def test_compact_narrows_the_index_arrays_and_keeps_the_matrix(tiny_dataset) -> None:
    import scipy.sparse as sp

    from recommender.data import compact

    m = sp.csr_array(sp.random(40, 30, density=0.15, random_state=3, format="csr"))
    wide = sp.csr_array(
        (m.data, m.indices.astype(np.int64), m.indptr.astype(np.int64)), shape=m.shape
    )
    assert wide.indices.dtype == np.int64  # what scipy keeps from int64 inputs
    small = compact(wide)
    assert (small.indices.dtype, small.indptr.dtype) == (np.int32, np.int32)
    assert np.shares_memory(small.data, wide.data)  # the values are not copied
    np.testing.assert_array_equal(small.toarray(), wide.toarray())
    assert compact(small) is small
    # Columns beyond int32 keep int64 indices.
    huge = sp.csr_array(
        (np.ones(2), np.array([0, 2**31 + 5]), np.array([0, 1, 2])), shape=(2, 2**31 + 10)
    )
    assert compact(huge) is huge
    # What every source reads is built narrow.
    data = TrainingData.from_dataset(tiny_dataset)
    for matrix in (data.user_items, data.purchased, data.follows):
        assert (matrix.indices.dtype, matrix.indptr.dtype) == (np.int32, np.int32)


def test_binary_shares_the_index_arrays_of_a_positive_matrix(tiny_dataset) -> None:
    import scipy.sparse as sp

    from recommender.data import binary

    data = TrainingData.from_dataset(tiny_dataset)
    engaged = binary(data.user_items)
    assert np.shares_memory(engaged.indices, data.user_items.indices)
    assert engaged.data.strides == (0,) and not engaged.data.flags.writeable
    np.testing.assert_array_equal(engaged.toarray(), (data.user_items.toarray() > 0) * 1.0)
    # The follow graph (no repeated edge) is stored the same way, read-only.
    assert data.follows.data.strides == (0,) and (data.follows.data == 1).all()
    # An explicit zero or negative entry: a real copy without it.
    m = sp.csr_array(np.array([[0.0, 2.0], [-1.0, 0.0]], np.float32))
    m.data[0] = 0.0  # stored, but zero
    out = binary(m)
    np.testing.assert_array_equal(out.toarray(), [[0.0, 0.0], [0.0, 0.0]])
    assert out.data.flags.writeable
