"""Read endpoints: whole bodies, filters, limits and every error status."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.service.conftest import API_KEY


def holder_of(client: TestClient):
    return client.app.state.runtime.holder


def product_json(dataset, product_id: int) -> dict:
    row = dataset.products.set_index("product_id").loc[product_id]
    return {
        "product_id": product_id,
        "title": row["title"],
        "price": float(row["price"]),
        "shop_id": int(row["shop_id"]),
        "shop_name": row["shop_name"],
        "category_path": row["category_path"],
        "brand": row["brand"],
    }


def test_recommendations_whole_body(client: TestClient) -> None:
    holder = holder_of(client)
    r = client.get("/v1/users/2/recommendations", params={"k": 5})
    assert r.status_code == 200
    expected = holder.model.recommend([2], k=5)
    data = [
        {
            "rank": int(row.rank),
            "product": product_json(holder.dataset, int(row.product_id)),
            "score": pytest.approx(float(row.score)),
            "source": "hybrid",
            "reasons": row.reasons,
        }
        for row in expected.itertuples()
    ]
    body = r.json()
    assert body == {"user_id": 2, "model_version": holder.version, "data": data, "count": 5}
    assert r.headers["x-model-version"] == holder.version
    assert all(item["reasons"] for item in body["data"])  # reasons on by default


def test_recommendation_filters(client: TestClient) -> None:
    r = client.get(
        "/v1/users/2/recommendations",
        params={"k": 20, "category": "Health", "max_price": 300, "explain": False},
    )
    body = r.json()
    assert r.status_code == 200 and body["count"] == len(body["data"]) > 0
    for item in body["data"]:
        assert item["product"]["category_path"].startswith("Health/")
        assert item["product"]["price"] <= 300
        assert item["reasons"] == []
    first = body["data"][0]["product"]["product_id"]
    r = client.get(
        "/v1/users/2/recommendations",
        params={"k": 20, "category": "Health", "max_price": 300, "exclude": [first]},
    )
    assert first not in [i["product"]["product_id"] for i in r.json()["data"]]
    r = client.get("/v1/users/2/recommendations", params={"k": 20, "min_price": 500})
    assert all(i["product"]["price"] >= 500 for i in r.json()["data"])


def test_diversity_caps_each_category(client: TestClient) -> None:
    r = client.get("/v1/users/3/recommendations", params={"k": 12, "max_per_category": 1})
    cats = [i["product"]["category_path"] for i in r.json()["data"]]
    assert len(cats) == len(set(cats)) > 1
    assert [i["rank"] for i in r.json()["data"]] == list(range(1, len(cats) + 1))


def test_similar_products(client: TestClient) -> None:
    holder = holder_of(client)
    r = client.get("/v1/products/3/similar", params={"k": 4})
    expected = holder.model.similar_products(3, k=4)
    assert r.status_code == 200
    assert r.json() == {
        "product_id": 3,
        "data": [
            {
                "rank": rank,
                "product": product_json(holder.dataset, int(row.product_id)),
                "score": pytest.approx(float(row.score)),
                "reasons": row.reasons,
            }
            for rank, row in enumerate(expected.itertuples(), start=1)
        ],
        "count": 4,
    }


def test_share_targets(client: TestClient) -> None:
    holder = holder_of(client)
    r = client.get("/v1/users/1/share-targets", params={"product_id": 3, "k": 3})
    expected = holder.model.share_targets(1, 3, k=3)
    assert r.status_code == 200
    assert r.json() == {
        "user_id": 1,
        "product_id": 3,
        "data": [
            {
                "user_id": int(row.user_id),
                "handle": row.handle,
                "score": pytest.approx(float(row.score)),
                "reasons": row.reasons,
            }
            for row in expected.itertuples()
        ],
        "count": len(expected),
    }


def test_group_recommendations_by_members_and_by_group(client: TestClient) -> None:
    r = client.post(
        "/v1/groups/recommendations",
        json={"user_ids": [3, 1, 2, 2], "k": 3, "strategy": "least_misery"},
    )
    body = r.json()
    assert r.status_code == 200
    assert body["user_ids"] == [1, 2, 3] and body["group_id"] is None
    assert body["strategy"] == "least_misery" and body["count"] == len(body["data"]) <= 3
    for item in body["data"]:
        assert [m["user_id"] for m in item["member_scores"]] == [1, 2, 3]
        assert item["reasons"][0]["type"] == "group_fit"
    dataset = holder_of(client).dataset
    members = dataset.group_members.query("group_id == 1")["user_id"].sort_values().tolist()
    r = client.post("/v1/groups/recommendations", json={"group_id": 1, "k": 2})
    assert r.status_code == 200
    assert r.json()["user_ids"] == members and r.json()["count"] == 2


def test_user_product_and_following(client: TestClient, service_data) -> None:
    from recommender.dataset import Dataset

    holder = holder_of(client)
    users = holder.dataset.users.set_index("user_id")
    # From the dataset on disk: a serving holder releases its follows table.
    follows = Dataset.load(service_data.dataset_dir).follows
    followees = sorted(follows.query("follower_id == 4")["followee_id"].astype(int).tolist())
    r = client.get("/v1/users/4")
    row = users.loc[4]
    assert r.status_code == 200
    assert r.json() == {
        "user_id": 4,
        "handle": row["handle"],
        "gender": row["gender"],
        "age_band": row["age_band"],
        "city_tier": int(row["city_tier"]),
        "device": row["device"],
        "is_kol": bool(row["is_kol"]),
        "signup_ts": row["signup_ts"].isoformat().replace("+00:00", "Z"),
        "following_count": len(followees),
    }
    r = client.get("/v1/users/4/following", params={"limit": 2, "offset": 1})
    page = followees[1:3]
    assert r.json() == {
        "user_id": 4,
        "data": [
            {"user_id": u, "handle": users.loc[u, "handle"], "is_kol": bool(users.loc[u, "is_kol"])}
            for u in page
        ],
        "count": len(page),
        "total": len(followees),
        "limit": 2,
        "offset": 1,
    }
    r = client.get("/v1/products/7")
    products = holder.dataset.products.set_index("product_id")
    assert r.json() == {
        **product_json(holder.dataset, 7),
        "description": products.loc[7, "description"],
    }


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "detail"),
    [
        ("get", "/v1/users/999999/recommendations", {}, "unknown user id: 999999"),
        ("get", "/v1/users/999999", {}, "unknown user id: 999999"),
        ("get", "/v1/users/999999/following", {}, "unknown user id: 999999"),
        ("get", "/v1/products/999999", {}, "unknown product id: 999999"),
        ("get", "/v1/products/999999/similar", {}, "unknown product id: 999999"),
        (
            "get",
            "/v1/users/1/share-targets",
            {"params": {"product_id": 999999}},
            "unknown product id: 999999",
        ),
        (
            "post",
            "/v1/groups/recommendations",
            {"json": {"user_ids": [1, 999999]}},
            "unknown user id: 999999",
        ),
        (
            "post",
            "/v1/groups/recommendations",
            {"json": {"group_id": 999999}},
            "unknown group id: 999999",
        ),
    ],
)
def test_unknown_ids_are_404(client: TestClient, method, path, kwargs, detail) -> None:
    r = getattr(client, method)(path, **kwargs)
    assert r.status_code == 404
    assert r.json() == {"error": "unknown_id", "detail": detail}


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/v1/users/1/recommendations", {"k": 0}, ["query", "k"]),
        ("/v1/users/1/recommendations", {"k": 101}, ["query", "k"]),
        ("/v1/users/1/recommendations", {"k": "ten"}, ["query", "k"]),
        ("/v1/users/1/recommendations", {"min_price": -1}, ["query", "min_price"]),
        ("/v1/users/1/recommendations", {"max_per_category": 0}, ["query", "max_per_category"]),
        ("/v1/users/abc/recommendations", {}, ["path", "user_id"]),
        ("/v1/users/-1", {}, ["path", "user_id"]),
        ("/v1/users/99999999999999999999999", {}, ["path", "user_id"]),
        ("/v1/users/1/following", {"limit": 0}, ["query", "limit"]),
        ("/v1/users/1/following", {"offset": -1}, ["query", "offset"]),
        ("/v1/users/1/share-targets", {}, ["query", "product_id"]),
        ("/v1/products/1/similar", {"k": 1000}, ["query", "k"]),
    ],
)
def test_invalid_parameters_are_422(client: TestClient, path, params, loc) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid_request"
    assert [e["loc"] for e in body["detail"]] == [loc]


def test_invalid_group_bodies_are_422(client: TestClient) -> None:
    for body in (
        {},
        {"user_ids": [1], "group_id": 1},
        {"user_ids": []},
        {"user_ids": [1], "strategy": "loudest"},
        {"user_ids": [1], "k": 0},
        {"user_ids": [1], "extra": True},
        [1, 2],
    ):
        r = client.post("/v1/groups/recommendations", json=body)
        assert r.status_code == 422, body
        assert r.json()["error"] == "invalid_request"
    r = client.post(
        "/v1/groups/recommendations",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422


def test_reads_are_open_by_default_and_closed_with_read_auth(
    keyed_client: TestClient, tmp_path, make_settings
) -> None:
    assert keyed_client.get("/v1/users/1").status_code == 200
    from service.app import create_app

    with TestClient(create_app(make_settings(tmp_path, api_key=API_KEY, read_auth=True))) as c:
        for headers in ({}, {"X-API-Key": "wrong"}):
            r = c.get("/v1/users/1/recommendations", headers=headers)
            assert r.status_code == 401
            assert r.json() == {
                "error": "unauthorized",
                "detail": "missing or wrong API key: send the service's key in the X-API-Key "
                "header",
            }
            assert r.headers["www-authenticate"] == "ApiKey"
        r = c.get("/v1/users/1/recommendations", headers={"X-API-Key": API_KEY})
        assert r.status_code == 200
        assert c.get("/healthz").status_code == 200  # operations stay open


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json() == {"error": "not_found", "detail": "Not Found"}
    r = client.put("/v1/users/1")
    assert r.status_code == 405
    assert r.json() == {"error": "method_not_allowed", "detail": "Method Not Allowed"}


def test_following_pagination_beyond_the_end(client: TestClient, service_data) -> None:
    from recommender.dataset import Dataset

    follows = Dataset.load(service_data.dataset_dir).follows
    r = client.get("/v1/users/4/following", params={"offset": 10_000})
    body = r.json()
    assert r.status_code == 200 and body["data"] == [] and body["count"] == 0
    assert body["total"] == int(np.sum(follows["follower_id"] == 4)) > 0
