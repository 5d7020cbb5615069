"""The FastAPI application: ``create_app(settings)``; ``app_from_env`` is uvicorn's factory."""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from anyio import to_thread
from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from service.batching import Batcher, RecommendBatcher
from service.errors import install_error_handlers
from service.metrics import Metrics
from service.middleware import ServiceMiddleware
from service.routes import admin, demo, events, follows, groups, health, posts, products, users
from service.runtime import Runtime
from service.security import WriteRateLimiter, require_read_key
from service.settings import Settings, get_settings

STATIC_DIR = Path(__file__).parent / "static"

DESCRIPTION = """Social-commerce recommendations over HTTP: recommendations with reasons,
similar products, share targets and group recommendations; posts, shopping events and
follows are stored durably and applied to the live model. Writes and admin calls need the
`X-API-Key` header when the service has a key."""


def _version() -> str:
    try:
        return version("socialcart")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the lifespan loads the model and the store once."""
    settings = settings or get_settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Sync routes run in anyio's worker threads; its limiter queues the rest first in,
        # first out.
        to_thread.current_default_thread_limiter().total_tokens = settings.threads
        runtime = await to_thread.run_sync(Runtime.start, settings, metrics)
        app.state.runtime = runtime
        try:
            yield
        finally:
            await to_thread.run_sync(runtime.close)

    app = FastAPI(
        title="socialcart",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.rate_limiter = WriteRateLimiter(settings.write_rate_limit)
    app.state.batcher = RecommendBatcher(
        settings.recommend_batch, on_batch=metrics.recommend_batch.observe
    )
    app.state.writes = Batcher(
        lambda _, writes: app.state.runtime.write_many(writes),
        max_batch=settings.write_batch,
        on_batch=metrics.write_batch.observe,
    )
    install_error_handlers(app)
    # Reads declare the key (in OpenAPI too) only when they need it.
    read_guard = [Depends(require_read_key)] if settings.read_auth else []
    for module in (users, products, groups):
        app.include_router(module.router, dependencies=read_guard)
    for module in (posts, events, follows, admin, health, demo):
        app.include_router(module.router)
    _static(app)

    def current_version() -> str | None:
        runtime = getattr(app.state, "runtime", None)
        return None if runtime is None else runtime.holder.version

    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "X-API-Key", "X-Request-ID", "Idempotency-Key"],
        expose_headers=["X-Request-ID", "X-Model-Version", "Retry-After"],
    )
    app.add_middleware(
        ServiceMiddleware,
        metrics=metrics,
        max_body_bytes=settings.max_body_bytes,
        current_version=current_version,
    )
    return app


def _static(app: FastAPI) -> None:
    """The demo page at ``/`` and its files under ``/static`` when ``service/static`` has
    them; otherwise ``/`` leads to the API docs."""
    index = STATIC_DIR / "index.html"
    if index.is_file():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

        @app.get("/", include_in_schema=False)
        def read_demo_page() -> FileResponse:
            return FileResponse(index)

    else:

        @app.get("/", include_in_schema=False)
        def read_root() -> RedirectResponse:
            return RedirectResponse("/docs")


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from the environment (every worker builds its own app)."""
    return create_app(get_settings())
