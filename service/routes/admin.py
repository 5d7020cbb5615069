"""Operations: swap in a newer model without dropping a request."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request

from recommender.errors import DatasetError
from recommender.persistence import ModelFormatError
from service.deps import RuntimeDep
from service.schemas import ErrorPublic, ReloadPublic, ReloadRequest
from service.security import AdminGuard

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    dependencies=AdminGuard,
    responses={
        s: {"model": ErrorPublic, "description": HTTPStatus(s).phrase} for s in (401, 413, 422)
    },
)


@router.post("/reload", response_model=ReloadPublic)
def reload_model(runtime: RuntimeDep, request: Request, body: ReloadRequest | None = None) -> dict:
    """Load a model directory (default: the configured one), replay the stored writes into
    it and swap it in; requests in flight finish on the old model."""
    body = body or ReloadRequest()
    try:
        old, new, replayed = runtime.reload(
            Path(body.model_dir) if body.model_dir else None,
            Path(body.dataset_dir) if body.dataset_dir else None,
        )
    except (ModelFormatError, DatasetError, OSError) as exc:
        raise HTTPException(422, f"cannot load the model: {exc}") from exc
    request.state.model_version = new.version
    return {
        "model_version": new.version,
        "previous_version": old.version,
        "model_dir": str(new.model_dir),
        "loaded_at": new.loaded_at,
        "replayed": replayed,
    }
