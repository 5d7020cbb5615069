"""Look-ups the demo page needs and the core API leaves out: find people by handle, a
person's recent posts (the dataset's and those posted through the service), the catalogue's
categories, the dataset's groups, and whether this client must send a key to write."""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, Field

from service.deps import HolderDep, RuntimeDep
from service.errors import ERROR_RESPONSES
from service.model_holder import ModelHolder
from service.security import LOOPBACK, ReadGuard
from service.store import Store, from_us

router = APIRouter(
    prefix="/v1/demo", tags=["demo"], dependencies=ReadGuard, responses=ERROR_RESPONSES
)

UserIdPath = Annotated[int, Path(ge=0, le=2**53 - 1, description="A user id.")]


# ---------------------------------------------------------------- models
class PersonPublic(BaseModel):
    user_id: int
    handle: str
    is_kol: bool
    gender: str | None = None
    age_band: str | None = None


class PersonListPublic(BaseModel):
    data: list[PersonPublic]
    count: int


class MentionPublic(BaseModel):
    user_id: int
    handle: str | None


class PostPublic(BaseModel):
    post_id: int
    user_id: int
    text: str
    hashtags: list[str]
    mentions: list[MentionPublic]
    product_id: int | None
    created_at: datetime | None
    live: bool = Field(description="Posted through the service (not in the dataset).")


class PostListPublic(BaseModel):
    user_id: int
    data: list[PostPublic]
    count: int


class CategoryPublic(BaseModel):
    name: str = Field(description="A top-level category, usable as `category=` filter.")
    products: int


class CategoryListPublic(BaseModel):
    data: list[CategoryPublic]
    count: int


class GroupPublic(BaseModel):
    group_id: int
    name: str
    topic: str
    members: list[PersonPublic]


class GroupListPublic(BaseModel):
    data: list[GroupPublic]
    count: int


class ClientConfigPublic(BaseModel):
    write_key_required: bool = Field(description="Writes from this client need `X-API-Key`.")
    read_key_required: bool
    model_version: str


# ----------------------------------------------------------------- index
@dataclass(frozen=True)
class _Index:
    """Per-model look-ups, built once per loaded model."""

    handles_lower: pd.Series
    popular_people: np.ndarray
    categories: list[dict[str, Any]]

    @classmethod
    def build(cls, holder: ModelHolder) -> _Index:
        dataset = holder.dataset
        users = dataset.users
        # Followers per person from the model's graph: a serving holder has released the
        # dataset's follows table (about 1 GiB on `large`).
        graph = holder.model.data_.follows
        followers = pd.Series(
            np.bincount(graph.indices, minlength=graph.shape[1]),
            index=holder.model.users_.raw(np.arange(graph.shape[1])),
        )
        posters = holder.catalog.posts.counts
        rank = (
            users["is_kol"].astype(int) * 1_000_000
            + users["user_id"].map(followers).fillna(0)
            + users["user_id"].map(posters).fillna(0)
        )
        popular = users["user_id"].to_numpy(np.int64)[np.argsort(-rank.to_numpy(), kind="stable")]
        top = dataset.products["category_path"].astype(str).str.split("/").str[0]
        counts = top.value_counts()
        return cls(
            handles_lower=users["handle"].astype(str).str.lower().reset_index(drop=True),
            popular_people=popular,
            categories=[{"name": str(n), "products": int(c)} for n, c in counts.items()],
        )


_cache: dict[str, Any] = {"holder": None, "index": None}
_cache_lock = threading.Lock()


def _index(holder: ModelHolder) -> _Index:
    """The index of this holder (rebuilt after a reload swaps the model)."""
    with _cache_lock:
        ref = _cache["holder"]
        if ref is None or ref() is not holder:
            _cache["index"] = _Index.build(holder)
            _cache["holder"] = weakref.ref(holder)
        return _cache["index"]


def _people(holder: ModelHolder, user_ids: np.ndarray) -> list[dict[str, Any]]:
    return [
        {k: holder.catalog.user(int(u))[k] for k in PersonPublic.model_fields} for u in user_ids
    ]


def _known(holder: ModelHolder, user_ids: list[int]) -> list[int]:
    if not user_ids:
        return []
    found = holder.catalog.users.lookup(user_ids, missing="ignore") >= 0
    return [u for u, ok in zip(user_ids, found, strict=True) if ok]


def _handles(holder: ModelHolder, user_ids: list[int]) -> dict[int, str]:
    known = _known(holder, user_ids)
    return {u: str(h) for u, h in zip(known, holder.catalog.handles(known), strict=True)}


# ---------------------------------------------------------------- routes
@router.get("/people", response_model=PersonListPublic)
def search_people(
    holder: HolderDep,
    q: Annotated[
        str,
        Query(
            max_length=64,
            description="Part of a handle (`@` optional) or a user id; "
            "empty: the best-known people.",
        ),
    ] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> dict:
    """People whose handle starts with, then contains, ``q`` (KOLs and followed people first)."""
    index = _index(holder)
    query = q.strip().lstrip("@").lower()
    ids = index.popular_people
    if query:
        handles = index.handles_lower
        starts = handles.str.startswith(query, na=False).to_numpy()
        contains = handles.str.contains(query, regex=False, na=False).to_numpy()
        user_ids = holder.dataset.users["user_id"].to_numpy(np.int64)
        hit = {int(u) for u in user_ids[contains]}
        if query.isdigit():
            hit.update(_known(holder, [int(query)]))
        exact = {int(u) for u in user_ids[(handles == query).to_numpy()]}
        prefix = {int(u) for u in user_ids[starts]}
        order = {int(u): pos for pos, u in enumerate(ids)}
        ids = sorted(
            hit,
            key=lambda u: (u not in exact and str(u) != query, u not in prefix, order[u]),
        )
    chosen = np.asarray(ids[:limit], dtype=np.int64)
    data = _people(holder, chosen)
    return {"data": data, "count": len(data)}


def _live_posts(store: Store, user_id: int, limit: int) -> list[dict[str, Any]]:
    p, w = store.posts, store.writes
    query = (
        sa.select(p, w.c.created_us)
        .join(w, w.c.seq == p.c.seq)
        .where(p.c.user_id == user_id)
        .order_by(p.c.seq.desc())
        .limit(limit)
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        {
            "post_id": int(r.post_id),
            "user_id": int(r.user_id),
            "text": r.text,
            "hashtags": list(r.hashtags),
            "mentions": [int(m) for m in r.mentions],
            "product_id": None if r.product_id is None else int(r.product_id),
            "created_at": from_us(int(r.created_us)),
            "live": True,
        }
        for r in rows
    ]


def _dataset_posts(holder: ModelHolder, user_id: int, limit: int) -> list[dict[str, Any]]:
    posts = holder.catalog.posts.of(user_id, limit)
    for post in posts:
        post["created_at"] = post.pop("created_ts")
        post["live"] = False
    return posts


@router.get("/users/{user_id}/posts", response_model=PostListPublic)
def read_posts(
    user_id: UserIdPath,
    holder: HolderDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict:
    """A person's recent posts, newest first: those posted through the service, then the
    dataset's."""
    holder.catalog.user(user_id)  # 404 for an unknown person
    posts = _live_posts(runtime.store, user_id, limit)
    posts += _dataset_posts(holder, user_id, limit - len(posts))
    handles = _handles(holder, sorted({m for post in posts for m in post["mentions"]}))
    for post in posts:
        post["mentions"] = [{"user_id": m, "handle": handles.get(m)} for m in post["mentions"]]
    return {"user_id": user_id, "data": posts, "count": len(posts)}


@router.get("/categories", response_model=CategoryListPublic)
def read_categories(holder: HolderDep) -> dict:
    """The catalogue's top-level categories, most products first."""
    data = _index(holder).categories
    return {"data": data, "count": len(data)}


@router.get("/groups", response_model=GroupListPublic)
def read_groups(holder: HolderDep, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict:
    """The dataset's groups (shopping circles) with their members."""
    groups = holder.dataset.groups
    data = []
    if groups is not None:
        for gid in groups["group_id"].to_numpy(np.int64)[:limit]:
            name, topic = holder.catalog.group(int(gid))
            members = holder.catalog.group_members(int(gid))[:20]
            data.append(
                {
                    "group_id": int(gid),
                    "name": name,
                    "topic": topic,
                    "members": _people(holder, members),
                }
            )
    return {"data": data, "count": len(data)}


@router.get("/config", response_model=ClientConfigPublic)
def read_client_config(request: Request, holder: HolderDep) -> dict:
    """What the page must send: whether writes from this client need the API key."""
    settings = request.app.state.settings
    host = request.client.host if request.client else None
    keyed = settings.api_key is not None
    loopback_demo = settings.demo_loopback_writes and host in LOOPBACK
    return {
        "write_key_required": keyed and not loopback_demo,
        "read_key_required": keyed and settings.read_auth,
        "model_version": holder.version,
    }
