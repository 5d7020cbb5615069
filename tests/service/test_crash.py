"""Crash safety: a real server acknowledges writes, dies by SIGKILL, restarts, and every
acknowledged write is there — in the store and in the model's answers."""

from __future__ import annotations

import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from service.store import Store
from tests.service.conftest import API_KEY
from tests.service.server_process import server_env, start_server

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def test_acknowledged_writes_survive_sigkill(tmp_path: Path, service_data) -> None:
    db = tmp_path / "store.db"
    env = server_env(
        service_data.model_dir,
        database_url=f"sqlite:///{db}",
        api_key=API_KEY,
        write_rate_limit="1000/second",
    )
    headers = {"X-API-Key": API_KEY}
    server = start_server(tmp_path, env, "first")
    acked: dict[str, dict] = {}
    try:
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as http:
            followed = {
                u: {
                    f["user_id"]
                    for f in http.get(f"/v1/users/{u}/following?limit=500").json()["data"]
                }
                for u in range(60, 66)
            }
            targets = {
                u: next(v for v in range(500, 999) if v not in followed[u]) for u in followed
            }

            def follow(u: int) -> tuple[str, httpx.Response]:
                key = f"follow-{u}"
                body = {"follower_id": u, "followee_id": targets[u]}
                return key, http.post("/v1/follows", json=body, headers={"Idempotency-Key": key})

            def post(u: int) -> tuple[str, httpx.Response]:
                key = f"post-{u}"
                body = {"user_id": u, "text": "trying to lose weight before summer #减肥#"}
                return key, http.post("/v1/posts", json=body, headers={"Idempotency-Key": key})

            def events(u: int) -> tuple[str, httpx.Response]:
                key = f"events-{u}"
                body = {
                    "events": [{"user_id": u, "product_id": p, "event": "view"} for p in range(5)]
                }
                return key, http.post("/v1/events", json=body, headers={"Idempotency-Key": key})

            with ThreadPoolExecutor(4) as pool:
                jobs = [pool.submit(f, u) for u in followed for f in (follow, post, events)]
                for job in jobs:
                    key, r = job.result()
                    if r.status_code == 201:
                        acked[key] = r.json()
    finally:
        server.proc.send_signal(signal.SIGKILL)  # no shutdown hook runs
        server.proc.wait(timeout=10)
    assert len(acked) == 18

    store = Store(f"sqlite:///{db}")
    stored = {w.client_id: w for w in store.replay()}
    store.close()
    assert set(acked) <= set(stored)
    for key, body in acked.items():
        assert stored[key].seq == body["seq"]

    server = start_server(tmp_path, env, "second")
    try:
        with httpx.Client(base_url=server.base, headers=headers, timeout=30) as http:
            for u, v in targets.items():
                now = {
                    f["user_id"]
                    for f in http.get(f"/v1/users/{u}/following?limit=500").json()["data"]
                }
                assert now == followed[u] | {v}
                recs = http.get(f"/v1/users/{u}/recommendations").json()["data"]
                assert recs[0]["reasons"][0]["evidence"]["post_id"] == acked[f"post-{u}"]["post_id"]
            # A retry of an acknowledged write after the crash is not applied twice.
            r = http.post(
                "/v1/follows",
                json={"follower_id": 60, "followee_id": targets[60]},
                headers={"Idempotency-Key": "follow-60"},
            )
            assert r.status_code == 200 and r.json()["seq"] == acked["follow-60"]["seq"]
            metrics = http.get("/metrics").text
            assert 'socialcart_live_updates_total{kind="post",origin="replay"} 6.0' in metrics
    finally:
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=20)
