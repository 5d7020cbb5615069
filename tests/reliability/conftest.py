"""Shared fixtures of the reliability tests: the ``tiny`` preset, generated once per session;
the service tests' trained model and settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.dataset import Dataset


def generate_tiny(seed: int) -> Dataset:
    from synthetic_data import generate, make_config

    return generate(make_config("tiny", seed=seed))


@pytest.fixture(scope="session")
def tiny_saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``tiny`` preset (seed 0) saved once per session; never modified."""
    return generate_tiny(0).save(tmp_path_factory.mktemp("tiny") / "seed0")


# ------------------------------------------------------------------ the service
# The service tests' session fixtures (the tiny dataset and a quickly trained hybrid, the
# settings factory, cached model loads), shared with the service's reliability tests.
from tests.service.conftest import (  # noqa: E402, F401
    cached_model_loads,
    make_settings,
    service_data,
    store_settings,
)
