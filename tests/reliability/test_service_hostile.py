"""Hostile text over HTTP: SQL fragments, HTML and JavaScript, control characters, emoji,
mixed scripts, 1 MB strings. Each is stored and returned exactly as sent, or refused with
413/422 and nothing stored; never a 500. Checked on SQLite and PostgreSQL, over HTTP and
in the store's rows, and through a restart (the stored posts replay into a new model)."""

from __future__ import annotations

import ast
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

import service
from service.app import create_app

HOSTILE: dict[str, str] = {
    "sql quote": "'; DROP TABLE writes; --",
    "sql union": '" OR 1=1 UNION SELECT client_id, kind FROM writes --',
    "sql stacked": "1); DELETE FROM posts WHERE (1=1",
    "sql sleep": "'||pg_sleep(10)||' /* */ ; SELECT sqlite_version(); --",
    "sql placeholders": "100% _x_ %s %(text)s :text ? $1 {0} \\ \\\\ \\'",
    "html script": "<script>alert('xss')</script>",
    "html attributes": '<img src=x onerror="alert(1)"> &amp; &lt;b&gt; <!-- -->',
    "javascript url": "javascript:alert(document.cookie)//",
    "control characters": "".join(chr(c) for c in range(1, 32)) + "\x7f",
    "c1 controls": "x" + "".join(chr(c) for c in range(0x80, 0xA0)) + "x",
    "line breaks": "a\u2028b\u2029c\r\nd\re\n",
    "bidi overrides": "\u202egnp.exe\u202c \u200f\u200e \u2066x\u2069",
    "zero width": "a\u200bb\u200cc\u200dd\ufeffe",
    "emoji": "😀👍🏽👨‍👩‍👧‍👦🏳️‍🌈🇨🇳 🧴",
    "mixed scripts": "减肥 ダイエット 다이어트 похудеть التخسيس ลดน้ำหนัก Ελληνικά עברית हिन्दी",
    "combining marks": "e\u0301\u0301\u0301 Z\u0324\u0354\u0367\u0311\u0313",
    "astral and noncharacters": "\U0001d54f\U00010348\U0010fffd\ufffe\uffff\U0010ffff",
    "json inside": '{"user_id": 1, "text": "\\u0000"} \\" ]}',
    "whitespace only": "   \t  ",
    "2000 characters": "界" * 1999 + "😀",
    "weibo topics": "#'; DROP TABLE posts;--# and #<b>bold</b>#",
}
"""Accepted texts (each under 2000 characters and without NUL)."""
TOPICS = {"weibo topics": ["'; DROP TABLE posts;--", "<b>bold</b>"]}
"""Hashtags the service takes from ``#topic#`` in a text."""

MB = 1_000_000


def refused_posts(user: int) -> dict[str, tuple[bytes | dict, int]]:
    """Bodies the service must refuse: name -> (JSON body or raw bytes, status)."""
    return {
        "NUL": ({"user_id": user, "text": "a\x00b"}, 422),
        "NUL in a hashtag": ({"user_id": user, "text": "a", "hashtags": ["x\x00"]}, 422),
        "lone surrogate": (b'{"user_id": %d, "text": "a\\ud800b"}' % user, 422),
        "lone surrogate in a hashtag": (
            b'{"user_id": %d, "text": "a", "hashtags": ["\\udfff"]}' % user,
            422,
        ),
        # FastAPI's answer to a body it cannot decode (JSON syntax errors are 422).
        "bytes that are not UTF-8": (b'{"user_id": %d, "text": "\xff\xfe"}' % user, 400),
        "JSON syntax error": (b'{"user_id": %d, "text": "a"' % user, 422),
        "empty text": ({"user_id": user, "text": ""}, 422),
        "2001 characters": ({"user_id": user, "text": "a" * 2001}, 422),
        "900 kB of text": ({"user_id": user, "text": "a" * 900_000}, 422),
        "1 MB of text": ({"user_id": user, "text": "a" * MB}, 413),
        "1 MB of emoji": ({"user_id": user, "text": "😀" * (MB // 4)}, 413),
        "1 MB hashtag": ({"user_id": user, "text": "a", "hashtags": ["b" * MB]}, 413),
        "65-character hashtag": ({"user_id": user, "text": "a", "hashtags": ["b" * 65]}, 422),
        "21 hashtags": ({"user_id": user, "text": "a", "hashtags": ["b"] * 21}, 422),
        "text not a string": ({"user_id": user, "text": ["'; DROP TABLE writes; --"]}, 422),
        "unknown field": ({"user_id": user, "text": "a", "sql": "DROP TABLE writes"}, 422),
        "user id as SQL": ({"user_id": "1 OR 1=1", "text": "a"}, 422),
    }


def hashtags_for(text: str) -> list[str]:
    """The text as a hashtag too, when it is one as given (1-64 characters, no surrounding
    whitespace or ``#``, which the service trims)."""
    return [text] if 1 <= len(text) <= 64 and text == text.strip().strip("#") else []


def post(client: TestClient, body, headers=None):
    if isinstance(body, bytes):
        headers = {"Content-Type": "application/json", **(headers or {})}
        return client.post("/v1/posts", content=body, headers=headers)
    return client.post("/v1/posts", json=body, headers=headers)


def test_hostile_text_round_trips_or_is_refused(tmp_path, make_settings, store_settings) -> None:
    settings = make_settings(tmp_path, **store_settings)
    tried = 0
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        store = c.app.state.runtime.store
        sent: dict[int, tuple[int, str, list[str]]] = {}  # post id -> user, text, hashtags
        for n, (name, text) in enumerate(HOSTILE.items()):
            user = 130 + n
            tags = hashtags_for(text)
            r = post(c, {"user_id": user, "text": text, "hashtags": tags})
            tried += 1
            assert r.status_code == 201, (name, r.status_code, r.text[:300])
            sent[r.json()["post_id"]] = (user, text, tags + TOPICS.get(name, []))

        # Over HTTP: the person's posts return each text and hashtag exactly.
        for post_id, (user, text, tags) in sent.items():
            posts = c.get(f"/v1/demo/users/{user}/posts", params={"limit": 5}).json()["data"]
            mine = [p for p in posts if p["post_id"] == post_id]
            assert len(mine) == 1 and mine[0]["live"] is True
            assert mine[0]["text"].encode() == text.encode(), (text, mine[0]["text"])
            assert mine[0]["hashtags"] == tags
            assert c.get(f"/v1/users/{user}/recommendations").status_code == 200
        # In the store's rows.
        with store.engine.connect() as conn:
            rows = conn.execute(sa.select(store.posts)).all()
        assert {r.post_id: (r.user_id, r.text, list(r.hashtags)) for r in rows} == sent

        # Refused, and nothing stored.
        before = store.counts()
        for name, (body, status) in refused_posts(150).items():
            r = post(c, body)
            tried += 1
            assert r.status_code == status, (name, r.status_code, r.text[:300])
            assert r.json()["error"] in ("invalid_request", "payload_too_large", "bad_request")
        assert store.counts() == before

        # Other text inputs: idempotency keys (1-128 printable ASCII, no space) with SQL in
        # them are stored as given (a retry finds them); people search, category filter,
        # request ids, reload paths.
        for n, key in enumerate(
            ["';DROP/**/TABLE/**/writes;--", '"OR""="', "%_\\%s$1?:x", "<script>", "a" * 128]
        ):
            body = {"user_id": 160 + n, "product_id": 1, "event": "view"}
            first = c.post("/v1/events", json=body, headers={"Idempotency-Key": key})
            again = c.post("/v1/events", json=body, headers={"Idempotency-Key": key})
            tried += 2
            assert (first.status_code, again.status_code) == (201, 200), key
            assert store.get(key).seq == first.json()["seq"] == again.json()["seq"]
        for key in [b"a" * 129, "é".encode(), b"a\tb", b"x" * MB, b""]:
            r = c.post(
                "/v1/events",
                json={"user_id": 1, "product_id": 1, "event": "view"},
                headers={"Idempotency-Key": key},
            )
            tried += 1
            assert r.status_code == 422, (key[:20], r.status_code)
        for text in [*HOSTILE.values(), "a" * 60_000, "\x00"]:  # URLs stop at 64 kB
            for path, params in [
                ("/v1/demo/people", {"q": text}),
                ("/v1/users/1/recommendations", {"category": text}),
            ]:
                r = c.get(path, params=params)
                tried += 1
                assert r.status_code in (200, 422), (path, text[:40], r.status_code)
                if r.status_code == 200 and path.endswith("recommendations"):
                    assert r.json()["data"] == []  # no category has that name
            r = c.get("/healthz", headers={"X-Request-ID": text.encode()[:4096]})
            tried += 1
            assert r.status_code == 200 and len(r.headers["x-request-id"]) == 32
            r = c.post("/v1/admin/reload", json={"model_dir": text})
            tried += 1
            assert r.status_code == 422, (text[:40], r.status_code, r.text[:200])
        r = c.post("/v1/admin/reload", json={"model_dir": "a" * MB})
        tried += 1
        assert r.status_code == 413
        assert store.counts()["post"] == len(HOSTILE)

    # A restart replays every hostile post into a new model; none is skipped.
    with TestClient(create_app(settings)) as c:
        assert c.app.state.runtime.replayed_at_start == store.counts()["post"] + 5
        assert "socialcart_live_updates_skipped_total{" not in c.get("/metrics").text
        for user, _, _ in sent.values():
            assert c.get(f"/v1/users/{user}/recommendations").status_code == 200
    print(
        f"\nRELIABILITY hostile ({store.engine.dialect.name}): {tried} hostile requests, "
        f"{len(HOSTILE)} texts stored exactly, {len(refused_posts(0))} posts refused, 0 errors"
    )


def test_the_service_sends_no_sql_built_from_strings() -> None:
    """Every SQL statement the service runs is SQLAlchemy Core or a constant string: no
    value can reach the database except as a bound parameter."""
    root = Path(service.__file__).parent
    built = []
    for file in sorted(root.rglob("*.py")):
        tree = ast.parse(file.read_text(), filename=str(file))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            first = node.args[0]
            constant = isinstance(first, ast.Constant)
            if name in ("text", "exec_driver_sql") and not constant:
                built.append(f"{file.name}:{node.lineno}")
            formatted = isinstance(first, ast.JoinedStr | ast.BinOp) or (
                isinstance(first, ast.Call) and getattr(first.func, "attr", "") == "format"
            )
            if name in ("execute", "executemany") and formatted:
                built.append(f"{file.name}:{node.lineno}")
    assert built == []
