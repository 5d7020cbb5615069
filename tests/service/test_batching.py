"""Micro-batching of recommendations and group commit of writes: a batch answers each
request as it would be answered alone, and one bad request fails only itself."""

from __future__ import annotations

import asyncio

import pytest
from fastapi.testclient import TestClient

from recommender.errors import UnknownIdError
from service.app import create_app
from service.batching import Batcher, RecommendBatcher, RecommendOptions
from service.model_holder import ModelHolder
from service.runtime import WriteOutcome
from service.store import IdempotencyConflict, Store


@pytest.fixture(scope="module")
def holder(service_data) -> ModelHolder:
    return ModelHolder.load(service_data.model_dir, service_data.dataset_dir)


def gather(*coroutines):
    """Run the coroutines concurrently on one fresh event loop; exceptions are returned."""

    async def main():
        return await asyncio.gather(*coroutines, return_exceptions=True)

    return asyncio.run(main())


# ------------------------------------------------------------------ the generic batcher
def test_batcher_takes_waiting_items_of_one_key_up_to_max_batch() -> None:
    calls: list[tuple[str, list[int]]] = []

    def compute(context, items):
        calls.append((context, items))
        return [i * 10 for i in items]

    batcher = Batcher(compute, max_batch=3)
    keys = ["a", "a", "b", "a", "a", "b", "a"]
    results = gather(*(batcher.submit(k, i, context=k) for i, k in enumerate(keys)))
    assert results == [0, 10, 20, 30, 40, 50, 60]
    # The oldest waiting item's key goes first; other keys keep their order.
    assert calls == [("a", [0, 1, 3]), ("b", [2, 5]), ("a", [4, 6])]


def test_batcher_errors_reach_only_their_items() -> None:
    def compute(_, items):
        return [ValueError(f"bad {i}") if i % 2 else i for i in items]

    results = gather(*(Batcher(compute).submit("k", i) for i in range(1)))
    assert results == [0]
    batcher = Batcher(compute)
    results = gather(*(batcher.submit("k", i) for i in range(4)))
    assert results[0] == 0 and results[2] == 2
    assert [str(r) for r in (results[1], results[3])] == ["bad 1", "bad 3"]
    assert all(isinstance(r, ValueError) for r in (results[1], results[3]))


def test_batcher_failing_call_fails_its_batch_and_the_next_batch_still_runs() -> None:
    def compute(context, items):
        if context == "broken":
            raise RuntimeError("store down")
        return items

    batcher = Batcher(compute)
    results = gather(
        batcher.submit("x", 1, context="broken"),
        batcher.submit("x", 2, context="broken"),
        batcher.submit("y", 3, context="fine"),
    )
    assert [type(r) for r in results[:2]] == [RuntimeError, RuntimeError]
    assert results[2] == 3


def test_batcher_rejects_a_batch_size_below_one() -> None:
    with pytest.raises(ValueError, match="max_batch == 0, must be >= 1"):
        Batcher(lambda _, items: items, max_batch=0)


# ------------------------------------------------------------------ recommendations
def test_batched_recommendations_equal_one_by_one(holder: ModelHolder) -> None:
    sizes: list[int] = []
    batcher = RecommendBatcher(32, on_batch=sizes.append)
    options = RecommendOptions(k=7, max_per_category=3)
    people = [0, 1, 2, 3, 5, 8, 13, 21, 2, 34, 1]  # two asked twice
    results = gather(*(batcher.recommend(holder, u, options) for u in people))
    assert sizes == [len(people)]  # all waited while none computed: one call
    for user_id, result in zip(people, results, strict=True):
        assert result == holder.recommend(user_id, **options.kwargs())
        assert len(result) == 7
        assert all(r["reasons"] for r in result)
    assert results[2] == results[8] and results[1] == results[10]


def test_different_options_are_computed_in_different_batches(holder: ModelHolder) -> None:
    sizes: list[int] = []
    batcher = RecommendBatcher(32, on_batch=sizes.append)
    five, ten = RecommendOptions(k=5), RecommendOptions(k=10, explain=False)
    asked = [(u, five if u % 2 else ten) for u in range(10)]
    results = gather(*(batcher.recommend(holder, u, o) for u, o in asked))
    assert sorted(sizes) == [5, 5]
    for (user_id, options), result in zip(asked, results, strict=True):
        assert result == holder.recommend(user_id, **options.kwargs())
        assert len(result) == options.k
        assert all(bool(r["reasons"]) == options.explain for r in result)


def test_an_unknown_person_fails_alone_in_a_batch(holder: ModelHolder) -> None:
    batcher = RecommendBatcher(32)
    options = RecommendOptions(k=5)
    results = gather(*(batcher.recommend(holder, u, options) for u in [4, 10**9, 6]))
    assert isinstance(results[1], UnknownIdError)
    assert "1000000000" in str(results[1])
    assert results[0] == holder.recommend(4, k=5)
    assert results[2] == holder.recommend(6, k=5)


def test_max_batch_one_is_one_call_per_request(holder: ModelHolder) -> None:
    sizes: list[int] = []
    batcher = RecommendBatcher(1, on_batch=sizes.append)
    results = gather(*(batcher.recommend(holder, u, RecommendOptions(k=3)) for u in range(4)))
    assert sizes == [1, 1, 1, 1]
    assert [len(r) for r in results] == [3, 3, 3, 3]


# ------------------------------------------------------------------ group commit
FOLLOW = {"follower_id": 1, "followee_id": 2}
UNFOLLOW = {"follower_id": 1, "followee_id": 2}
OTHER = {"follower_id": 3, "followee_id": 4}


def test_append_many_is_one_batch_answered_as_one_by_one(store: Store) -> None:
    earlier = store.append("follow", FOLLOW, client_id="old").write
    results = store.append_many(
        [
            ("follow", OTHER, "new"),  # stored
            ("follow", OTHER, "new"),  # the same again in the batch: a duplicate
            ("unfollow", UNFOLLOW, "new"),  # the key again, another write: a conflict
            ("follow", FOLLOW, "old"),  # stored before, same content: a duplicate
            ("follow", OTHER, "old"),  # stored before, other content: a conflict
            ("unfollow", UNFOLLOW, None),  # no key: stored under a fresh one
        ]
    )
    new, again, clash, old, old_clash, anonymous = results
    assert new.duplicate is False and new.write.seq > earlier.seq
    assert again.duplicate is True and again.write == new.write
    assert isinstance(clash, IdempotencyConflict) and clash.kind == "follow"
    assert old.duplicate is True and old.write.seq == earlier.seq
    assert old.write.payload == FOLLOW
    assert isinstance(old_clash, IdempotencyConflict) and old_clash.client_id == "old"
    assert anonymous.duplicate is False and anonymous.write.seq == new.write.seq + 1
    assert len(anonymous.write.client_id) == 32
    stored = list(store.replay())
    assert [w.seq for w in stored] == [earlier.seq, new.write.seq, anonymous.write.seq]
    assert [w.kind for w in stored] == ["follow", "follow", "unfollow"]
    assert store.counts() == {"post": 0, "event": 0, "follow": 2, "unfollow": 1}


def test_append_many_with_a_bad_kind_stores_nothing(store: Store) -> None:
    with pytest.raises(ValueError, match="kind == 'like', must be one of"):
        store.append_many([("follow", FOLLOW, "a"), ("like", FOLLOW, "b")])
    assert list(store.replay()) == []


def test_write_many_stores_and_applies_the_valid_writes(tmp_path, make_settings) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as client:
        runtime = client.app.state.runtime
        holder = runtime.holder
        before = holder.applied_seq
        follows_before = set(holder.following(40).tolist())
        followee = next(u for u in range(41, 200) if u not in follows_before)
        out = runtime.write_many(
            [
                ("follow", {"follower_id": 40, "followee_id": followee}, "w1"),
                ("follow", {"follower_id": 40, "followee_id": 10**9}, "w2"),  # unknown
                ("follow", {"follower_id": 40, "followee_id": 40}, "w3"),  # self
                ("follow", {"follower_id": 40, "followee_id": followee}, "w1"),  # retry
            ]
        )
        assert isinstance(out[0], WriteOutcome) and out[0].duplicate is False
        assert isinstance(out[1], UnknownIdError)
        assert isinstance(out[2], ValueError) and "cannot follow themselves" in str(out[2])
        assert isinstance(out[3], WriteOutcome) and out[3].duplicate is True
        assert out[3].write == out[0].write
        # Only the valid write was stored, once, and the live model applied it.
        assert [w.client_id for w in runtime.store.replay()] == ["w1"]
        assert holder.applied_seq == out[0].write.seq > before
        assert followee in set(holder.following(40).tolist())
        # Over HTTP the same key answers with the stored write.
        r = client.post(
            "/v1/follows",
            json={"follower_id": 40, "followee_id": followee},
            headers={"Idempotency-Key": "w1"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["seq"] == out[0].write.seq and r.json()["duplicate"] is True


def test_a_failed_factor_re_solve_still_answers_the_stored_events(
    tmp_path, make_settings, monkeypatch, caplog
) -> None:
    """The events are stored and applied before the batch's one ALS re-solve: if that
    fails, each write is still answered (not a 500 for writes that were stored)."""
    with TestClient(create_app(make_settings(tmp_path))) as client:
        model = client.app.state.runtime.holder.model

        def broken(user_ids):
            raise RuntimeError("solver failed")

        monkeypatch.setattr(model, "refresh_users", broken)
        r = client.post("/v1/events", json={"user_id": 5, "product_id": 1, "event": "cart"})
        assert r.status_code == 201, r.text
        assert client.app.state.runtime.store.counts()["event"] == 1
        assert "re-solving the factors of 1 shoppers failed" in caplog.text
