"""Recommendations for a group of people."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import HolderDep
from service.errors import ERROR_RESPONSES
from service.schemas import GroupRecommendationListPublic, GroupRecommendationRequest

router = APIRouter(prefix="/v1/groups", tags=["groups"], responses=ERROR_RESPONSES)


@router.post("/recommendations", response_model=GroupRecommendationListPublic)
def read_group_recommendations(body: GroupRecommendationRequest, holder: HolderDep) -> dict:
    """Products for a list of people or a dataset group (a read: nothing is stored)."""
    if body.group_id is not None:
        user_ids = [int(u) for u in holder.catalog.group_members(body.group_id)]
        if not user_ids:
            raise ValueError(f"group {body.group_id} has no members")
    else:
        user_ids = sorted(set(body.user_ids or []))
    data = holder.group(user_ids, body.k, body.strategy)
    return {
        "user_ids": user_ids,
        "group_id": body.group_id,
        "strategy": body.strategy,
        "data": data,
        "count": len(data),
    }
