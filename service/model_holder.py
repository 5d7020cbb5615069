"""One loaded model and everything served from it: the model, its dataset's look-ups, its
version, the writes applied to it, and the lock that keeps live updates away from requests
in flight. A reload builds a new holder and swaps it in; a request keeps the holder it
started with."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommender.dataset import Dataset
from recommender.errors import UnknownIdError
from recommender.hybrid import HybridRecommender
from recommender.persistence import MODEL_FILE, ModelFormatError, load_model
from service.catalog import Catalog
from service.locks import ReadWriteLock
from service.store import StoredWrite

logger = logging.getLogger("socialcart.service")

SEQ_SLACK = 100
"""How far below the highest applied ``seq`` a catch-up looks again: with several processes
on PostgreSQL a lower ``seq`` can commit after a higher one."""


def model_version(model_dir: Path) -> str:
    """``<directory name>-<first 12 hex digits of the SHA-256 of model.json>``."""
    digest = hashlib.sha256((model_dir / MODEL_FILE).read_bytes()).hexdigest()[:12]
    return f"{model_dir.resolve().name}-{digest}"


_PLAIN = (str, int, bool, type(None))


def plain(value: Any) -> Any:
    """JSON-ready copy of reason evidence (numpy scalars and timestamps become plain,
    non-finite floats ``None``). Exact built-in types are checked first: they are almost
    all of it, and this runs over every reason of every answer."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {k if type(k) is str else str(k): plain(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _PLAIN else plain(v) for v in value]
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


@dataclass
class ModelHolder:
    model: HybridRecommender
    dataset: Dataset
    catalog: Catalog
    version: str
    model_dir: Path
    dataset_dir: Path
    loaded_at: datetime
    lock: ReadWriteLock = field(default_factory=ReadWriteLock)
    applied_seq: int = 0
    _recent: set[int] = field(default_factory=set)
    _live_posts: set[int] = field(default_factory=set)
    _known_posts: np.ndarray | None = None

    fit_tables_released: bool = False
    """Whether :meth:`release_fit_tables` dropped the interactions tables (a reload must
    then read the dataset again)."""

    @classmethod
    def load(
        cls,
        model_dir: Path,
        dataset_dir: Path,
        *,
        dataset: Dataset | None = None,
        release_fit_tables: bool = False,
    ) -> ModelHolder:
        """Load a model directory against its dataset (``dataset`` reuses a loaded one;
        ``release_fit_tables``: see :meth:`release_fit_tables`)."""
        model_dir, dataset_dir = Path(model_dir), Path(dataset_dir)
        if not (model_dir / MODEL_FILE).is_file():
            raise ModelFormatError(f"{model_dir} is not a model directory (no {MODEL_FILE})")
        dataset = dataset if dataset is not None else Dataset.load(dataset_dir)
        try:
            model = load_model(model_dir, dataset)
        except ModelFormatError:
            raise
        except Exception as exc:
            # A damaged directory can fail anywhere in the loader (a truncated zip, a
            # model.json that is not an object, an unknown hyperparameter): it is still a
            # directory that cannot be loaded, and a reload must answer so and keep the
            # old model.
            logger.warning("cannot load %s", model_dir, exc_info=True)
            raise ModelFormatError(
                f"{model_dir} cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(model, HybridRecommender):
            raise ModelFormatError(f"{model_dir} holds a {type(model).__name__}, not a hybrid")
        holder = cls(
            model=model,
            dataset=dataset,
            catalog=Catalog(dataset),
            version=model_version(model_dir),
            model_dir=model_dir,
            dataset_dir=dataset_dir,
            loaded_at=datetime.now(UTC),
        )
        holder._known_posts = np.sort(model.data_.posts["post_id"].to_numpy(np.int64))
        if release_fit_tables:
            holder.release_fit_tables()
        return holder

    def release_fit_tables(self) -> None:
        """Drop what only fitting (or evaluation) reads and serving never does: the raw
        interactions and follows tables (the model holds the graph), the model's filtered
        copies of the interactions and posts, ALS's confidence matrix (a live event
        re-weighs the person's row alone), the posts table (the demo reads the catalogue's
        compressed :class:`~service.catalog.PostArchive`) and a synthetic dataset's ground
        truth. The holder gets its own :class:`Dataset` without them (the caller's is left
        whole); a refit or a reload reads the dataset again."""
        data = self.model.data_
        lean = dataclasses.replace(
            self.dataset,
            interactions=_empty_like(self.dataset.interactions),
            follows=_empty_like(self.dataset.follows),
            posts=_empty_like(self.dataset.posts),
            ground_truth={},
        )
        data.dataset = lean
        data.interactions = _empty_like(data.interactions)
        data.posts = _empty_like(data.posts)
        for source in self.model.sources_:
            if hasattr(source, "confidence_"):
                source.confidence_ = None
        self.dataset = lean
        self.fit_tables_released = True

    @property
    def cutoff(self) -> datetime:
        """The model's training cut-off: stored writes accepted after it are replayed."""
        return pd.Timestamp(self.model.data_.now).to_pydatetime()

    # ------------------------------------------------------------- writes
    def validate(self, kind: str, payload: dict[str, Any]) -> None:
        """Raise before anything is stored if the write could not be applied: unknown ids
        (:class:`UnknownIdError`) or a self-follow (``ValueError``)."""
        users, items = self.model.users_, self.model.items_
        if kind == "post":
            users.lookup([payload["user_id"], *payload.get("mentions", [])])
            if payload.get("product_id") is not None:
                items.lookup([payload["product_id"]])
            repost_of = payload.get("repost_of")
            if repost_of is not None and not self._post_known(int(repost_of)):
                raise UnknownIdError("post", [int(repost_of)])
        elif kind == "event":
            events = payload["events"]
            users.lookup([e["user_id"] for e in events])
            items.lookup([e["product_id"] for e in events])
        else:
            users.lookup([payload["follower_id"], payload["followee_id"]])
            if payload["follower_id"] == payload["followee_id"]:
                raise ValueError("follower_id == followee_id: a person cannot follow themselves.")

    def _post_known(self, post_id: int) -> bool:
        if post_id in self._live_posts:
            return True
        known = self._known_posts
        pos = np.searchsorted(known, post_id)
        return bool(pos < len(known) and known[pos] == post_id)

    def seen(self, seq: int) -> bool:
        return seq in self._recent or seq <= self.applied_seq - SEQ_SLACK

    def apply(self, write: StoredWrite) -> bool:
        """Apply one stored write to the live model; see :meth:`apply_many`."""
        return self.apply_many([write])[0]

    def apply_many(self, writes: list[StoredWrite]) -> list[bool]:
        """Apply stored writes in order to the live model, under one hold of the exclusive
        lock. A write the model cannot take (e.g. a user unknown to a newer model) is
        logged and skipped; returns whether each was applied."""
        applied = []
        shoppers: list[int] = []  # whose collaborative factors to re-solve, once, at the end
        with self.lock.write():
            for write in writes:
                applied.append(self._apply_one(write, shoppers))
                self._mark(write.seq)
            if shoppers:
                try:
                    self.model.refresh_users(shoppers)
                except Exception:  # stored and applied but for the factors: answer anyway
                    logger.exception("re-solving the factors of %d shoppers failed", len(shoppers))
        return applied

    def _apply_one(self, write: StoredWrite, shoppers: list[int]) -> bool:
        p = write.payload
        try:
            if write.kind == "post":
                self.model.add_post(
                    p["user_id"],
                    p["text"],
                    p["hashtags"],
                    post_id=p["post_id"],
                    product_id=p["product_id"],
                    mentions=p["mentions"],
                    repost_of=p["repost_of"],
                    created_ts=write.created_at,
                )
                self._live_posts.add(int(p["post_id"]))
            elif write.kind == "event":
                for e in p["events"]:
                    ts = e["ts"] or write.created_at
                    self.model.add_event(
                        e["user_id"], e["product_id"], e["event"], ts=ts, refresh=False
                    )
                    shoppers.append(e["user_id"])
            elif write.kind == "follow":
                self.model.add_follow(p["follower_id"], p["followee_id"])
            else:
                self.model.remove_follow(p["follower_id"], p["followee_id"])
        except (LookupError, ValueError, TypeError) as exc:
            logger.warning("stored write %s (%s) not applied: %s", write.seq, write.kind, exc)
            return False
        return True

    def _mark(self, seq: int) -> None:
        self._recent.add(seq)
        if seq > self.applied_seq:
            self.applied_seq = seq
            floor = seq - SEQ_SLACK
            if len(self._recent) > 4 * SEQ_SLACK:
                self._recent = {s for s in self._recent if s > floor}

    # -------------------------------------------------------------- reads
    def recommend(self, user_id: int, **options: Any) -> list[dict[str, Any]]:
        """One person's top-``k`` with details and reasons: :meth:`recommend_many` for one
        id, with the same keyword options."""
        return self.recommend_many([user_id], **options)[0]

    def recommend_many(
        self,
        user_ids: list[int],
        *,
        k: int,
        categories: list[str] | None = None,
        min_price: float | None = None,
        max_price: float | None = None,
        exclude: list[int] | None = None,
        max_per_category: int | None = None,
        explain: bool = True,
    ) -> list[list[dict[str, Any]]]:
        """Top-``k`` products with details and reasons for several people with the same
        options, in one model call (the model is batch-first: its fixed costs are paid
        once), one list per id asked (a person asked twice is computed once).
        ``max_per_category`` (diversity) is applied here on a deeper list: the model's own
        cap is a fitted setting."""
        fetch = k if max_per_category is None else min(4 * k, 400)
        unique = list(dict.fromkeys(int(u) for u in user_ids))
        with self.lock.read():
            recs = self.model.recommend(
                unique,
                k=fetch,
                categories=categories or None,
                min_price=min_price,
                max_price=max_price,
                exclude_items=exclude or None,
                explain=explain,
            )
        owners = recs["user_id"].to_numpy(np.int64)
        ids = recs["product_id"].to_numpy(np.int64)
        scores = recs["score"].to_numpy(float)
        reasons = recs["reasons"].to_numpy(object)
        sources = recs["source"].to_numpy(object)
        # Rows come grouped by person in the order asked (a person may have fewer rows).
        bounds = np.flatnonzero(np.diff(owners)) + 1
        starts = np.concatenate([[0], bounds]) if len(owners) else np.zeros(0, np.int64)
        ends = np.concatenate([bounds, [len(owners)]]) if len(owners) else starts
        rows = {int(owners[a]): np.arange(a, b) for a, b in zip(starts, ends, strict=True)}
        out = []
        for user_id in user_ids:
            keep = rows.get(int(user_id), np.zeros(0, np.int64))
            if max_per_category is not None:
                categories_of = self.catalog.category_of(ids[keep])
                keep = keep[_cap_per_category(categories_of, max_per_category)]
            keep = keep[:k]
            details = self.catalog.product_rows(ids[keep])
            out.append(
                [
                    {
                        "rank": rank,
                        "product": product,
                        "score": float(scores[pos]),
                        "source": str(sources[pos]),
                        "reasons": plain(reasons[pos]) if explain else [],
                    }
                    for rank, (product, pos) in enumerate(zip(details, keep, strict=True), start=1)
                ]
            )
        return out

    def similar(self, product_id: int, k: int) -> list[dict[str, Any]]:
        with self.lock.read():
            frame = self.model.similar_products(product_id, k=k)
        return self._with_products(frame)

    def share_targets(self, user_id: int, product_id: int, k: int) -> list[dict[str, Any]]:
        self.catalog.products.lookup([product_id])
        with self.lock.read():
            frame = self.model.share_targets(user_id, product_id, k=k)
        return [
            {
                "user_id": int(r.user_id),
                "handle": str(r.handle),
                "score": float(r.score),
                "reasons": plain(r.reasons),
            }
            for r in frame.itertuples(index=False)
        ]

    def group(self, user_ids: list[int], k: int, strategy: str) -> list[dict[str, Any]]:
        with self.lock.read():
            frame = self.model.recommend_group(user_ids, k=k, strategy=strategy)
        out = self._with_products(frame)
        for item, members in zip(out, frame["member_scores"], strict=True):
            item["member_scores"] = [
                {"user_id": int(u), "score": float(s)} for u, s in members.items()
            ]
        return out

    def _with_products(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        ids = frame["product_id"].to_numpy(np.int64)
        details = self.catalog.product_rows(ids)
        return [
            {"rank": rank, "product": d, "score": float(s), "reasons": plain(why)}
            for rank, (d, s, why) in enumerate(
                zip(details, frame["score"], frame["reasons"], strict=True), start=1
            )
        ]

    def following(self, user_id: int) -> np.ndarray:
        """Raw ids of the people ``user_id`` follows now (fitted graph plus live changes),
        sorted."""
        u = int(self.model.users_.lookup([user_id])[0])
        social = dict(zip(self.model.source_names_, self.model.sources_, strict=True)).get("social")
        with self.lock.read():
            if social is not None:
                row = social.ties_.rows(np.array([u]))
            else:  # no social source: the graph as fitted
                row = self.model.data_.follows[[u]]
            idx = np.asarray(row.indices, dtype=np.int64)
        return np.sort(self.model.users_.raw(idx))


def _empty_like(frame: pd.DataFrame) -> pd.DataFrame:
    """No rows, the same columns and dtypes, and no reference to ``frame``'s buffers (a
    zero-length slice of an Arrow-backed column would keep the whole buffer alive)."""
    return pd.DataFrame(
        {c: pd.Series([], dtype=frame[c].dtype) for c in frame.columns},
        index=frame.index[:0].copy(),
    )


def _cap_per_category(categories: np.ndarray, cap: int) -> np.ndarray:
    """Positions kept when at most ``cap`` items of one category may appear (greedy)."""
    seen: dict[str, int] = {}
    keep = []
    for pos, cat in enumerate(categories):
        if seen.get(cat, 0) < cap:
            seen[cat] = seen.get(cat, 0) + 1
            keep.append(pos)
    return np.asarray(keep, dtype=np.int64)
