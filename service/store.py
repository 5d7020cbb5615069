"""The write store: every accepted post, event batch, follow and unfollow, durably.

One SQLAlchemy Core code path for SQLite (WAL journal, ``synchronous=FULL``) and PostgreSQL
(psycopg 3). A write is one row of ``writes`` — a global, monotonically increasing ``seq``,
the client's idempotency id (unique), its kind, the time the server accepted it and a hash
of its content — plus its typed rows in ``posts``, ``events`` or ``follows``, inserted in the
same transaction. :meth:`Store.append` returns only after the transaction has committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's own busy handler only
    fcntl = None

WRITE_KINDS = ("post", "event", "follow", "unfollow")
POST_ID_BASE = 10**12
"""Posts created through the service get ids ``POST_ID_BASE + seq`` (above any dataset's)."""

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite autoincrements INTEGER


class IdempotencyConflict(Exception):
    """A client id that was already used for a different write."""

    def __init__(self, client_id: str, kind: str) -> None:
        self.client_id = client_id
        self.kind = kind
        super().__init__(
            f"idempotency key {client_id!r} was already used for a different {kind} write"
        )


@dataclass(frozen=True)
class StoredWrite:
    """One committed write. ``payload`` by kind:

    - ``post``: post_id, user_id, text, hashtags, mentions, product_id, repost_of;
    - ``event``: events — a list of {user_id, product_id, event, ts, via_post_id};
    - ``follow`` / ``unfollow``: follower_id, followee_id.
    """

    seq: int
    client_id: str
    kind: str
    created_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class AppendResult:
    write: StoredWrite
    duplicate: bool
    """True when the client id had already been stored with the same content."""


def to_us(ts: datetime) -> int:
    """Microseconds since the epoch of an aware (or UTC-naive) datetime."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 (SQLAlchemy's default is psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _content_hash(kind: str, payload: dict[str, Any]) -> str:
    content = {k: v for k, v in payload.items() if k != "post_id"}
    text = json.dumps([kind, content], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class WriterLock:
    """Writers of one SQLite file take turns on an OS lock (``flock`` on a file beside the
    database) before they open their transaction.

    SQLite lets one writer in at a time; the others' busy handler sleeps between tries
    (1, 2, 5, 10, ... up to 100 ms), so with several worker processes writing at once a
    write waited tens to hundreds of milliseconds for a lock released long before. A
    process blocked on ``flock`` wakes as soon as the holder lets go. Without a lock file
    (in-memory database, a directory that cannot be written, not POSIX) writers fall back
    to SQLite's handler: slower under contention, still correct."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._threads = threading.Lock()  # flock is per open file, not per thread
        self._fd: int | None = None
        self._pid: int | None = None

    def _open(self) -> int | None:
        if self.path is None or fcntl is None:
            return None
        if self._fd is not None and self._pid == os.getpid():
            return self._fd
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
        self._pid = os.getpid()
        return self._fd

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if self.path is None or fcntl is None:  # a server database orders its own writers
            yield
            return
        with self._threads:
            fd = self._open()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None


def _sqlite_file(engine: Engine) -> Path | None:
    """The database file of a SQLite engine (None: in memory, or not SQLite)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


class Store:
    """The durable write log. ``table_prefix`` lets several stores share one database."""

    def __init__(self, url: str, *, table_prefix: str = "") -> None:
        self.url = normalise_url(url)
        self.engine = self._engine(self.url)
        db_file = _sqlite_file(self.engine)
        self.writer_lock = WriterLock(
            None if db_file is None else db_file.with_name(db_file.name + ".writer-lock")
        )
        self.metadata = sa.MetaData()
        p = table_prefix
        self.writes = sa.Table(
            f"{p}writes",
            self.metadata,
            sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
            sa.Column("client_id", sa.String(128), nullable=False, unique=True),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("content_hash", sa.String(64), nullable=False),
            sa.Column("created_us", sa.BigInteger, nullable=False, index=True),
        )
        fk = f"{p}writes.seq"
        self.posts = sa.Table(
            f"{p}posts",
            self.metadata,
            sa.Column("seq", _SEQ, sa.ForeignKey(fk), primary_key=True, autoincrement=False),
            sa.Column("post_id", sa.BigInteger, nullable=False, unique=True),
            sa.Column("user_id", sa.BigInteger, nullable=False),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("hashtags", sa.JSON, nullable=False),
            sa.Column("mentions", sa.JSON, nullable=False),
            sa.Column("product_id", sa.BigInteger),
            sa.Column("repost_of", sa.BigInteger),
        )
        self.events = sa.Table(
            f"{p}events",
            self.metadata,
            sa.Column("id", _SEQ, primary_key=True, autoincrement=True),
            sa.Column("seq", _SEQ, sa.ForeignKey(fk), nullable=False, index=True),
            sa.Column("user_id", sa.BigInteger, nullable=False),
            sa.Column("product_id", sa.BigInteger, nullable=False),
            sa.Column("event", sa.String(16), nullable=False),
            sa.Column("ts_us", sa.BigInteger),
            sa.Column("via_post_id", sa.BigInteger),
        )
        self.follows = sa.Table(
            f"{p}follows",
            self.metadata,
            sa.Column("seq", _SEQ, sa.ForeignKey(fk), primary_key=True, autoincrement=False),
            sa.Column("op", sa.String(8), nullable=False),
            sa.Column("follower_id", sa.BigInteger, nullable=False),
            sa.Column("followee_id", sa.BigInteger, nullable=False),
        )
        # One row, rewritten by the readiness probe on SQLite (see ``ping``).
        self.probe = sa.Table(
            f"{p}probe",
            self.metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("checked_us", sa.BigInteger, nullable=False),
        )

    @staticmethod
    def _engine(url: str) -> Engine:
        if url.startswith("sqlite"):
            engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_connection, _record) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

            return engine
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)

    # ------------------------------------------------------------ lifecycle
    def create(self) -> Store:
        """Create the tables that do not exist yet. Returns ``self``.

        Worker processes starting together race to create them; the loser's error is
        retried (the tables exist by then)."""
        for attempt in range(5):
            try:
                self.metadata.create_all(self.engine)
                return self
            except sa.exc.DBAPIError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
        return self

    def drop(self) -> None:
        """Drop this store's tables (tests)."""
        self.metadata.drop_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()
        self.writer_lock.close()

    def ping(self) -> None:
        """Raise unless the store can take a write. ``SELECT 1``; on SQLite also a rewrite of
        the ``probe`` row, because a database file that can no longer be written (read-only
        or immutable file, full disk) still answers ``SELECT 1``. A PostgreSQL server
        answers for its own disk."""
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        if self.engine.dialect.name == "sqlite":
            with self.writer_lock.hold(), self.engine.begin() as conn:
                conn.execute(self.probe.delete())
                conn.execute(self.probe.insert().values(id=1, checked_us=to_us(datetime.now(UTC))))

    # --------------------------------------------------------------- writes
    def append(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        client_id: str | None = None,
        created_at: datetime | None = None,
    ) -> AppendResult:
        """Store one write and commit. A client id seen before returns the stored write
        (``duplicate=True``) when the content is the same and raises
        :class:`IdempotencyConflict` when it differs. Posts get their id here."""
        result = self.append_many([(kind, payload, client_id)], created_at=created_at)[0]
        if isinstance(result, Exception):
            raise result
        return result

    def append_many(
        self,
        writes: Sequence[tuple[str, dict[str, Any], str | None]],
        *,
        created_at: datetime | None = None,
    ) -> list[AppendResult | IdempotencyConflict]:
        """Store several writes ``(kind, payload, client_id)`` in one transaction, one
        commit (group commit: one flush to disk for all), in order. Each gets its result
        as :meth:`append` would answer it alone: a client id stored before, or earlier in
        the same batch, is a duplicate or an :class:`IdempotencyConflict` (returned in its
        place, not raised). A store error raises and stores none of them."""
        for kind, _, _ in writes:
            if kind not in WRITE_KINDS:
                raise ValueError(f"kind == {kind!r}, must be one of {list(WRITE_KINDS)}.")
        created_us = to_us(created_at or datetime.now(UTC))
        prepared = [
            (kind, payload, client_id or uuid.uuid4().hex, _content_hash(kind, payload))
            for kind, payload, client_id in writes
        ]
        try:
            with self.writer_lock.hold(), self.engine.begin() as conn:
                ids = list({c for _, _, c, _ in prepared})
                w = self.writes
                before = {
                    r.client_id: r
                    for r in conn.execute(
                        sa.select(w.c.client_id, w.c.seq, w.c.kind, w.c.content_hash).where(
                            w.c.client_id.in_(ids)
                        )
                    )
                }
                new: dict[str, tuple[str, dict[str, Any], str]] = {}
                for kind, payload, client_id, digest in prepared:
                    if client_id not in before and client_id not in new:
                        new[client_id] = (kind, payload, digest)
                fresh = self._insert_new(conn, new, created_us)
        except sa.exc.IntegrityError as error:
            # Another process stored one of these client ids between the look-up and the
            # insert (PostgreSQL; SQLite writers take turns on the writer lock): nothing of
            # this batch was stored, so each write is stored on its own.
            if len(prepared) == 1:
                kind, payload, client_id, _ = prepared[0]
                return [self._retried(kind, payload, client_id, error)]
            return [
                self._one(kind, payload, client_id, created_at)
                for kind, payload, client_id, _ in prepared
            ]
        out: list[AppendResult | IdempotencyConflict] = []
        first_in_batch: set[str] = set()
        earlier = {c: self.get(c) for c in before} if before else {}
        for kind, _, client_id, digest in prepared:
            if client_id in fresh and client_id not in first_in_batch:
                first_in_batch.add(client_id)
                out.append(AppendResult(fresh[client_id], duplicate=False))
                continue
            if client_id in fresh:
                stored_kind, _, stored_hash = new[client_id]
                previous = fresh[client_id]
            else:
                stored_kind, stored_hash = before[client_id].kind, before[client_id].content_hash
                previous = earlier[client_id]
            if stored_kind != kind or stored_hash != digest or previous is None:
                out.append(IdempotencyConflict(client_id, stored_kind))
            else:
                out.append(AppendResult(previous, duplicate=True))
        return out

    def _one(self, kind, payload, client_id, created_at) -> AppendResult | IdempotencyConflict:
        try:
            return self.append(kind, payload, client_id=client_id, created_at=created_at)
        except IdempotencyConflict as exc:
            return exc

    def _retried(
        self, kind: str, payload: dict[str, Any], client_id: str, error: Exception
    ) -> AppendResult | IdempotencyConflict:
        """The answer to a write whose insert failed on ``error``: the write another
        process stored first under its client id."""
        previous = self.get(client_id)
        if previous is None:  # the integrity error was not about the client id
            raise error
        with self.engine.connect() as conn:
            old_hash = conn.execute(
                sa.select(self.writes.c.content_hash).where(self.writes.c.client_id == client_id)
            ).scalar_one()
        if previous.kind != kind or old_hash != _content_hash(kind, payload):
            return IdempotencyConflict(client_id, previous.kind)
        return AppendResult(previous, duplicate=True)

    def _insert_new(
        self, conn, new: dict[str, tuple[str, dict[str, Any], str]], created_us: int
    ) -> dict[str, StoredWrite]:
        """Insert the writes ``client_id -> (kind, payload, content hash)``, in order: one
        multi-row statement per table (their ``seq`` come back in the order given)."""
        if not new:
            return {}
        w = self.writes
        seqs = conn.scalars(
            w.insert().returning(w.c.seq, sort_by_parameter_order=True),
            [
                {"client_id": c, "kind": kind, "content_hash": digest, "created_us": created_us}
                for c, (kind, _, digest) in new.items()
            ],
        ).all()
        rows: dict[str, list[dict[str, Any]]] = {"post": [], "event": [], "follow": []}
        fresh = {}
        for seq, (client_id, (kind, payload, _)) in zip(seqs, new.items(), strict=True):
            stored = self._rows_of(int(seq), kind, payload, rows)
            fresh[client_id] = StoredWrite(int(seq), client_id, kind, from_us(created_us), stored)
        for table, name in ((self.posts, "post"), (self.events, "event"), (self.follows, "follow")):
            if rows[name]:
                conn.execute(table.insert(), rows[name])
        return fresh

    @staticmethod
    def _rows_of(
        seq: int, kind: str, payload: dict[str, Any], rows: dict[str, list[dict[str, Any]]]
    ) -> dict:
        """The stored payload of a write; its table rows are added to ``rows[table]``."""
        if kind == "post":
            row = {
                "post_id": POST_ID_BASE + seq,
                "user_id": payload["user_id"],
                "text": payload["text"],
                "hashtags": list(payload.get("hashtags", [])),
                "mentions": list(payload.get("mentions", [])),
                "product_id": payload.get("product_id"),
                "repost_of": payload.get("repost_of"),
            }
            rows["post"].append({"seq": seq, **row})
            return row
        if kind == "event":
            events = [
                {
                    "user_id": e["user_id"],
                    "product_id": e["product_id"],
                    "event": e["event"],
                    "ts": e.get("ts"),
                    "via_post_id": e.get("via_post_id"),
                }
                for e in payload["events"]
            ]
            rows["event"].extend(
                {
                    "seq": seq,
                    **{k: v for k, v in r.items() if k != "ts"},
                    "ts_us": None if r["ts"] is None else to_us(r["ts"]),
                }
                for r in events
            )
            return {"events": events}
        row = {"follower_id": payload["follower_id"], "followee_id": payload["followee_id"]}
        rows["follow"].append({"seq": seq, "op": kind, **row})
        return row

    # ---------------------------------------------------------------- reads
    def get(self, client_id: str) -> StoredWrite | None:
        """The write stored under a client id, if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(self.writes).where(self.writes.c.client_id == client_id)
            ).first()
            return None if row is None else self._assemble(conn, [row])[0]

    def replay(
        self,
        since: datetime | None = None,
        *,
        after_seq: int = 0,
        batch: int = 1000,
        skip: Callable[[int], bool] | None = None,
    ) -> Iterator[StoredWrite]:
        """Stored writes accepted after ``since`` (all if None) with ``seq > after_seq``, in
        ``seq`` order, read in batches. Writes whose ``seq`` ``skip`` accepts are left out
        before their rows are read (a reader that has applied most of them already)."""
        w = self.writes
        since_us = None if since is None else to_us(since)
        while True:
            query = sa.select(w).where(w.c.seq > after_seq).order_by(w.c.seq).limit(batch)
            if since_us is not None:
                query = query.where(w.c.created_us > since_us)
            with self.engine.connect() as conn:
                rows = conn.execute(query).all()
                wanted = rows if skip is None else [r for r in rows if not skip(int(r.seq))]
                writes = self._assemble(conn, wanted)
            yield from writes
            if len(rows) < batch:
                return
            after_seq = int(rows[-1].seq)

    def counts(self) -> dict[str, int]:
        """Number of stored writes of each kind."""
        w = self.writes
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(w.c.kind, sa.func.count()).group_by(w.c.kind)).all()
        return {kind: 0 for kind in WRITE_KINDS} | {k: int(n) for k, n in rows}

    def _assemble(self, conn, rows) -> list[StoredWrite]:
        seqs = [int(r.seq) for r in rows]
        if not seqs:
            return []
        posts = {
            int(r.seq): r
            for r in conn.execute(sa.select(self.posts).where(self.posts.c.seq.in_(seqs)))
        }
        follows = {
            int(r.seq): r
            for r in conn.execute(sa.select(self.follows).where(self.follows.c.seq.in_(seqs)))
        }
        events: dict[int, list] = {}
        query = sa.select(self.events).where(self.events.c.seq.in_(seqs))
        for r in conn.execute(query.order_by(self.events.c.id)):
            events.setdefault(int(r.seq), []).append(r)
        out = []
        for r in rows:
            seq = int(r.seq)
            if r.kind == "post":
                p = posts[seq]
                payload = {
                    "post_id": int(p.post_id),
                    "user_id": int(p.user_id),
                    "text": p.text,
                    "hashtags": list(p.hashtags),
                    "mentions": [int(m) for m in p.mentions],
                    "product_id": None if p.product_id is None else int(p.product_id),
                    "repost_of": None if p.repost_of is None else int(p.repost_of),
                }
            elif r.kind == "event":
                payload = {
                    "events": [
                        {
                            "user_id": int(e.user_id),
                            "product_id": int(e.product_id),
                            "event": e.event,
                            "ts": None if e.ts_us is None else from_us(int(e.ts_us)),
                            "via_post_id": None if e.via_post_id is None else int(e.via_post_id),
                        }
                        for e in events.get(seq, [])
                    ]
                }
            else:
                f = follows[seq]
                payload = {"follower_id": int(f.follower_id), "followee_id": int(f.followee_id)}
            out.append(StoredWrite(seq, r.client_id, r.kind, from_us(int(r.created_us)), payload))
        return out
