"""Crash safety: a real server acknowledges writes, dies by SIGKILL, restarts, and every
acknowledged write is there — in the store and in the model's answers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from service.store import Store
from tests.service.conftest import API_KEY

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def socialcart_command() -> list[str]:
    script = Path(sys.executable).parent / "socialcart"
    if script.exists():
        return [str(script)]
    found = shutil.which("socialcart")
    assert found, "the socialcart console script is not installed"
    return [found]


def start_server(cwd: Path, env: dict[str, str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*socialcart_command(), "serve", "--port", str(port)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("server did not become ready")


def test_acknowledged_writes_survive_sigkill(tmp_path: Path, service_data) -> None:
    db = tmp_path / "store.db"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SOCIALCART_")},
        "SOCIALCART_MODEL_DIR": str(service_data.model_dir),
        "SOCIALCART_DATABASE_URL": f"sqlite:///{db}",
        "SOCIALCART_API_KEY": API_KEY,
        "SOCIALCART_WRITE_RATE_LIMIT": "1000/second",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    headers = {"X-API-Key": API_KEY}
    proc = start_server(tmp_path, env, port)
    acked: dict[str, dict] = {}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
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
        proc.send_signal(signal.SIGKILL)  # no shutdown hook runs
        proc.wait(timeout=10)
    assert len(acked) == 18

    store = Store(f"sqlite:///{db}")
    stored = {w.client_id: w for w in store.replay()}
    store.close()
    assert set(acked) <= set(stored)
    for key, body in acked.items():
        assert stored[key].seq == body["seq"]

    proc = start_server(tmp_path, env, port)
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
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
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
