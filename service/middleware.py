"""One pure-ASGI middleware around every request: request id, body size limit (413), the
model version header, Prometheus metrics per route template and a JSON access log line."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable

from service.errors import error_body
from service.metrics import Metrics

access_log = logging.getLogger("socialcart.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class _TooLarge(Exception):
    pass


class RequestIds:
    """Request ids: 32 hex characters, a random prefix per process and a counter (unique
    across workers and restarts without a system call for randomness per request, which
    ``uuid4`` makes)."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._count = itertools.count()

    def next(self) -> str:
        pid = os.getpid()
        if pid != self._pid:  # a forked child starts its own sequence
            self._pid, self._prefix, self._count = pid, secrets.token_hex(8), itertools.count()
        return f"{self._prefix}{next(self._count):016x}"


request_ids = RequestIds()


class ServiceMiddleware:
    def __init__(
        self,
        app,
        *,
        metrics: Metrics,
        max_body_bytes: int,
        current_version: Callable[[], str | None],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.current_version = current_version

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else request_ids.next()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500

        async def send_with_headers(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                version = state.get("model_version") or self.current_version()
                extra = [(b"x-request-id", request_id.encode())]
                if version:
                    extra.append((b"x-model-version", version.encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            if scope["method"] in BODY_METHODS:
                try:
                    receive = await self._buffer_body(headers, receive)
                except _TooLarge:
                    await self._reject(send_with_headers, 413, "request body too large")
                    return
                except ValueError:
                    await self._reject(send_with_headers, 400, "invalid Content-Length")
                    return
            await self.app(scope, receive, send_with_headers)
        finally:
            self._record(scope, status, time.perf_counter() - start, request_id, state)

    async def _buffer_body(self, headers: dict, receive):
        """Read the whole body (at most ``max_body`` bytes) and hand it on in one message."""
        length = headers.get("content-length")
        if length is not None and int(length) > self.max_body:
            raise _TooLarge
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return _replay([message], receive)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return _replay([body], receive)

    @staticmethod
    async def _reject(send, status: int, detail: str) -> None:
        payload = json.dumps(error_body(status, detail)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _record(self, scope, status: int, seconds: float, request_id: str, state: dict) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        self.metrics.requests.labels(method, template, str(status)).inc()
        self.metrics.latency.labels(method, template).observe(seconds)
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            access_log.info(
                json.dumps(
                    {
                        "ts": time.time(),
                        "request_id": request_id,
                        "method": method,
                        "path": scope.get("path"),
                        "route": template,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 3),
                        "client": client[0] if client else None,
                        "model_version": state.get("model_version"),
                    }
                )
            )


def _replay(messages: list, receive):
    async def replayed():
        if messages:
            return messages.pop(0)
        return await receive()

    return replayed
