"""Shopping events: one or a batch, stored and applied to the live model."""

from __future__ import annotations

from datetime import UTC

from fastapi import APIRouter, Request, Response

from service.deps import IdempotencyKey, WriterDep
from service.errors import WRITE_ERRORS
from service.schemas import EventBatch, EventIn, EventsAcceptedPublic
from service.security import WriteGuard

router = APIRouter(prefix="/v1/events", tags=["writes"], dependencies=WriteGuard)


@router.post(
    "",
    status_code=201,
    response_model=EventsAcceptedPublic,
    responses={200: {"model": EventsAcceptedPublic, "description": "A retry"}, **WRITE_ERRORS},
)
async def create_events(
    body: EventIn | EventBatch,
    write: WriterDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict:
    """Record view / click / favorite / cart / purchase events (one, or `{"events": [...]}`)."""
    events = body.events if isinstance(body, EventBatch) else [body]
    payload = {
        "events": [
            {
                "user_id": e.user_id,
                "product_id": e.product_id,
                "event": e.event,
                "ts": None
                if e.ts is None
                else (e.ts if e.ts.tzinfo else e.ts.replace(tzinfo=UTC)).astimezone(UTC),
                "via_post_id": e.via_post_id,
            }
            for e in events
        ]
    }
    outcome = await write("event", payload, idempotency_key)
    if outcome.duplicate:
        response.status_code = 200
    request.state.model_version = outcome.holder.version
    return {
        "seq": outcome.write.seq,
        "accepted": len(outcome.write.payload["events"]),
        "duplicate": outcome.duplicate,
    }
