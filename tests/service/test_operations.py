"""Health, readiness, metrics, request ids, access logs, CORS, the demo page and settings."""

from __future__ import annotations

import json
import logging
import os

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from service.app import STATIC_DIR, create_app
from service.settings import Settings


def test_healthz_and_readyz(client: TestClient) -> None:
    version = client.app.state.runtime.holder.version
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert r.headers["x-model-version"] == version
    r = client.get("/readyz")
    assert r.json() == {
        "status": "ready",
        "model_version": version,
        "store": "ok",
        "worker_pid": os.getpid(),  # TestClient runs the app in this process
    }


def test_readyz_is_503_when_the_store_is_unreachable(tmp_path, make_settings) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as c:
        runtime = c.app.state.runtime

        def down() -> None:
            raise ConnectionError("database is down")

        runtime.store.ping = down
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {
            "status": "unavailable",
            "model_version": runtime.holder.version,
            "store": "unreachable",
            "worker_pid": os.getpid(),
        }


def test_metrics(client: TestClient) -> None:
    client.get("/v1/users/1/recommendations")
    client.get("/v1/users/999999/recommendations")
    client.post("/v1/events", json={"user_id": 70, "product_id": 1, "event": "view"})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    route = 'route="/v1/users/{user_id}/recommendations"'
    assert f'socialcart_http_requests_total{{method="GET",{route},status="200"}}' in text
    assert f'socialcart_http_requests_total{{method="GET",{route},status="404"}}' in text
    assert (
        f'socialcart_http_request_duration_seconds_bucket{{le="0.1",method="GET",{route}}}' in text
    )
    holder = client.app.state.runtime.holder
    info = f'model_dir="{holder.model_dir}",version="{holder.version}"'
    assert f"socialcart_model_info{{{info}}} 1.0" in text
    assert 'socialcart_store_write_duration_seconds_count{kind="event"}' in text
    assert 'socialcart_live_updates_total{kind="event",origin="request"}' in text


def test_request_ids_and_access_log(client: TestClient, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="socialcart.access"):
        r = client.get("/v1/users/1", headers={"X-Request-ID": "abc-123", "X-API-Key": "s3cret"})
        generated = client.get("/v1/users/1", headers={"X-Request-ID": "bad id\n"})
    assert r.headers["x-request-id"] == "abc-123"
    assert len(generated.headers["x-request-id"]) == 32
    lines = [
        json.loads(rec.getMessage()) for rec in caplog.records if rec.name == "socialcart.access"
    ]
    first = lines[0]
    assert first["request_id"] == "abc-123" and first["status"] == 200
    assert first["route"] == "/v1/users/{user_id}" and first["path"] == "/v1/users/1"
    assert first["model_version"] == client.app.state.runtime.holder.version
    assert set(first) == {
        "ts",
        "request_id",
        "method",
        "path",
        "route",
        "status",
        "duration_ms",
        "client",
        "model_version",
    }
    assert "s3cret" not in caplog.text  # the key is never logged


def test_cors_allows_the_demo_origin(client: TestClient) -> None:
    r = client.options(
        "/v1/posts",
        headers={
            "Origin": "http://127.0.0.1:8000",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-API-Key, Content-Type",
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://127.0.0.1:8000"
    r = client.get("/v1/users/1", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_demo_page_and_docs(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text == (STATIC_DIR / "index.html").read_text()
    assert client.get("/static/index.html").status_code == 200
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) >= {
        "/v1/users/{user_id}/recommendations",
        "/v1/users/{user_id}/share-targets",
        "/v1/users/{user_id}",
        "/v1/users/{user_id}/following",
        "/v1/products/{product_id}",
        "/v1/products/{product_id}/similar",
        "/v1/groups/recommendations",
        "/v1/posts",
        "/v1/events",
        "/v1/follows",
        "/v1/admin/reload",
        "/healthz",
        "/readyz",
        "/metrics",
    }


def test_settings_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SOCIALCART_MODEL_DIR", str(tmp_path / "models" / "m"))
    monkeypatch.setenv("SOCIALCART_API_KEY", "xyzzy-key")
    monkeypatch.setenv("SOCIALCART_CORS_ORIGINS", "http://a.example, http://b.example")
    monkeypatch.setenv("SOCIALCART_WRITE_RATE_LIMIT", "5/minute")
    monkeypatch.setenv("SOCIALCART_READ_AUTH", "true")
    settings = Settings(_env_file=None)
    assert settings.api_key.get_secret_value() == "xyzzy-key"
    assert "xyzzy" not in repr(settings)
    assert settings.cors_origins == ["http://a.example", "http://b.example"]
    assert settings.read_auth and settings.write_rate_limit == "5/minute"
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'models' / 'store.db')}"
    with pytest.raises(FileNotFoundError, match="SOCIALCART_DATASET_DIR"):
        _ = settings.resolved_dataset_dir
    monkeypatch.setenv("SOCIALCART_DATASET_DIR", str(tmp_path / "data"))
    assert Settings(_env_file=None).resolved_dataset_dir == tmp_path / "data"
    (tmp_path / ".env").write_text("SOCIALCART_WORKERS=3\n")
    assert Settings(_env_file=tmp_path / ".env").workers == 3
    monkeypatch.setenv("SOCIALCART_THREADS", "2")
    assert Settings(_env_file=None).threads == 2
    monkeypatch.setenv("SOCIALCART_THREADS", "0")
    with pytest.raises(ValidationError, match="threads"):
        Settings(_env_file=None)
    monkeypatch.delenv("SOCIALCART_THREADS")
    monkeypatch.setenv("SOCIALCART_WRITE_RATE_LIMIT", "lots")
    with pytest.raises(ValidationError, match="write_rate_limit"):
        Settings(_env_file=None)


def test_threads_bound_the_requests_a_worker_computes_at_once(tmp_path, make_settings) -> None:
    from anyio import to_thread

    seen = []
    app = create_app(make_settings(tmp_path, threads=3))

    @app.get("/test-only/limiter")
    def limiter() -> dict:  # a sync route: it runs on the limited thread pool
        return {}

    @app.middleware("http")
    async def record(request, call_next):
        seen.append(to_thread.current_default_thread_limiter().total_tokens)
        return await call_next(request)

    with TestClient(app) as c:
        assert c.get("/test-only/limiter").status_code == 200
    assert seen == [3]


def test_healthz_answers_while_every_thread_is_busy(tmp_path, make_settings) -> None:
    """The liveness probe runs on the event loop: a worker whose threads are all computing
    still answers it at once."""
    import threading

    release = threading.Event()
    started = threading.Event()
    finished = threading.Event()
    app = create_app(make_settings(tmp_path, threads=1))

    @app.get("/test-only/busy")
    def busy() -> dict:  # holds the worker's only thread
        started.set()
        release.wait(5)
        finished.set()
        return {}

    with TestClient(app) as c:
        holder = threading.Thread(target=lambda: c.get("/test-only/busy"))
        holder.start()
        try:
            assert started.wait(5)
            response = c.get("/healthz")
            assert response.status_code == 200 and response.json() == {"status": "ok"}
            assert not finished.is_set()  # answered while the thread was still busy
        finally:
            release.set()
            holder.join()


def test_serve_refuses_a_missing_model(monkeypatch, tmp_path) -> None:
    from socialcart.cli import app

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOCIALCART_DATASET_DIR", str(tmp_path))
    monkeypatch.setenv("SOCIALCART_MODEL_DIR", "restored-after-the-test")  # serve sets it
    result = CliRunner().invoke(app, ["serve", "--model-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "is not a model directory" in " ".join(result.output.split())
