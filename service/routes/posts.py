"""New posts: stored, applied to the live model, answered with fresh recommendations."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response

from service.batching import RecommendOptions
from service.deps import BatcherDep, IdempotencyKey, WriterDep
from service.errors import WRITE_ERRORS
from service.schemas import PostCreate, PostCreatedPublic
from service.security import WriteGuard

router = APIRouter(prefix="/v1/posts", tags=["writes"], dependencies=WriteGuard)

WEIBO_TOPIC = re.compile(r"#([^#\s][^#]{0,62})#")
"""Weibo's ``#topic#`` (closed by a second ``#``)."""


def hashtags_of(text: str, given: list[str]) -> list[str]:
    """The given hashtags plus the ``#topic#`` ones in the text, each once, in order."""
    tags = [t.strip().strip("#") for t in given] + [m.strip() for m in WEIBO_TOPIC.findall(text)]
    return list(dict.fromkeys(t for t in tags if t))


@router.post(
    "",
    status_code=201,
    response_model=PostCreatedPublic,
    responses={200: {"model": PostCreatedPublic, "description": "A retry"}, **WRITE_ERRORS},
)
async def create_post(
    body: PostCreate,
    write: WriterDep,
    batcher: BatcherDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict:
    """Publish a post; the answer holds the author's refreshed recommendations."""
    payload = {
        "user_id": body.user_id,
        "text": body.text,
        "hashtags": hashtags_of(body.text, body.hashtags),
        "mentions": list(dict.fromkeys(body.mentions)),
        "product_id": body.product_id,
        "repost_of": body.repost_of,
    }
    outcome = await write("post", payload, idempotency_key)
    if outcome.duplicate:
        response.status_code = 200
    holder = outcome.holder
    request.state.model_version = holder.version
    recs = await batcher.recommend(holder, body.user_id, RecommendOptions(k=body.k))
    return {
        "post_id": outcome.write.payload["post_id"],
        "seq": outcome.write.seq,
        "duplicate": outcome.duplicate,
        "recommendations": {
            "user_id": body.user_id,
            "model_version": holder.version,
            "data": recs,
            "count": len(recs),
        },
    }
