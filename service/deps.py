"""Dependency aliases of the handlers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Request

from service.batching import RecommendBatcher
from service.model_holder import ModelHolder
from service.runtime import Runtime, WriteOutcome
from service.settings import Settings


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


async def get_holder(request: Request) -> ModelHolder:
    """The model this request runs on, start to finish (a reload does not change it)."""
    holder = request.app.state.runtime.holder
    request.state.model_version = holder.version
    return holder


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_batcher(request: Request) -> RecommendBatcher:
    return request.app.state.batcher


BatcherDep = Annotated[RecommendBatcher, Depends(get_batcher)]


class Writer:
    """Writes of one request: validated, stored (group commit) and applied; see
    :meth:`Runtime.write_many`."""

    def __init__(self, request: Request) -> None:
        self._writes = request.app.state.writes

    async def __call__(
        self, kind: str, payload: dict[str, Any], client_id: str | None
    ) -> WriteOutcome:
        return await self._writes.submit(None, (kind, payload, client_id))


async def get_writer(request: Request) -> Writer:
    return Writer(request)


WriterDep = Annotated[Writer, Depends(get_writer)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[!-~]{1,128}$",
        description="Client-chosen id of this write (1-128 printable ASCII characters). A "
        "retry with the same key and body is not applied twice: it gets 200 and the "
        "original write; the same key with another body gets 409.",
    ),
]
