"""The ``socialcart`` console script: one Typer app whose sub-commands each package adds.

Each package exposes ``register(app)`` in its own ``cli`` module; commands import their heavy
dependencies lazily so ``socialcart --help`` stays fast.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="socialcart",
    help="Social-commerce recommender sandbox: generate data, train, evaluate, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

bench_app = typer.Typer(help="Benchmarks (speed and memory figures).", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

# Packages whose CLI modules add commands; a package not yet built is simply absent.
COMMAND_MODULES = (
    "synthetic_data.cli",
    "recommender.cli",
    "recommender.model_cli",
    "service.cli",
    "benchmarks.cli",
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(app, bench_app)


_register_all()


def main() -> None:
    """Entry point of the console script."""
    app()
