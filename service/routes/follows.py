"""Follow and unfollow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from service.deps import IdempotencyKey, Writer, WriterDep
from service.errors import WRITE_ERRORS
from service.schemas import MAX_ID, FollowChange, FollowPublic
from service.security import WriteGuard

router = APIRouter(prefix="/v1/follows", tags=["writes"], dependencies=WriteGuard)

UserQuery = Annotated[int, Query(ge=0, le=MAX_ID)]


async def _change(
    op: str, change: FollowChange, write: Writer, request: Request, response: Response, key
) -> dict:
    outcome = await write(op, change.model_dump(), key)
    if outcome.duplicate:
        response.status_code = 200
    request.state.model_version = outcome.holder.version
    return {
        "seq": outcome.write.seq,
        "op": op,
        **outcome.write.payload,
        "duplicate": outcome.duplicate,
    }


@router.post(
    "",
    status_code=201,
    response_model=FollowPublic,
    responses={200: {"model": FollowPublic, "description": "A retry"}, **WRITE_ERRORS},
)
async def create_follow(
    body: FollowChange,
    write: WriterDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict:
    """`follower_id` starts following `followee_id` (a no-op if already)."""
    return await _change("follow", body, write, request, response, idempotency_key)


@router.delete("", response_model=FollowPublic, responses=WRITE_ERRORS)
async def delete_follow(
    follower_id: UserQuery,
    followee_id: UserQuery,
    write: WriterDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict:
    """`follower_id` stops following `followee_id` (a no-op if not following)."""
    change = FollowChange(follower_id=follower_id, followee_id=followee_id)
    return await _change("unfollow", change, write, request, response, idempotency_key)
