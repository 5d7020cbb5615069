"""API-key checks (constant-time, the key never logged) and the per-client write rate limit."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from service.settings import Settings

API_KEY_HEADER = "X-API-Key"
LOOPBACK = frozenset({"127.0.0.1", "::1"})

api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="The service's API key (SOCIALCART_API_KEY); `make run` prints it.",
)
ApiKey = Annotated[str | None, Security(api_key_header)]


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _key_matches(given: str | None, settings: Settings) -> bool:
    expected = settings.api_key
    if expected is None:
        return True
    if given is None:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), expected.get_secret_value().encode("utf-8")
    )


def _unauthorized() -> HTTPException:
    return HTTPException(
        status_code=401,
        detail=f"missing or wrong API key: send the service's key in the {API_KEY_HEADER} header",
        headers={"WWW-Authenticate": "ApiKey"},
    )


async def require_write_key(request: Request, key: ApiKey = None) -> None:
    """Writes: the key when one is configured (loopback clients may be let in for the demo)."""
    settings = _settings(request)
    if _key_matches(key, settings):
        return
    host = request.client.host if request.client else None
    if settings.demo_loopback_writes and key is None and host in LOOPBACK:
        return
    raise _unauthorized()


async def require_admin_key(request: Request, key: ApiKey = None) -> None:
    """Admin calls: the key when one is configured, from anywhere."""
    if not _key_matches(key, _settings(request)):
        raise _unauthorized()


async def require_read_key(request: Request, key: ApiKey = None) -> None:
    """Reads: the key only when ``read_auth`` is on."""
    settings = _settings(request)
    if settings.read_auth and not _key_matches(key, settings):
        raise _unauthorized()


class WriteRateLimiter:
    """A moving-window limit per client (``limits``, in process memory)."""

    def __init__(self, spec: str) -> None:
        self.item: RateLimitItem = parse(spec)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, client: str) -> float | None:
        """Count one write; None when allowed, else seconds until one is allowed again."""
        if self._limiter.hit(self.item, client):
            return None
        reset = self._limiter.get_window_stats(self.item, client).reset_time
        return max(reset - time.time(), 0.0)


def client_key(request: Request, key: str | None) -> str:
    """Who a write counts against: the API key (hashed) if given, else the client's IP."""
    if key:
        return "key:" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return "ip:" + (request.client.host if request.client else "unknown")


async def limit_writes(request: Request, key: ApiKey = None) -> None:
    """429 when this client has used up its write budget."""
    limiter: WriteRateLimiter = request.app.state.rate_limiter
    wait = limiter.hit(client_key(request, key))
    if wait is not None:
        request.app.state.metrics.rate_limited.inc()
        raise HTTPException(
            status_code=429,
            detail=f"write rate limit {limiter.item} exceeded; retry in {wait:.1f} s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


WriteGuard = [Depends(require_write_key), Depends(limit_writes)]
AdminGuard = [Depends(require_admin_key)]
ReadGuard = [Depends(require_read_key)]
"""For routers whose reads always declare the key; the core read routers get
``require_read_key`` from ``create_app`` only when ``read_auth`` is on."""
