"""The running service's state: the store, the current model holder, the write path
(validate → store and commit → apply), replay on start, hot reload and the background sync
that applies writes other processes stored."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from recommender.dataset import Dataset
from service.metrics import Metrics
from service.model_holder import SEQ_SLACK, ModelHolder
from service.settings import Settings
from service.store import Store, StoredWrite

logger = logging.getLogger("socialcart.service")


REFREEZE_AFTER_S = 30.0
"""After a reload, how long the old model's requests get to finish before the heap is
frozen again (see ``Settings.freeze_heap``)."""


def _freeze_heap() -> None:
    """Collect what is garbage now, then exempt every surviving object (the model) from
    later collections: full collections then walk only what requests allocate."""
    gc.collect()
    gc.freeze()


def _libc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` on another C library (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def trim_heap() -> None:
    """Hand back to the system what loading a model allocated and freed. Reading the
    dataset's Parquet files goes through Arrow's memory pool (mimalloc), which keeps freed
    pages for reuse: on ``large`` 1.3 GiB of a 6.4 GiB worker. glibc's heap keeps a little
    more (about 0.1 GiB)."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


@dataclass(frozen=True)
class WriteOutcome:
    write: StoredWrite
    duplicate: bool
    holder: ModelHolder


class Runtime:
    """Owns the store and the current :class:`ModelHolder`.

    Writes are serialised by one lock in a process, so the live model applies them in the
    order of their ``seq``; reads never take it. A reload loads and catches up the new model
    outside that lock, then catches up the last few writes under it and swaps the holder
    reference: requests in flight finish on the holder they started with.
    """

    def __init__(self, settings: Settings, store: Store, holder: ModelHolder, metrics: Metrics):
        self.settings = settings
        self.store = store
        self.holder = holder
        self.metrics = metrics
        self._write_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()
        self._sync_thread: threading.Thread | None = None
        self.replayed_at_start = 0
        self._refreeze_at: float | None = None

    @classmethod
    def start(cls, settings: Settings, metrics: Metrics, *, store: Store | None = None) -> Runtime:
        """Open the store, load the model and replay the writes after its cut-off."""
        store = (
            store
            or Store(settings.resolved_database_url, table_prefix=settings.table_prefix).create()
        )
        holder = ModelHolder.load(
            settings.model_dir,
            settings.resolved_dataset_dir,
            release_fit_tables=settings.release_fit_tables,
        )
        runtime = cls(settings, store, holder, metrics)
        runtime.replayed_at_start = runtime._catch_up(holder, origin="replay")
        runtime._announce(holder)
        if settings.freeze_heap:
            _freeze_heap()
        trim_heap()
        logger.info(
            "model %s loaded; %d stored writes replayed", holder.version, runtime.replayed_at_start
        )
        if settings.sync_interval_seconds > 0:
            runtime._sync_thread = threading.Thread(
                target=runtime._sync_loop, name="socialcart-sync", daemon=True
            )
            runtime._sync_thread.start()
        return runtime

    def close(self) -> None:
        self._stop.set()
        if self._sync_thread is not None:
            self._sync_thread.join(timeout=5)
        self.store.close()

    # --------------------------------------------------------------- writes
    def write(self, kind: str, payload: dict[str, Any], client_id: str | None) -> WriteOutcome:
        """Validate against the live model, store durably (committed), then apply."""
        result = self.write_many([(kind, payload, client_id)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def write_many(
        self, writes: Sequence[tuple[str, dict[str, Any], str | None]]
    ) -> list[WriteOutcome | Exception]:
        """:meth:`write` for several writes ``(kind, payload, client_id)`` at once: each is
        validated against the live model, the valid ones are stored in one transaction (one
        commit, one flush to disk), then applied in order under one lock. Each write gets
        its own outcome, or the exception it alone raised (an unknown id, a reused
        idempotency key) in its place; a store error raises for all of them, none stored."""
        with self._write_lock:
            holder = self.holder
            out: list[WriteOutcome | Exception | None] = [None] * len(writes)
            valid = []
            for i, (kind, payload, _) in enumerate(writes):
                try:
                    holder.validate(kind, payload)
                except Exception as exc:
                    out[i] = exc
                else:
                    valid.append(i)
            if not valid:
                return out
            start = time.perf_counter()
            results = self.store.append_many([writes[i] for i in valid])
            elapsed = time.perf_counter() - start
            fresh = []
            for i, result in zip(valid, results, strict=True):
                if isinstance(result, Exception):
                    out[i] = result
                    continue
                self.metrics.store_write.labels(writes[i][0]).observe(elapsed)
                out[i] = WriteOutcome(result.write, result.duplicate, holder)
                if not result.duplicate:
                    fresh.append(result.write)
            in_order = [w for w in sorted(fresh, key=lambda w: w.seq) if not holder.seen(w.seq)]
            if (
                in_order
                and in_order[0].seq == holder.applied_seq + 1
                and all(b.seq == a.seq + 1 for a, b in itertools.pairwise(in_order))
            ):
                self._apply_many(holder, in_order, "request")
            elif in_order:  # another process committed in between: apply everything in order
                self._catch_up(holder, origin="sync")
            return out

    def _apply_many(self, holder: ModelHolder, writes: list[StoredWrite], origin: str) -> None:
        for write, applied in zip(writes, holder.apply_many(writes), strict=True):
            if applied:
                self.metrics.live_updates.labels(write.kind, origin).inc()
            else:
                self.metrics.skipped.labels(write.kind).inc()

    def _catch_up(self, holder: ModelHolder, *, origin: str) -> int:
        """Apply the stored writes after the model's cut-off it has not seen yet."""
        after = max(holder.applied_seq - SEQ_SLACK, 0)
        n = 0
        writes = iter(self.store.replay(holder.cutoff, after_seq=after, skip=holder.seen))
        while batch := list(itertools.islice(writes, 256)):
            self._apply_many(holder, batch, origin)
            n += len(batch)
        return n

    def sync(self) -> int:
        """Apply writes other processes stored since the last look."""
        with self._write_lock:
            return self._catch_up(self.holder, origin="sync")

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.settings.sync_interval_seconds):
            try:
                self.sync()
            except Exception:  # the store may be briefly unreachable; try again later
                logger.exception("sync with the store failed")

    def _refreeze(self, due: float) -> None:
        """Freeze the heap again, unless a later reload (another ``due``) is pending."""
        if self._refreeze_at == due and not self._stop.is_set():
            _freeze_heap()
            trim_heap()  # what the old model held
            # Cleared once frozen, so "pending or frozen" holds throughout (unless a
            # later reload set its own).
            if self._refreeze_at == due:
                self._refreeze_at = None

    # --------------------------------------------------------------- reload
    def reload(
        self, model_dir: Path | None = None, dataset_dir: Path | None = None
    ) -> tuple[ModelHolder, ModelHolder, int]:
        """Load a model directory, catch it up with the store and swap it in.

        Returns (old holder, new holder, writes replayed into the new one)."""
        with self._reload_lock:
            old = self.holder
            model_dir = Path(model_dir) if model_dir is not None else self.settings.model_dir
            if dataset_dir is None:
                marker = model_dir / "dataset_path"
                dataset_dir = (
                    Path(marker.read_text().strip())
                    if marker.is_file()
                    else self.settings.resolved_dataset_dir
                )
            dataset_dir = Path(dataset_dir)
            # A dataset directory is immutable once written, so the same one is reused.
            same = dataset_dir.resolve() == old.dataset_dir.resolve()
            reuse = same and not old.fit_tables_released  # else the tables must be read again
            dataset: Dataset | None = old.dataset if reuse else None
            try:
                new = ModelHolder.load(
                    model_dir,
                    dataset_dir,
                    dataset=dataset,
                    release_fit_tables=self.settings.release_fit_tables,
                )
                replayed = self._catch_up(new, origin="replay")
                with self._write_lock:
                    replayed += self._catch_up(new, origin="replay")
                    self.holder = new
            except Exception:
                self.metrics.reloads.labels("failed").inc()
                raise
            self.metrics.reloads.labels("ok").inc()
            if self.settings.freeze_heap:
                # The old model must be collectable once its last requests finish; the
                # heap is frozen again later, with the new model alone in it.
                gc.unfreeze()
                # A later reload sets its own time: an earlier timer then does nothing.
                due = self._refreeze_at = time.monotonic() + REFREEZE_AFTER_S
                timer = threading.Timer(REFREEZE_AFTER_S, self._refreeze, args=(due,))
                timer.daemon = True
                timer.start()
            else:
                trim_heap()  # what loading the new one freed
            self._announce(new)
            logger.info("model %s swapped in for %s", new.version, old.version)
            return old, new, replayed

    def _announce(self, holder: ModelHolder) -> None:
        self.metrics.model_loaded_now(
            holder.version, str(holder.model_dir), holder.loaded_at.timestamp()
        )
