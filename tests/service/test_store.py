"""The write store on SQLite and (when a test database URL is given) PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from service.store import POST_ID_BASE, IdempotencyConflict, Store, normalise_url

POST = {
    "user_id": 1,
    "text": "trying to lose weight before summer",
    "hashtags": ["减肥"],
    "mentions": [2, 3],
    "product_id": None,
    "repost_of": None,
}
EVENTS = {
    "events": [
        {"user_id": 1, "product_id": 5, "event": "view", "ts": None, "via_post_id": None},
        {
            "user_id": 1,
            "product_id": 5,
            "event": "purchase",
            "ts": datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC),
            "via_post_id": 7,
        },
    ]
}


def test_append_commits_and_replay_returns_writes_in_order(store: Store) -> None:
    post = store.append("post", POST, client_id="p1").write
    events = store.append("event", EVENTS, client_id="e1").write
    follow = store.append("follow", {"follower_id": 1, "followee_id": 2}).write
    unfollow = store.append("unfollow", {"follower_id": 1, "followee_id": 2}).write
    assert post.seq < events.seq < follow.seq < unfollow.seq
    assert post.payload == {**POST, "post_id": POST_ID_BASE + post.seq}

    # A second store on the same database (a restart) sees every committed write.
    again = Store(store.url, table_prefix=store.writes.name[: -len("writes")])
    replayed = list(again.replay())
    again.close()
    assert [w.seq for w in replayed] == [post.seq, events.seq, follow.seq, unfollow.seq]
    assert [w.kind for w in replayed] == ["post", "event", "follow", "unfollow"]
    assert replayed[0].payload == post.payload
    assert replayed[1].payload == EVENTS
    assert replayed[2].payload == {"follower_id": 1, "followee_id": 2}
    assert replayed[1].client_id == "e1"
    assert all(w.created_at.tzinfo is not None for w in replayed)
    assert store.counts() == {"post": 1, "event": 1, "follow": 1, "unfollow": 1}


def test_replay_since_and_after_seq_and_batches(store: Store) -> None:
    old = datetime(2026, 3, 1, tzinfo=UTC)
    store.append("follow", {"follower_id": 1, "followee_id": 2}, created_at=old)
    new = [
        store.append("follow", {"follower_id": 1, "followee_id": 10 + j}).write.seq
        for j in range(5)
    ]
    since = old + timedelta(days=1)
    assert [w.seq for w in store.replay(since)] == new
    assert [w.seq for w in store.replay(since, batch=2)] == new
    assert [w.seq for w in store.replay(since, after_seq=new[2])] == new[3:]
    assert len(list(store.replay())) == 6


def test_same_client_id_is_stored_once(store: Store) -> None:
    first = store.append("post", POST, client_id="retry-me")
    second = store.append("post", POST, client_id="retry-me")
    assert not first.duplicate and second.duplicate
    assert second.write == first.write
    assert store.counts()["post"] == 1
    with pytest.raises(IdempotencyConflict, match="'retry-me' was already used"):
        store.append("post", {**POST, "text": "something else"}, client_id="retry-me")
    with pytest.raises(IdempotencyConflict):
        store.append("follow", {"follower_id": 1, "followee_id": 2}, client_id="retry-me")
    assert store.get("retry-me") == first.write
    assert store.get("never-used") is None


def test_unknown_kind_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match=r"kind == 'like', must be one of"):
        store.append("like", {})


def test_ping_and_table_prefixes_keep_stores_apart(store: Store) -> None:
    store.ping()
    other = Store(store.url, table_prefix="other_").create()
    try:
        other.append("follow", {"follower_id": 1, "followee_id": 2})
        assert store.counts()["follow"] == 0
    finally:
        other.drop()
        other.close()


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}").create()
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(sa.text("PRAGMA synchronous")).scalar() == 2  # FULL
    store.close()


def test_postgres_urls_use_psycopg3() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_replay_can_skip_writes_before_reading_them(store: Store) -> None:
    seqs = [
        store.append("follow", {"follower_id": 1, "followee_id": 10 + j}).write.seq
        for j in range(5)
    ]
    skipped = set(seqs[1:4])
    replayed = list(store.replay(skip=skipped.__contains__, batch=2))
    assert [w.seq for w in replayed] == [seqs[0], seqs[4]]
    assert replayed[1].payload == {"follower_id": 1, "followee_id": 14}


def test_sqlite_writers_queue_on_an_os_lock_beside_the_file(tmp_path) -> None:
    """A second store on the same file (another worker process) waits on the writer lock
    and writes as soon as it is released."""
    first = Store(f"sqlite:///{tmp_path / 's.db'}").create()
    second = Store(f"sqlite:///{tmp_path / 's.db'}").create()
    assert first.writer_lock.path == tmp_path / "s.db.writer-lock"
    done = threading.Event()

    def write() -> None:
        second.append("follow", {"follower_id": 1, "followee_id": 2}, client_id="w")
        done.set()

    with first.writer_lock.hold():
        thread = threading.Thread(target=write)
        thread.start()
        assert not done.wait(0.3)  # flock is per open file: the second store waits
    assert done.wait(5)
    thread.join()
    assert first.get("w") is not None
    first.close()
    second.close()


def test_sqlite_store_without_a_lock_file_still_writes(tmp_path) -> None:
    """Where the lock file cannot be opened, SQLite's own busy handler serialises writers."""
    (tmp_path / "s.db.writer-lock").mkdir()  # a directory cannot be opened for writing
    store = Store(f"sqlite:///{tmp_path / 's.db'}").create()
    store.append("follow", {"follower_id": 1, "followee_id": 2}, client_id="w")
    store.ping()
    assert store.get("w").payload == {"follower_id": 1, "followee_id": 2}
    store.close()
    memory = Store("sqlite://")
    assert memory.writer_lock.path is None
    memory.close()
