"""The API key: every write and admin route — found by walking the app's routes, so a new
one cannot be forgotten — refuses a missing or wrong key with 401 and stores nothing; keys
are compared in constant time; the key never reaches a log line."""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets

import fastapi.routing
import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.conftest import API_KEY

READ_POSTS = {("POST", "/v1/groups/recommendations")}
"""Reads sent as POST (a body of ids); checked to store nothing."""
VALID = {
    ("POST", "/v1/posts"): {"json": {"user_id": 1, "text": "new lipstick #makeup#"}},
    ("POST", "/v1/events"): {"json": {"user_id": 1, "product_id": 1, "event": "purchase"}},
    ("POST", "/v1/follows"): {"json": {"follower_id": 1, "followee_id": 2}},
    ("DELETE", "/v1/follows"): {"params": {"follower_id": 1, "followee_id": 2}},
    ("POST", "/v1/admin/reload"): {"json": {}},
}
"""A request each known guarded route accepts with the key."""
WRONG_KEYS: dict[str, bytes] = {
    "empty": b"",
    "another key": b"wrong",
    "one character short": API_KEY[:-1].encode(),
    "one character more": (API_KEY + "x").encode(),
    "last character changed": (API_KEY[:-1] + chr(ord(API_KEY[-1]) ^ 1)).encode(),
    "upper case": API_KEY.upper().encode(),
    "with a space": (" " + API_KEY).encode(),
    "not ASCII": API_KEY.encode() + "é".encode("latin-1"),
    "10 kB": b"k" * 10_000,
}
UNAUTHORIZED = {
    "error": "unauthorized",
    "detail": "missing or wrong API key: send the service's key in the X-API-Key header",
}


def app_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route of the app, included routers flattened; checked to
    cover every operation of the OpenAPI schema."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)  # FastAPI >= 0.130
    routes = iterate(app.routes) if iterate else app.routes
    out = {
        (method, route.path)
        for route in routes
        for method in getattr(route, "methods", None) or ()
        if getattr(route, "path", None)
    }
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert documented <= out, documented - out
    return out


def guarded_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route that writes or administers: any method other than
    GET and HEAD, and anything under ``/v1/admin`` — except the known reads sent as POST."""
    return {
        (method, path)
        for method, path in app_routes(app)
        if (method not in ("GET", "HEAD") or path.startswith("/v1/admin"))
        and (method, path) not in READ_POSTS
    }


def request_for(method: str, path: str) -> dict:
    """The valid request of a known route; for a new one, its path with ids of 1 and an
    empty JSON body (the key is checked before the body)."""
    if (method, path) in VALID:
        return {"method": method, "url": path, **VALID[(method, path)]}
    return {"method": method, "url": re.sub(r"\{[^}]+\}", "1", path), "json": {}}


@pytest.fixture
def compare_calls(monkeypatch) -> list[tuple]:
    """Every call of hmac.compare_digest / secrets.compare_digest (the real one runs)."""
    calls: list[tuple] = []
    real = hmac.compare_digest

    def counting(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    monkeypatch.setattr(secrets, "compare_digest", counting)
    return calls


def test_every_write_and_admin_route_refuses_a_missing_or_wrong_key(
    tmp_path, make_settings, compare_calls, caplog, capfd
) -> None:
    settings = make_settings(tmp_path, api_key=API_KEY)
    caplog.set_level(logging.DEBUG)  # every logger, every level: nothing may show the key
    keyed = 0
    tried = 0
    with TestClient(create_app(settings)) as c:
        routes = guarded_routes(c.app)
        assert set(VALID) <= routes, routes  # the walk finds the routes we know
        store = c.app.state.runtime.store
        version = c.get("/healthz").headers["x-model-version"]
        for method, path in sorted(routes):
            request = request_for(method, path)
            attempts = [None, *WRONG_KEYS.values()]
            for key in attempts:
                headers = {} if key is None else {"X-API-Key": key}
                r = c.request(**request, headers=headers)
                keyed += bool(key)  # an empty header counts as none: nothing to compare
                assert r.status_code == 401, (method, path, key, r.status_code, r.text)
                assert r.json() == UNAUTHORIZED
                assert r.headers["www-authenticate"] == "ApiKey"
            # The key anywhere but its header does not count.
            for elsewhere in (
                {"params": {"api_key": API_KEY, "X-API-Key": API_KEY}},
                {"headers": {"Authorization": f"Bearer {API_KEY}"}},
                {"cookies": {"X-API-Key": API_KEY}},
            ):
                extra = dict(request)
                extra["params"] = {**request.get("params", {}), **elsewhere.get("params", {})}
                c.cookies.update(elsewhere.get("cookies", {}))
                r = c.request(**extra, headers=elsewhere.get("headers", {}))
                c.cookies.clear()
                assert r.status_code == 401, (method, path, elsewhere)
            tried += len(attempts) + 3
        assert sum(store.counts().values()) == 0  # nothing stored
        assert c.get("/metrics").text.count("socialcart_model_reloads_total{") == 0
        assert c.get("/healthz").headers["x-model-version"] == version

        # With the key, each known route works (so the 401s above were the key's doing),
        # and so does the key in a request with an invalid body (422, the key not echoed).
        for (method, path), spec in sorted(VALID.items()):
            r = c.request(method, path, **spec, headers={"X-API-Key": API_KEY})
            keyed += 1
            assert r.status_code in (200, 201), (method, path, r.status_code, r.text)
        r = c.post("/v1/events", json={"user_id": "x"}, headers={"X-API-Key": API_KEY})
        keyed += 1
        assert r.status_code == 422 and API_KEY not in r.text
        # The reads sent as POST store nothing.
        before = store.counts()
        for method, path in READ_POSTS:
            assert c.request(method, path, json={"user_ids": [1, 2]}).status_code == 200
        assert store.counts() == before

    # Constant time: every key that was sent went through compare_digest, as bytes.
    assert len(compare_calls) == keyed
    assert all(isinstance(a, bytes) and b == API_KEY.encode() for a, b in compare_calls)
    # The key in no log record of the server (message or arguments) and on no output
    # stream. (The test's HTTP client, httpx, logs the URLs it requests: the key sent in
    # a query string is its own doing.)
    server = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "".join(r.getMessage() + repr(r.args) + str(r.msg) for r in server)
    out, err = capfd.readouterr()
    assert any(r.name == "socialcart.access" for r in server)  # the requests were logged
    assert API_KEY not in logged + out + err
    print(
        f"\nRELIABILITY auth: {len(routes)} guarded routes, {tried} requests without the key "
        f"or with a wrong one, 0 accepted; {len(compare_calls)} constant-time comparisons"
    )


def test_read_auth_guards_every_read(tmp_path, make_settings) -> None:
    """With ``read_auth`` every ``/v1`` route needs the key; the probes stay open."""
    settings = make_settings(tmp_path, api_key=API_KEY, read_auth=True)
    with TestClient(create_app(settings)) as c:
        checked = 0
        for method, path in sorted(app_routes(c.app)):
            if method == "HEAD" or not path.startswith("/v1/"):
                continue
            r = c.request(**request_for(method, path))
            assert r.status_code == 401, (method, path, r.status_code)
            checked += 1
        assert checked >= 15
        for path in ("/healthz", "/readyz", "/metrics"):
            assert c.get(path).status_code == 200
        assert c.get("/v1/users/1", headers={"X-API-Key": API_KEY}).status_code == 200


def test_loopback_demo_writes_never_open_admin(tmp_path, make_settings) -> None:
    """``demo_loopback_writes`` lets a local client write without a key, never with a
    wrong one, and never reach the admin routes; other clients still need the key."""
    settings = make_settings(tmp_path, api_key=API_KEY, demo_loopback_writes=True)
    event = {"user_id": 1, "product_id": 1, "event": "view"}
    with TestClient(create_app(settings)) as c:

        async def local() -> list[int]:
            transport = httpx.ASGITransport(app=c.app, client=("127.0.0.1", 50000))
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as h:
                return [
                    (await h.post("/v1/events", json=event)).status_code,
                    (
                        await h.post("/v1/events", json=event, headers={"X-API-Key": "no"})
                    ).status_code,
                    (await h.post("/v1/admin/reload", json={})).status_code,
                ]

        assert asyncio.run(local()) == [201, 401, 401]
        assert c.post("/v1/events", json=event).status_code == 401  # "testclient", not local
