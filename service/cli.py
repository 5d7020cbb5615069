"""``socialcart serve``: the HTTP service under uvicorn."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

EXIT_BAD_INPUT = 2
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Set to 1 for the workers unless already set (read when the native libraries load)."""

LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(message)s"},
        "default": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stdout",
        },
        "default": {
            "class": "logging.StreamHandler",
            "formatter": "default",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        "socialcart.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        "socialcart.service": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
}
"""Access logs are JSON lines on stdout (one per request, with its request id); uvicorn's
own access log is off (it would duplicate them)."""


def _exit_cleanly(signum: int, frame: object) -> None:
    """SIGTERM is a request to stop: after uvicorn has drained the requests in flight and
    shut the app down it raises the signal again, which would end the process as killed
    by it (exit status -15); here that ends it with status 0 (also before uvicorn starts)."""
    raise SystemExit(0)


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes (default: settings).")
    ] = None,
    model_dir: Annotated[
        Path | None,
        typer.Option(help="Model directory (default: SOCIALCART_MODEL_DIR or models/small)."),
    ] = None,
) -> None:
    """Serve recommendations and take writes over HTTP (settings: SOCIALCART_* variables)."""
    import uvicorn
    from pydantic import ValidationError
    from rich.console import Console

    from service.settings import Settings

    console = Console(stderr=True)
    if model_dir is not None:
        # Every worker process builds its app from the environment.
        os.environ["SOCIALCART_MODEL_DIR"] = str(model_dir)
    # Requests run side by side on threads and workers, each a small amount of numeric
    # work: one thread per native pool (OpenMP, BLAS) each. Multi-threaded pools spin and
    # hand off for longer than such work takes (implicit's one-person ALS re-solve of a
    # live event: 3-14 ms with 2 OpenMP threads on a busy 2-core machine, 0.2 ms with 1).
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")
    # A server holds its model for hours: the collector need not walk it (a full
    # collection over the loaded model paused a worker 90 ms on `small`).
    os.environ.setdefault("SOCIALCART_FREEZE_HEAP", "true")
    # Serving never reads the interactions tables fitting needed (a quarter of `large`).
    os.environ.setdefault("SOCIALCART_RELEASE_FIT_TABLES", "true")
    try:
        settings = Settings()
        dataset_dir = settings.resolved_dataset_dir
    except (ValidationError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    if not (settings.model_dir / "model.json").is_file():
        console.print(
            f"[red]error:[/red] {settings.model_dir} is not a model directory: train one with "
            "`socialcart train DATA --out DIR` and set SOCIALCART_MODEL_DIR"
        )
        raise typer.Exit(EXIT_BAD_INPUT)
    n_workers = workers or settings.workers
    base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    console.print(
        f"serving model {settings.model_dir} (dataset {dataset_dir}) with {n_workers} "
        f"worker(s)\n  API docs:  {base}/docs\n  demo page: {base}/\n  metrics:   {base}/metrics"
    )
    signal.signal(signal.SIGTERM, _exit_cleanly)
    uvicorn.run(
        "service.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=n_workers,
        log_config=LOG_CONFIG,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``serve`` to the root app."""
    app.command("serve")(serve_command)
