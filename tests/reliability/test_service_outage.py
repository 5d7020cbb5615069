"""The store goes away under a running service: PostgreSQL stopped mid-run, a SQLite file
that can no longer be written. Writes answer 503 and are not acknowledged, reads keep being
served, ``/readyz`` says so, and once the store is back writes succeed again — same process,
no restart."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.store import Store
from tests.service.conftest import PG_SKIP_REASON, PG_URL

READS = [
    ("GET", "/v1/users/1/recommendations", None),
    ("GET", "/v1/users/1/share-targets?product_id=3", None),
    ("GET", "/v1/users/1", None),
    ("GET", "/v1/users/1/following", None),
    ("GET", "/v1/products/3", None),
    ("GET", "/v1/products/3/similar", None),
    ("POST", "/v1/groups/recommendations", {"user_ids": [1, 2, 3]}),
    ("GET", "/v1/demo/people?q=a", None),
    ("GET", "/v1/demo/categories", None),
    ("GET", "/v1/demo/groups", None),
    ("GET", "/v1/demo/config", None),
    ("GET", "/healthz", None),
]
"""Reads answered from the loaded model: none needs the store."""


def writes(tag: str, user: int, followee: int) -> list[tuple[str, str, dict]]:
    """One write of each kind: (idempotency key, method + path, body or query)."""
    return [
        (f"{tag}-post", "POST /v1/posts", {"user_id": user, "text": f"{tag}: new lipstick"}),
        (f"{tag}-event", "POST /v1/events", {"user_id": user, "product_id": 3, "event": "cart"}),
        (f"{tag}-follow", "POST /v1/follows", {"follower_id": user, "followee_id": followee}),
        (
            f"{tag}-unfollow",
            "DELETE /v1/follows",
            {"follower_id": user, "followee_id": followee},
        ),
    ]


def send(client: TestClient, key: str, route: str, body: dict):
    method, path = route.split()
    headers = {"Idempotency-Key": key}
    if method == "DELETE":
        return client.delete(path, params=body, headers=headers)
    return client.post(path, json=body, headers=headers)


def following(client: TestClient, user: int) -> set[int]:
    r = client.get(f"/v1/users/{user}/following", params={"limit": 500})
    return {f["user_id"] for f in r.json()["data"]}


def assert_down(client: TestClient, store: Store, tag: str, user: int, followee: int) -> int:
    """With the store gone: every write is a 503 and nothing of it is stored; every read of
    the model is a 200; /readyz is a 503. Returns the number of requests sent."""
    before = following(client, user)
    sent = 0
    for key, route, body in writes(tag, user, followee):
        r = send(client, key, route, body)
        sent += 1
        assert r.status_code == 503, (route, r.status_code, r.text)
        assert r.json() == {
            "error": "unavailable",
            "detail": "the store is unavailable; nothing was stored",
        }
        assert r.headers["retry-after"] == "1"
    for method, path, body in READS:
        r = client.request(method, path, json=body)
        sent += 1
        assert r.status_code == 200, (path, r.status_code, r.text)
    r = client.get("/readyz")
    sent += 1
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable" and r.json()["store"] == "unreachable"
    assert following(client, user) == before  # nothing was applied either
    return sent


def assert_back(client: TestClient, store: Store, tag: str, user: int, followee: int) -> int:
    """The store is back: the writes refused before were not stored (a retry is a new
    write, 201), they are applied now, and /readyz is 200 again."""
    deadline = time.monotonic() + 30
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "/readyz did not recover"
        time.sleep(0.2)
    sent = 1
    for key, _, _ in writes(tag, user, followee):
        assert store.get(key) is None, f"{key} was refused with 503 but stored"
    before = following(client, user)
    for key, route, body in writes(tag, user, followee)[:3]:  # post, event, follow
        r = send(client, key, route, body)
        sent += 1
        assert r.status_code == 201, (route, r.status_code, r.text)
        assert r.json()["duplicate"] is False
        assert store.get(key).seq == r.json()["seq"]
    assert following(client, user) == before | {followee}
    return sent


def unfollowed(client: TestClient, user: int) -> int:
    mine = following(client, user)
    return next(v for v in range(500, 999) if v not in mine and v != user)


# ------------------------------------------------------------------ PostgreSQL
def _pg_cluster(url: str) -> tuple[str, str] | None:
    """(version, name) of the local cluster on the URL's port, if this process may run
    ``pg_ctlcluster`` (root, or the postgres user)."""
    if not shutil.which("pg_lsclusters") or not shutil.which("pg_ctlcluster"):
        return None
    parsed = urlparse(url.replace("+psycopg", ""))
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    if os.geteuid() != 0:
        return None
    port = str(parsed.port or 5432)
    out = subprocess.run(
        ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False
    ).stdout
    for line in out.splitlines():
        version, name, cluster_port, *_ = line.split()
        if cluster_port == port:
            return version, name
    return None


def _pg_ready(port: int) -> bool:
    r = subprocess.run(
        ["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)], check=False, timeout=10
    )
    return r.returncode == 0


@contextmanager
def pg_stopped(cluster: tuple[str, str], port: int) -> Iterator[None]:
    """PostgreSQL stopped (fast: sessions are cut) for the body; always started again."""
    version, name = cluster
    try:
        subprocess.run(["pg_ctlcluster", version, name, "stop", "-m", "fast"], check=True)
        yield
    finally:
        if not _pg_ready(port):
            subprocess.run(["pg_ctlcluster", version, name, "start"], check=True, timeout=60)
        deadline = time.monotonic() + 60
        while not _pg_ready(port) and time.monotonic() < deadline:
            time.sleep(0.2)


def test_postgresql_stopped_mid_run(tmp_path, make_settings) -> None:
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    cluster = _pg_cluster(PG_URL)
    if cluster is None:
        pytest.skip("cannot stop and start the local PostgreSQL cluster (pg_ctlcluster, root)")
    port = urlparse(PG_URL.replace("+psycopg", "")).port or 5432
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    settings = make_settings(tmp_path, database_url=PG_URL, table_prefix=prefix)
    store = Store(PG_URL, table_prefix=prefix)
    statuses: dict[str, tuple] = {}  # idempotency key -> (status, sent at, seq)
    down_at: list[float] = []
    try:
        with TestClient(create_app(settings)) as c:
            user = 70
            followee = unfollowed(c, user)
            stop = threading.Event()

            def writer() -> None:
                # A client writing all along: before, during and after the outage.
                n = 0
                while not stop.is_set():
                    key = f"bg-{n}"
                    body = {"user_id": 71, "product_id": n % 50, "event": "view"}
                    started = time.monotonic()
                    r = c.post("/v1/events", json=body, headers={"Idempotency-Key": key})
                    statuses[key] = (r.status_code, started, r.json().get("seq"))
                    n += 1
                    time.sleep(0.01)

            thread = threading.Thread(target=writer)
            thread.start()
            try:
                time.sleep(0.5)
                with pg_stopped(cluster, port):
                    down_at.append(time.monotonic())
                    sent = assert_down(c, store, "pg", user, followee)
                    time.sleep(0.3)
                sent += assert_back(c, store, "pg", user, followee)
                time.sleep(0.5)
            finally:
                stop.set()
                thread.join()
            assert c.app.state.runtime.store.counts()["follow"] == 1
        stored = {w.client_id: w for w in store.replay()}
        codes = [code for code, _, _ in statuses.values()]
        assert set(codes) <= {201, 503}, codes  # never a 500, never a hang
        assert codes.count(503) >= 1 and codes[-1] == 201
        lost = [
            k
            for k, (code, _, seq) in statuses.items()
            if code == 201 and (k not in stored or stored[k].seq != seq)
        ]
        assert lost == []
        # Sent once the server was down and refused: not stored. (A write cut at the moment
        # of the stop may have committed before its answer was lost; a retry with its key
        # would be answered as a duplicate.)
        refused = [k for k, (code, at, _) in statuses.items() if code == 503 and at > down_at[0]]
        assert refused and not set(refused) & set(stored)
        print(
            f"\nRELIABILITY outage-pg: {sent + len(statuses)} requests, "
            f"{codes.count(503)} background writes refused with 503, "
            f"{codes.count(201)} acknowledged, {len(lost)} lost"
        )
    finally:
        if _pg_ready(port):
            store.drop()
        store.close()


# ---------------------------------------------------------------------- SQLite
@contextmanager
def unwritable(paths: list[Path]) -> Iterator[None]:
    """Files and directories no process can write, even as root: ``chattr +i``
    (immutable); ``chmod`` for a non-root user. SQLite's ``-shm`` stays writable: it is
    memory-mapped, and a write to an immutable mapping kills the process (SIGBUS)."""
    if os.geteuid() == 0:
        if not shutil.which("chattr"):
            pytest.skip("running as root without chattr: cannot make a file unwritable")
        r = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, check=False)
        if r.returncode != 0:
            subprocess.run(["chattr", "-i", *map(str, paths)], capture_output=True, check=False)
            pytest.skip(f"chattr +i refused: {r.stderr.decode().strip()}")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)


def test_sqlite_file_made_unwritable(tmp_path, make_settings) -> None:
    directory = tmp_path / "db"
    directory.mkdir()
    settings = make_settings(directory)
    db = directory / "store.db"
    with TestClient(create_app(settings)) as c:
        user = 72
        followee = unfollowed(c, user)
        store = c.app.state.runtime.store
        r = c.post("/v1/events", json={"user_id": user, "product_id": 4, "event": "view"})
        assert r.status_code == 201
        assert db.with_name("store.db-wal").exists()
        with unwritable([db, db.with_name("store.db-wal"), directory]):
            sent = assert_down(c, store, "sqlite", user, followee)
        sent += assert_back(c, store, "sqlite", user, followee)
    print(f"\nRELIABILITY outage-sqlite: {sent + 1} requests, 0 lost")
