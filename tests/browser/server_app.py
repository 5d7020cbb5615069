"""The app the browser tests serve: the service's own app, plus the demo page's look-ups
(``service.routes.demo``) when the app does not include them itself."""

from __future__ import annotations

from fastapi import FastAPI

from service.app import create_app
from service.routes import demo
from service.settings import get_settings


def create_demo_app() -> FastAPI:
    """uvicorn factory: settings from the environment, as ``socialcart serve`` does."""
    app = create_app(get_settings())
    paths = {getattr(route, "path", "") for route in app.routes}
    if "/v1/demo/people" not in paths:
        app.include_router(demo.router)
    return app
