"""Domain errors mapped to HTTP in one place; every error body is an ``ErrorPublic``."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from recommender.errors import UnknownIdError
from service.schemas import ErrorPublic
from service.store import IdempotencyConflict

logger = logging.getLogger("socialcart.service")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


def error_body(status: int, detail, code: str | None = None) -> dict:
    name = code or CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    return {"error": name, "detail": detail}


def error_response(status: int, detail, code: str | None = None, headers=None) -> JSONResponse:
    return JSONResponse(error_body(status, detail, code), status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> list:
    out = []
    for err in exc.errors():
        err = {k: v for k, v in err.items() if k not in ("url",)}
        if "ctx" in err:  # may hold exception objects
            err["ctx"] = {k: str(v) for k, v in err["ctx"].items()}
        out.append(err)
    return _encodable(jsonable_encoder(out))


def _encodable(value):
    """The echoed input may hold lone surrogates, which UTF-8 cannot carry: escape them."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_encodable(v) for v in value]
    if isinstance(value, dict):
        return {_encodable(k): _encodable(v) for k, v in value.items()}
    return value


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UnknownIdError)
    async def unknown_id(request: Request, exc: UnknownIdError) -> JSONResponse:
        return error_response(404, str(exc), "unknown_id")

    @app.exception_handler(IdempotencyConflict)
    async def idempotency_conflict(request: Request, exc: IdempotencyConflict) -> JSONResponse:
        return error_response(409, str(exc), "idempotency_conflict")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, _validation_detail(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, exc.detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(sa_exc.DBAPIError)
    async def store_unavailable(request: Request, exc: sa_exc.DBAPIError) -> JSONResponse:
        logger.error("store error on %s %s: %s", request.method, request.url.path, exc)
        detail = "the store is unavailable"
        if request.method not in ("GET", "HEAD"):
            detail += "; nothing was stored"
        return error_response(503, detail, headers={"Retry-After": "1"})

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> JSONResponse:
        # The library's ValueErrors name the parameter, the value and the rule.
        return error_response(422, str(exc))

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error", "internal")


ERROR_RESPONSES = {
    status: {"model": ErrorPublic, "description": HTTPStatus(status).phrase}
    for status in (401, 404, 422, 429)
}
WRITE_ERRORS = {
    status: {"model": ErrorPublic, "description": HTTPStatus(status).phrase}
    for status in (401, 404, 409, 413, 422, 429, 503)
}
