"""Replay on start, the training cut-off, sync between processes and hot reload under load."""

from __future__ import annotations

import json
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from service.app import create_app
from service.store import Store
from tests.service.conftest import API_KEY

LOSE_WEIGHT = "trying to lose weight before summer #减肥#"


def following(client: TestClient, user: int) -> list[int]:
    body = client.get(f"/v1/users/{user}/following", params={"limit": 500}).json()
    return [f["user_id"] for f in body["data"]]


def test_a_restart_replays_every_stored_write(tmp_path, make_settings, store_settings) -> None:
    settings = make_settings(tmp_path, **store_settings)
    with TestClient(create_app(settings)) as c:
        before = following(c, 40)
        new = next(u for u in range(200, 300) if u not in before)
        assert (
            c.post("/v1/follows", json={"follower_id": 40, "followee_id": new}).status_code == 201
        )
        post = c.post("/v1/posts", json={"user_id": 41, "text": LOSE_WEIGHT}).json()
        first = post["recommendations"]["data"][0]
        buy = c.post("/v1/events", json={"user_id": 42, "product_id": 9, "event": "purchase"})
        assert buy.status_code == 201
    with TestClient(create_app(settings)) as c:
        assert c.app.state.runtime.replayed_at_start == 3
        assert following(c, 40) == sorted([*before, new])
        recs = c.get("/v1/users/41/recommendations").json()["data"]
        assert recs[0]["product"] == first["product"]
        assert recs[0]["reasons"][0]["evidence"]["post_id"] == post["post_id"]
        recs = c.get("/v1/users/42/recommendations", params={"k": 100}).json()["data"]
        assert 9 not in [i["product"]["product_id"] for i in recs]
        # A retry after the restart is still recognised.
        assert c.app.state.runtime.store.counts()["post"] == 1


def test_writes_before_the_training_cut_off_are_not_replayed(tmp_path, make_settings) -> None:
    settings = make_settings(tmp_path)
    store = Store(settings.resolved_database_url).create()
    store.append(
        "follow",
        {"follower_id": 43, "followee_id": 44},
        created_at=datetime(2020, 1, 1, tzinfo=UTC),
    )
    store.append("follow", {"follower_id": 43, "followee_id": 45})
    store.close()
    with TestClient(create_app(settings)) as c:
        assert c.app.state.runtime.replayed_at_start == 1
        assert 45 in following(c, 43)


def test_processes_sharing_a_store_catch_up(tmp_path, make_settings) -> None:
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings)) as a, TestClient(create_app(settings)) as b:
        new = next(u for u in range(300, 400) if u not in following(a, 46))
        assert (
            a.post("/v1/follows", json={"follower_id": 46, "followee_id": new}).status_code == 201
        )
        assert new not in following(b, 46)
        assert b.app.state.runtime.sync() == 1
        assert new in following(b, 46)
        # b's own write is applied after a's, in seq order.
        assert (
            b.delete("/v1/follows", params={"follower_id": 46, "followee_id": new}).json()["seq"]
            == 2
        )
        assert a.app.state.runtime.sync() == 1
        assert new not in following(a, 46)


def newer_model(src, dst, note: str):
    """A copy of the model directory whose model.json differs (so its version does)."""
    shutil.copytree(src, dst)
    meta = json.loads((dst / "model.json").read_text())
    meta["note"] = note
    (dst / "model.json").write_text(json.dumps(meta))
    return dst


def test_hot_reload_under_concurrent_requests(tmp_path, make_settings, service_data) -> None:
    v2 = newer_model(service_data.model_dir, tmp_path / "model-v2", "v2")
    v3 = newer_model(service_data.model_dir, tmp_path / "model-v3", "v3")
    settings = make_settings(tmp_path, api_key=API_KEY)
    key = {"X-API-Key": API_KEY}
    with TestClient(create_app(settings)) as c:
        v1 = c.get("/healthz").headers["x-model-version"]
        assert c.post(
            "/v1/follows", json={"follower_id": 47, "followee_id": 48}, headers=key
        ).status_code in (201,)
        stop = threading.Event()
        results: list[tuple[int, str]] = []

        def hammer(user: int) -> None:
            while not stop.is_set():
                r = c.get(f"/v1/users/{user}/recommendations", params={"k": 10})
                results.append((r.status_code, r.headers.get("x-model-version", "")))
                w = c.post(
                    "/v1/events",
                    json={"user_id": user, "product_id": 1, "event": "view"},
                    headers=key,
                )
                results.append((w.status_code, w.headers.get("x-model-version", "")))

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(hammer, u) for u in (50, 51, 52, 53)]
            reloads = []
            for model_dir in (v2, v3):
                r = c.post("/v1/admin/reload", json={"model_dir": str(model_dir)}, headers=key)
                reloads.append(r)
            stop.set()
            for f in futures:
                f.result()
        assert [r.status_code for r in reloads] == [200, 200]
        first, second = reloads[0].json(), reloads[1].json()
        assert first["previous_version"] == v1
        assert second["previous_version"] == first["model_version"] != v1
        assert second["model_dir"] == str(v3) and second["model_version"].startswith("model-v3-")
        assert first["replayed"] >= 1  # the follow, at least, reached the new model
        assert len(results) > 8
        assert {code for code, _ in results} <= {200, 201}, results
        versions = {v for _, v in results}
        assert versions <= {v1, first["model_version"], second["model_version"]}
        r = c.get("/v1/users/50/recommendations")
        assert r.headers["x-model-version"] == second["model_version"]
        # Nothing acknowledged was lost on the way: the follow is in the newest model.
        assert 48 in following(c, 47)
        events = c.app.state.runtime.store.counts()["event"]
        assert events == sum(1 for code, _ in results if code == 201)


def test_reload_of_a_bad_directory_keeps_the_old_model(tmp_path, make_settings) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as c:
        version = c.get("/healthz").headers["x-model-version"]
        r = c.post("/v1/admin/reload", json={"model_dir": str(tmp_path / "missing")})
        assert r.status_code == 422
        assert r.json() == {
            "error": "invalid_request",
            "detail": f"cannot load the model: {tmp_path / 'missing'} is not a model directory "
            "(no model.json)",
        }
        (tmp_path / "broken").mkdir()
        (tmp_path / "broken" / "model.json").write_text("{trunc")
        r = c.post(
            "/v1/admin/reload",
            json={"model_dir": str(tmp_path / "broken"), "dataset_dir": str(tmp_path)},
        )
        assert r.status_code == 422
        assert c.get("/v1/users/1/recommendations").headers["x-model-version"] == version
        r = c.post("/v1/admin/reload")  # the configured directory again
        assert r.status_code == 200 and r.json()["model_version"] == version


def frozen_again(runtime, timeout_s: float = 5.0) -> bool:
    """Whether the heap is frozen again after a reload (no refreeze pending) in time."""
    import gc

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if runtime._refreeze_at is None and gc.get_freeze_count() > 0:
            return True
        time.sleep(0.05)
    return False


def test_freeze_heap_after_loading_and_again_after_a_reload(
    tmp_path, make_settings, service_data, monkeypatch
) -> None:
    """With ``freeze_heap`` the loaded model is exempt from collections; a reload unfreezes
    (the old model must be collectable) and the sync loop freezes again later."""
    import gc

    from service import runtime as runtime_module

    monkeypatch.setattr(runtime_module, "REFREEZE_AFTER_S", 0.0)
    v2 = newer_model(service_data.model_dir, tmp_path / "model-v2", "v2")
    settings = make_settings(tmp_path, freeze_heap=True, sync_interval_seconds=0.05)
    gc.unfreeze()
    try:
        with TestClient(create_app(settings)) as c:
            assert gc.get_freeze_count() > 0
            runtime = c.app.state.runtime
            gc.unfreeze()  # as if the sync thread had not frozen it yet
            runtime._refreeze_at = None
            assert c.post("/v1/admin/reload", json={"model_dir": str(v2)}).status_code == 200
            assert runtime._refreeze_at is not None or gc.get_freeze_count() > 0
            assert frozen_again(runtime)
    finally:
        gc.unfreeze()


def test_freeze_heap_after_a_reload_without_a_sync_loop(
    tmp_path, make_settings, service_data, monkeypatch
) -> None:
    """With ``sync_interval_seconds=0`` there is no sync loop: a timer freezes again."""
    import gc

    from service import runtime as runtime_module

    monkeypatch.setattr(runtime_module, "REFREEZE_AFTER_S", 0.05)
    v2 = newer_model(service_data.model_dir, tmp_path / "model-v2", "v2")
    settings = make_settings(tmp_path, freeze_heap=True, sync_interval_seconds=0)
    try:
        with TestClient(create_app(settings)) as c:
            runtime = c.app.state.runtime
            assert c.post("/v1/admin/reload", json={"model_dir": str(v2)}).status_code == 200
            assert frozen_again(runtime)
    finally:
        gc.unfreeze()


def test_no_freeze_by_default(tmp_path, make_settings) -> None:
    import gc

    gc.unfreeze()
    with TestClient(create_app(make_settings(tmp_path))):
        assert gc.get_freeze_count() == 0


def test_released_fit_tables_answer_the_same_take_writes_and_reload(
    tmp_path, make_settings, service_data
) -> None:
    """``release_fit_tables`` drops what only fitting reads: the answers stay the same, a
    live purchase still lands, and a reload reads the dataset again instead of reusing the
    one without interactions."""
    v2 = newer_model(service_data.model_dir, tmp_path / "model-v2", "v2")
    full = make_settings(tmp_path / "full")
    lean = make_settings(tmp_path / "lean", release_fit_tables=True)
    (tmp_path / "full").mkdir()
    (tmp_path / "lean").mkdir()
    with TestClient(create_app(full)) as a, TestClient(create_app(lean)) as b:
        holder = b.app.state.runtime.holder
        assert holder.fit_tables_released and not a.app.state.runtime.holder.fit_tables_released
        assert len(holder.dataset.interactions) == 0 and len(holder.model.data_.interactions) == 0
        assert holder.dataset.ground_truth == {} and holder.model.data_.dataset is holder.dataset
        assert len(holder.dataset.follows) == 0 and holder.model.data_.follows.nnz > 0
        assert len(a.app.state.runtime.holder.dataset.interactions) > 0
        assert len(holder.model.data_.posts) == 0 and len(holder.dataset.posts) == 0
        post = {"user_id": 8, "text": "trying to lose weight before summer #减肥#"}
        answers = [c.post("/v1/posts", json=post) for c in (a, b)]
        assert [r.status_code for r in answers] == [201, 201]
        assert answers[1].json()["recommendations"] == answers[0].json()["recommendations"]
        for user in (3, 5, 8):
            for path in (f"/v1/users/{user}/recommendations", f"/v1/users/{user}/following"):
                assert b.get(path).json()["data"] == a.get(path).json()["data"]
        lean_people, full_people = (
            b.get("/v1/demo/people?limit=20"),
            a.get("/v1/demo/people?limit=20"),
        )
        assert lean_people.status_code == 200 and len(lean_people.json()["data"]) == 20
        assert lean_people.json() == full_people.json()
        product = b.get("/v1/users/5/recommendations").json()["data"][0]["product"]["product_id"]
        event = {"user_id": 5, "product_id": product, "event": "purchase"}
        assert b.post("/v1/events", json=event).status_code == 201
        shown = [
            d["product"]["product_id"] for d in b.get("/v1/users/5/recommendations").json()["data"]
        ]
        assert product not in shown
        r = b.post("/v1/admin/reload", json={"model_dir": str(v2)})
        assert r.status_code == 200 and r.json()["replayed"] == 2  # the post and the event
        new = b.app.state.runtime.holder
        assert new is not holder and new.fit_tables_released
        assert new.dataset is not holder.dataset
        shown = [
            d["product"]["product_id"] for d in b.get("/v1/users/5/recommendations").json()["data"]
        ]
        assert product not in shown
