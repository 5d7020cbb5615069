"""Dependency aliases of the handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from service.model_holder import ModelHolder
from service.runtime import Runtime
from service.settings import Settings


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_holder(request: Request) -> ModelHolder:
    """The model this request runs on, start to finish (a reload does not change it)."""
    holder = request.app.state.runtime.holder
    request.state.model_version = holder.version
    return holder


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


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
