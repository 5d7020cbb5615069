"""Write endpoints: the post-changes-recommendations journey, events, follows,
idempotency, auth, the rate limit and body limits."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.store import POST_ID_BASE
from tests.service.conftest import API_KEY

LOSE_WEIGHT = "trying to lose weight before summer #减肥#"


def store_of(client: TestClient):
    return client.app.state.runtime.store


def is_weight_loss(item: dict) -> bool:
    return item["product"]["category_path"].startswith("Health/Weight loss")


def test_posting_about_losing_weight_brings_weight_loss_products(client: TestClient) -> None:
    # Someone whose list shows no weight-loss product yet.
    for user in range(30, 60):
        before = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
        if not any(is_weight_loss(i) for i in before["data"]):
            break
    r = client.post("/v1/posts", json={"user_id": user, "text": LOSE_WEIGHT})
    assert r.status_code == 201
    body = r.json()
    seq = body["seq"]
    assert body["post_id"] == POST_ID_BASE + seq and body["duplicate"] is False
    recs = body["recommendations"]
    assert recs["user_id"] == user and recs["count"] == len(recs["data"]) == 10
    assert recs["data"] != before["data"]
    first = recs["data"][0]  # the fresh-intent slot
    assert is_weight_loss(first), recs
    reason = first["reasons"][0]
    assert reason["type"] == "post_match"
    assert reason["evidence"]["post_id"] == body["post_id"]
    assert reason["evidence"]["post_text"] == "trying to lose weight before summer"
    assert reason["text"].startswith('Matches your post: "trying to lose weight')
    # The next read sees the same list; the store holds the post with its #topic#.
    after = client.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
    assert after["data"] == recs["data"]
    stored = [w for w in store_of(client).replay() if w.seq == seq]
    assert stored[0].payload["hashtags"] == ["减肥"]
    assert stored[0].payload["text"] == LOSE_WEIGHT


def test_post_with_product_link_mentions_and_repost(client: TestClient) -> None:
    first = client.post(
        "/v1/posts",
        json={
            "user_id": 5,
            "text": "love this",
            "hashtags": ["#ootd"],
            "mentions": [6, 6, 7],
            "product_id": 3,
            "k": 3,
        },
    ).json()
    assert first["recommendations"]["count"] == 3
    w = [w for w in store_of(client).replay() if w.seq == first["seq"]][0]
    assert w.payload["mentions"] == [6, 7] and w.payload["hashtags"] == ["ootd"]
    r = client.post(
        "/v1/posts", json={"user_id": 6, "text": "reposting", "repost_of": first["post_id"]}
    )
    assert r.status_code == 201


def test_events_single_and_batch(client: TestClient) -> None:
    r = client.post("/v1/events", json={"user_id": 8, "product_id": 3, "event": "view"})
    assert r.status_code == 201
    assert r.json() == {"seq": r.json()["seq"], "accepted": 1, "duplicate": False}
    batch = [
        {"user_id": 8, "product_id": 3, "event": e, "ts": "2026-11-01T10:00:00+08:00"}
        for e in ("click", "cart", "purchase")
    ]
    r = client.post("/v1/events", json={"events": batch})
    assert r.status_code == 201 and r.json()["accepted"] == 3
    w = [w for w in store_of(client).replay() if w.seq == r.json()["seq"]][0]
    assert [e["event"] for e in w.payload["events"]] == ["click", "cart", "purchase"]
    assert w.payload["events"][0]["ts"].isoformat() == "2026-11-01T02:00:00+00:00"
    # A live purchase is excluded from the buyer's next recommendations.
    recs = client.get("/v1/users/8/recommendations", params={"k": 50}).json()["data"]
    assert 3 not in [i["product"]["product_id"] for i in recs]


def test_follow_then_unfollow_changes_following(client: TestClient) -> None:
    following = client.get("/v1/users/9/following", params={"limit": 500}).json()
    new = next(u for u in range(100, 200) if u not in [f["user_id"] for f in following["data"]])
    r = client.post("/v1/follows", json={"follower_id": 9, "followee_id": new})
    assert r.status_code == 201
    assert r.json() == {
        "seq": r.json()["seq"],
        "op": "follow",
        "follower_id": 9,
        "followee_id": new,
        "duplicate": False,
    }
    after = client.get("/v1/users/9/following", params={"limit": 500}).json()
    assert new in [f["user_id"] for f in after["data"]]
    assert after["total"] == following["total"] + 1
    assert client.get("/v1/users/9").json()["following_count"] == following["total"] + 1
    r = client.delete("/v1/follows", params={"follower_id": 9, "followee_id": new})
    assert r.status_code == 200 and r.json()["op"] == "unfollow"
    assert client.get("/v1/users/9/following", params={"limit": 500}).json() == following


def test_retried_writes_are_applied_once(client: TestClient) -> None:
    headers = {"Idempotency-Key": "follow-10-11"}
    body = {"follower_id": 10, "followee_id": 11}
    first = client.post("/v1/follows", json=body, headers=headers)
    again = client.post("/v1/follows", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == {**first.json(), "duplicate": True}
    post = {"user_id": 12, "text": "retry me"}
    p1 = client.post("/v1/posts", json=post, headers={"Idempotency-Key": "post-12"})
    p2 = client.post("/v1/posts", json=post, headers={"Idempotency-Key": "post-12"})
    assert p2.status_code == 200 and p2.json()["post_id"] == p1.json()["post_id"]
    assert p2.json()["duplicate"] is True
    writes = [w for w in store_of(client).replay() if w.client_id in ("follow-10-11", "post-12")]
    assert len(writes) == 2
    r = client.post(
        "/v1/posts", json={**post, "text": "other"}, headers={"Idempotency-Key": "post-12"}
    )
    assert r.status_code == 409
    assert r.json() == {
        "error": "idempotency_conflict",
        "detail": "idempotency key 'post-12' was already used for a different post write",
    }
    r = client.post("/v1/follows", json=body, headers={"Idempotency-Key": "bad key with spaces"})
    assert r.status_code == 422


@pytest.mark.parametrize(
    ("path", "body", "detail"),
    [
        ("/v1/posts", {"user_id": 999999, "text": "hi"}, "unknown user id: 999999"),
        (
            "/v1/posts",
            {"user_id": 1, "text": "hi", "mentions": [999999]},
            "unknown user id: 999999",
        ),
        (
            "/v1/posts",
            {"user_id": 1, "text": "hi", "product_id": 999999},
            "unknown product id: 999999",
        ),
        (
            "/v1/posts",
            {"user_id": 1, "text": "hi", "repost_of": 999999999},
            "unknown post id: 999999999",
        ),
        (
            "/v1/events",
            {"user_id": 1, "product_id": 999999, "event": "view"},
            "unknown product id: 999999",
        ),
        (
            "/v1/events",
            {
                "events": [
                    {"user_id": 1, "product_id": 1, "event": "view"},
                    {"user_id": 999999, "product_id": 1, "event": "view"},
                ]
            },
            "unknown user id: 999999",
        ),
        ("/v1/follows", {"follower_id": 1, "followee_id": 999999}, "unknown user id: 999999"),
    ],
)
def test_unknown_ids_in_writes_are_404_and_not_stored(client, path, body, detail) -> None:
    before = store_of(client).counts()
    r = client.post(path, json=body)
    assert r.status_code == 404
    assert r.json() == {"error": "unknown_id", "detail": detail}
    assert store_of(client).counts() == before
    r = client.delete("/v1/follows", params={"follower_id": 999999, "followee_id": 1})
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/posts", {"user_id": 1}),
        ("/v1/posts", {"user_id": 1, "text": ""}),
        ("/v1/posts", {"user_id": 1, "text": "x" * 2001}),
        ("/v1/posts", {"user_id": 1, "text": "hi", "hashtags": ["a"] * 21}),
        ("/v1/posts", {"user_id": 1, "text": "hi", "k": 0}),
        ("/v1/posts", {"user_id": "one", "text": "hi"}),
        ("/v1/posts", {"user_id": 1, "text": "hi", "surprise": 1}),
        ("/v1/events", {"user_id": 1, "product_id": 1, "event": "like"}),
        ("/v1/events", {"events": []}),
        ("/v1/events", {"user_id": 1, "product_id": 1, "event": "view", "ts": "yesterday"}),
        ("/v1/follows", {"follower_id": 1}),
        ("/v1/follows", {"follower_id": -1, "followee_id": 2}),
        ("/v1/posts", "just a string"),
    ],
)
def test_invalid_write_bodies_are_422(client: TestClient, path, body) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"


def test_self_follow_is_422(client: TestClient) -> None:
    r = client.post("/v1/follows", json={"follower_id": 3, "followee_id": 3})
    assert r.status_code == 422
    assert r.json() == {
        "error": "invalid_request",
        "detail": "follower_id == followee_id: a person cannot follow themselves.",
    }


def test_body_too_large_is_413(client: TestClient) -> None:
    big = b'{"user_id": 1, "text": "' + b"x" * 1_100_000 + b'"}'
    r = client.post("/v1/posts", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"error": "payload_too_large", "detail": "request body too large"}

    def chunks():  # no Content-Length: counted while reading
        for _ in range(20):
            yield b"x" * 100_000

    r = client.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_writes_need_the_key_when_one_is_set(keyed_client: TestClient) -> None:
    body = {"follower_id": 20, "followee_id": 21}
    for headers in ({}, {"X-API-Key": "wrong"}, {"X-API-Key": API_KEY + "x"}):
        for method, path, kwargs in (
            ("post", "/v1/follows", {"json": body}),
            ("delete", "/v1/follows", {"params": body}),
            ("post", "/v1/posts", {"json": {"user_id": 20, "text": "hi"}}),
            ("post", "/v1/events", {"json": {"user_id": 20, "product_id": 1, "event": "view"}}),
            ("post", "/v1/admin/reload", {}),
        ):
            r = getattr(keyed_client, method)(path, headers=headers, **kwargs)
            assert r.status_code == 401, (path, headers)
            assert r.json()["error"] == "unauthorized"
    assert store_of(keyed_client).counts() == {"post": 0, "event": 0, "follow": 0, "unfollow": 0}
    r = keyed_client.post("/v1/follows", json=body, headers={"X-API-Key": API_KEY})
    assert r.status_code == 201


def test_writes_are_open_without_a_key(client: TestClient) -> None:
    r = client.post("/v1/events", json={"user_id": 22, "product_id": 1, "event": "view"})
    assert r.status_code == 201


def test_loopback_writes_for_the_demo(tmp_path, make_settings) -> None:
    settings = make_settings(tmp_path, api_key=API_KEY, demo_loopback_writes=True)
    body = {"user_id": 23, "product_id": 1, "event": "view"}
    with TestClient(create_app(settings), client=("127.0.0.1", 5000)) as local:
        assert local.post("/v1/events", json=body).status_code == 201
        assert local.post("/v1/admin/reload").status_code == 401  # admin still needs the key
    with TestClient(create_app(settings), client=("10.0.0.8", 5000)) as remote:
        assert remote.post("/v1/events", json=body).status_code == 401


def test_rate_limit_answers_429(tmp_path, make_settings) -> None:
    settings = make_settings(tmp_path, api_key=API_KEY, write_rate_limit="3/minute")
    body = {"user_id": 24, "product_id": 1, "event": "view"}
    with TestClient(create_app(settings)) as c:
        codes = [
            c.post("/v1/events", json=body, headers={"X-API-Key": API_KEY}).status_code
            for _ in range(5)
        ]
        assert codes == [201, 201, 201, 429, 429]
        r = c.post("/v1/events", json=body, headers={"X-API-Key": API_KEY})
        assert r.json() == {
            "error": "rate_limited",
            "detail": r.json()["detail"],
        }
        assert r.json()["detail"].startswith("write rate limit 3 per 1 minute exceeded")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert c.app.state.runtime.store.counts()["event"] == 3
        assert c.get("/v1/users/24").status_code == 200  # reads are not limited
        assert "socialcart_rate_limited_total 3.0" in c.get("/metrics").text


@pytest.mark.parametrize(
    ("path", "raw", "loc"),
    [
        ("/v1/posts", b'{"user_id": 1, "text": "\\ud800"}', ["body", "text"]),
        ("/v1/posts", b'{"user_id": 1, "text": "a\\u0000b"}', ["body", "text"]),
        (
            "/v1/posts",
            b'{"user_id": 1, "text": "hi", "hashtags": ["\\udfff"]}',
            ["body", "hashtags", 0],
        ),
        (
            "/v1/events",
            b'{"events": [{"user_id": 1, "product_id": 1, "event": "view", "ts": "0001-01-01"}]}',
            ["body", "EventBatch", "events", 0, "ts"],
        ),
    ],
)
def test_text_and_times_the_store_cannot_keep_are_422(client: TestClient, path, raw, loc) -> None:
    before = store_of(client).counts()
    r = client.post(path, content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert loc in [e["loc"] for e in r.json()["detail"]]
    assert store_of(client).counts() == before


def test_a_write_the_store_cannot_take_is_503_and_not_applied(tmp_path, make_settings) -> None:
    import sqlalchemy as sa

    with TestClient(create_app(make_settings(tmp_path))) as c:
        runtime = c.app.state.runtime

        def down(*args, **kwargs):
            raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

        runtime.store.append_many = down
        before = c.get("/v1/users/25/following").json()
        r = c.post("/v1/follows", json={"follower_id": 25, "followee_id": 999})
        assert r.status_code == 503
        assert r.json() == {
            "error": "unavailable",
            "detail": "the store is unavailable; nothing was stored",
        }
        assert r.headers["retry-after"] == "1"
        assert c.get("/v1/users/25/following").json() == before
