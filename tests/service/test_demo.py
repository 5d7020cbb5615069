"""The demo page's look-ups (``service/routes/demo.py``): people search, a person's posts
(dataset and live), categories, groups and the client config."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.service.conftest import API_KEY


def dataset_of(client: TestClient):
    return client.app.state.runtime.holder.dataset


def test_people_search_exact_handle_first(client: TestClient) -> None:
    users = dataset_of(client).users
    handle = str(users.loc[users["user_id"] == 5, "handle"].iloc[0])
    r = client.get("/v1/demo/people", params={"q": "@" + handle.upper(), "limit": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == len(body["data"]) >= 1
    assert body["data"][0]["user_id"] == 5 and body["data"][0]["handle"] == handle
    assert all(handle.lower() in p["handle"].lower() for p in body["data"])


def test_people_search_by_id_and_no_match(client: TestClient) -> None:
    assert client.get("/v1/demo/people", params={"q": "7"}).json()["data"][0]["user_id"] == 7
    r = client.get("/v1/demo/people", params={"q": "<img src=x>"})
    assert r.json() == {"data": [], "count": 0}


def test_people_without_query_are_kols_first(client: TestClient) -> None:
    users = dataset_of(client).users.set_index("user_id")
    body = client.get("/v1/demo/people", params={"limit": 8}).json()
    assert body["count"] == 8
    kols = [users.loc[p["user_id"], "is_kol"] for p in body["data"]]
    assert kols == sorted(kols, reverse=True) and kols[0]


def test_posts_are_the_datasets_newest_first(client: TestClient) -> None:
    posts = dataset_of(client).posts
    author = int(posts["user_id"].value_counts().index[0])
    own = posts[posts["user_id"] == author].sort_values("created_ts", ascending=False)
    body = client.get(f"/v1/demo/users/{author}/posts", params={"limit": 3}).json()
    assert body["user_id"] == author and body["count"] == 3
    assert [p["post_id"] for p in body["data"]] == own["post_id"].head(3).tolist()
    assert not any(p["live"] for p in body["data"])


def test_live_posts_come_first_with_mention_handles(client: TestClient) -> None:
    users = dataset_of(client).users.set_index("user_id")
    r = client.post("/v1/posts", json={"user_id": 40, "text": "hello #test#", "mentions": [41]})
    assert r.status_code == 201
    body = client.get("/v1/demo/users/40/posts", params={"limit": 2}).json()
    first = body["data"][0]
    assert first["post_id"] == r.json()["post_id"] and first["live"]
    assert first["text"] == "hello #test#" and first["hashtags"] == ["test"]
    assert first["mentions"] == [{"user_id": 41, "handle": users.loc[41, "handle"]}]


def test_posts_of_an_unknown_person(client: TestClient) -> None:
    r = client.get("/v1/demo/users/999999/posts")
    assert r.status_code == 404 and r.json()["error"] == "unknown_id"


def test_categories_and_groups(client: TestClient) -> None:
    dataset = dataset_of(client)
    body = client.get("/v1/demo/categories").json()
    top = dataset.products["category_path"].str.split("/").str[0].value_counts()
    assert body["data"] == [{"name": n, "products": int(c)} for n, c in top.items()]
    groups = client.get("/v1/demo/groups", params={"limit": 3}).json()
    assert groups["count"] == 3
    members = dataset.group_members
    for g in groups["data"]:
        ids = sorted(members.loc[members["group_id"] == g["group_id"], "user_id"])[:20]
        assert [m["user_id"] for m in g["members"]] == ids


def test_config_says_whether_writes_need_the_key(client, keyed_client) -> None:
    assert client.get("/v1/demo/config").json()["write_key_required"] is False
    keyed = keyed_client.get("/v1/demo/config").json()
    assert keyed["write_key_required"] is True and keyed["read_key_required"] is False
    assert keyed_client.get("/v1/demo/config", headers={"X-API-Key": API_KEY}).status_code == 200


def test_post_archive_reads_each_authors_posts_newest_first_across_chunks(
    client: TestClient,
) -> None:
    """Chunks of 7 rows: most people's posts straddle a boundary."""
    from service.catalog import PostArchive

    posts = dataset_of(client).posts
    archive = PostArchive(posts, chunk_rows=7)
    for author, own in list(posts.groupby("user_id"))[:150]:
        own = own.sort_values("created_ts", ascending=False)
        assert own["created_ts"].is_unique  # else "newest first" would be ambiguous
        got = archive.of(int(author), 1000)
        assert [p["post_id"] for p in got] == own["post_id"].tolist()
        assert [p["post_id"] for p in archive.of(int(author), 2)] == own["post_id"].tolist()[:2]
        assert archive.counts[author] == len(own)
    first = got[0]
    row = own.iloc[0]
    assert first["text"] == row["text"] and first["hashtags"] == list(row["hashtags"])
    assert first["created_ts"] == row["created_ts"].to_pydatetime()
    assert archive.of(10**9, 5) == [] and archive.of(int(author), 0) == []
