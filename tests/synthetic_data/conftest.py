"""Session fixtures: the ``tiny`` preset generated once, in English and in Chinese.

The datasets are shared by many tests: read them, never modify them in place.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.dataset import Dataset
from synthetic_data import generate, make_config


@pytest.fixture(scope="session")
def tiny_en() -> Dataset:
    """``tiny`` preset, seed 0, English."""
    return generate(make_config("tiny", seed=0))


@pytest.fixture(scope="session")
def tiny_zh() -> Dataset:
    """``tiny`` preset, seed 0, Chinese."""
    return generate(make_config("tiny", seed=0, lang="zh"))


@pytest.fixture(scope="session")
def tiny_en_dir(tiny_en: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_en`` saved to disk (Parquet files, ``ground_truth/`` and ``manifest.json``)."""
    return tiny_en.save(tmp_path_factory.mktemp("tiny_en") / "dataset")


@pytest.fixture(scope="session")
def tiny_zh_dir(tiny_zh: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_zh`` saved to disk."""
    return tiny_zh.save(tmp_path_factory.mktemp("tiny_zh") / "dataset")
