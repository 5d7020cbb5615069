"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging
import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.schemas import HealthPublic, ReadyPublic

router = APIRouter(tags=["operations"])
logger = logging.getLogger("socialcart.service")


@router.get("/healthz", response_model=HealthPublic)
async def read_health() -> dict:
    """The process is alive. Answered on the event loop, not queued behind the requests
    the worker threads are computing (a liveness probe must not time out under load)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadyPublic,
    responses={503: {"model": ReadyPublic, "description": "Not ready"}},
)
def read_readiness(request: Request):
    """The model is loaded and the store answers `SELECT 1`. `worker_pid` names the
    worker process that answered (each worker loads its own model)."""
    runtime = getattr(request.app.state, "runtime", None)
    pid = os.getpid()
    if runtime is None:
        body = {"status": "loading", "model_version": None, "store": "unknown", "worker_pid": pid}
        return JSONResponse(body, 503)
    version = runtime.holder.version
    try:
        runtime.store.ping()
    except Exception as exc:
        logger.warning("store unreachable: %s", exc)
        body = {
            "status": "unavailable",
            "model_version": version,
            "store": "unreachable",
            "worker_pid": pid,
        }
        return JSONResponse(body, 503)
    return {"status": "ready", "model_version": version, "store": "ok", "worker_pid": pid}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def read_metrics(request: Request) -> Response:
    """Prometheus metrics of this process."""
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
