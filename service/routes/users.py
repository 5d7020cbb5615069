"""People: recommendations, share targets, profile and who they follow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from service.batching import RecommendOptions
from service.deps import BatcherDep, HolderDep
from service.errors import ERROR_RESPONSES
from service.schemas import (
    MAX_ID,
    FollowingListPublic,
    RecommendationListPublic,
    ShareTargetListPublic,
    UserPublic,
)

router = APIRouter(prefix="/v1/users", tags=["users"], responses=ERROR_RESPONSES)

UserIdPath = Annotated[int, Path(ge=0, le=MAX_ID, description="A user id.")]


@router.get("/{user_id}/recommendations", response_model=RecommendationListPublic)
async def read_recommendations(
    user_id: UserIdPath,
    holder: HolderDep,
    batcher: BatcherDep,
    k: Annotated[int, Query(ge=1, le=100, description="How many products.")] = 10,
    category: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=200)]] | None,
        Query(
            max_length=20,
            description="Only these categories (a path or a prefix such as `Health`); repeatable.",
        ),
    ] = None,
    min_price: Annotated[float | None, Query(ge=0, le=1e9)] = None,
    max_price: Annotated[float | None, Query(ge=0, le=1e9)] = None,
    exclude: Annotated[
        list[Annotated[int, Query(ge=0, le=MAX_ID)]] | None,
        Query(max_length=200, description="Product ids to leave out; repeatable."),
    ] = None,
    max_per_category: Annotated[
        int | None,
        Query(ge=1, le=100, description="Diversity: at most this many per category."),
    ] = None,
    explain: Annotated[bool, Query(description="Include the reasons.")] = True,
) -> dict:
    """Top-k products for a person, with product details and the reasons."""
    holder.model.users_.lookup([user_id])  # an unknown person is a 404 before any queueing
    options = RecommendOptions(
        k=k,
        categories=tuple(category) if category else None,
        min_price=min_price,
        max_price=max_price,
        exclude=tuple(exclude) if exclude else None,
        max_per_category=max_per_category,
        explain=explain,
    )
    data = await batcher.recommend(holder, user_id, options)
    return {"user_id": user_id, "model_version": holder.version, "data": data, "count": len(data)}


@router.get("/{user_id}/share-targets", response_model=ShareTargetListPublic)
def read_share_targets(
    user_id: UserIdPath,
    holder: HolderDep,
    product_id: Annotated[int, Query(ge=0, le=MAX_ID, description="The product to share.")],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict:
    """Which people this person follows to @ about a product."""
    data = holder.share_targets(user_id, product_id, k)
    return {"user_id": user_id, "product_id": product_id, "data": data, "count": len(data)}


@router.get("/{user_id}", response_model=UserPublic)
def read_user(user_id: UserIdPath, holder: HolderDep) -> dict:
    """A person's public profile."""
    profile = holder.catalog.user(user_id)
    return {**profile, "following_count": len(holder.following(user_id))}


@router.get("/{user_id}/following", response_model=FollowingListPublic)
def read_following(
    user_id: UserIdPath,
    holder: HolderDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> dict:
    """The people this person follows now (live follows included), by user id."""
    ids = holder.following(user_id)
    page = ids[offset : offset + limit]
    handles = holder.catalog.handles(page)
    kols = holder.catalog.is_kol(page)
    data = [
        {"user_id": int(u), "handle": str(h), "is_kol": bool(kol)}
        for u, h, kol in zip(page, handles, kols, strict=True)
    ]
    return {
        "user_id": user_id,
        "data": data,
        "count": len(data),
        "total": len(ids),
        "limit": limit,
        "offset": offset,
    }
