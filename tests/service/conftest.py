"""Fixtures of the service tests: one tiny dataset and one quickly trained hybrid per
session (in tmp_path_factory), settings pointing at them, and test clients."""

from __future__ import annotations

import copy
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from service.store import Store

API_KEY = "test-key-not-a-secret"
PG_URL = os.environ.get("SOCIALCART_TEST_DATABASE_URL")
PG_SKIP_REASON = (
    "SOCIALCART_TEST_DATABASE_URL is not set (e.g. "
    "postgresql+psycopg://postgres@127.0.0.1:5432/test); .ci/run sets it"
)


@dataclass(frozen=True)
class ServiceData:
    dataset_dir: Path
    model_dir: Path


def fast_hybrid():
    """The hybrid with small, single-threaded sources (as in the recommender's tests)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from recommender.category import CategorySource
    from recommender.collaborative import ALSSource
    from recommender.content import ContentSource
    from recommender.hybrid import HybridRecommender
    from recommender.popularity import PopularitySource
    from recommender.social import SocialSource

    sources = [
        ("content", ContentSource()),
        ("social", SocialSource()),
        ("collaborative", ALSSource(factors=16, iterations=5, num_threads=1)),
        ("category", CategorySource()),
        ("popularity", PopularitySource()),
    ]
    ranker = HistGradientBoostingClassifier(max_iter=30, early_stopping=False, random_state=0)
    return HybridRecommender(sources=sources, ranker=ranker, max_train_users=200)


@pytest.fixture(scope="session")
def service_data(tmp_path_factory: pytest.TempPathFactory) -> ServiceData:
    """The tiny preset saved to disk and a hybrid trained on it, as `socialcart train`
    leaves them (with the `dataset_path` marker)."""
    from synthetic_data import generate, make_config

    root = tmp_path_factory.mktemp("service-data")
    dataset_dir = root / "data" / "tiny"
    dataset = generate(make_config("tiny", seed=0))
    dataset.save(dataset_dir)
    model_dir = root / "models" / "tiny"
    fast_hybrid().fit(dataset).save(model_dir)
    (model_dir / "dataset_path").write_text(str(dataset_dir.resolve()) + "\n")
    return ServiceData(dataset_dir=dataset_dir, model_dir=model_dir)


@pytest.fixture(scope="session", autouse=True)
def cached_model_loads() -> Iterator[None]:
    """Loading a model rebuilds its indexes from the dataset (seconds), and the tests start
    many apps on the same model directory: the first load of each directory is kept and
    every app gets a deep copy of it (its own model to mutate, a tenth of the time). The
    crash test's server processes load for real."""
    import service.model_holder as model_holder

    real = model_holder.load_model
    cache: dict[tuple, object] = {}

    def load(path, dataset):
        key = (Path(path).resolve(), (Path(path) / "model.json").read_bytes(), dataset.checksum)
        if key not in cache:
            cache[key] = real(path, dataset)
        return copy.deepcopy(cache[key])

    patch = pytest.MonkeyPatch()
    patch.setattr(model_holder, "load_model", load)
    yield
    patch.undo()


@pytest.fixture(scope="session")
def make_settings(service_data: ServiceData) -> Callable[..., Settings]:
    """Settings for a test: the session's model, a fresh SQLite store in ``directory``,
    nothing read from the environment or a .env file."""

    def make(directory: Path, **overrides) -> Settings:
        values = {
            "model_dir": service_data.model_dir,
            "database_url": f"sqlite:///{directory / 'store.db'}",
            "sync_interval_seconds": 0,
            "write_rate_limit": "10000/second",
        } | overrides
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture(scope="module")
def client(tmp_path_factory, make_settings) -> Iterator[TestClient]:
    """A client of an app without an API key, shared by a module's tests (each test uses
    its own users when it writes)."""
    settings = make_settings(tmp_path_factory.mktemp("client"))
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def keyed_client(tmp_path_factory, make_settings) -> Iterator[TestClient]:
    """A client of an app with an API key (the key is not sent unless a test adds it)."""
    settings = make_settings(tmp_path_factory.mktemp("keyed"), api_key=API_KEY)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> Iterator[Store]:
    """An empty store on SQLite, and on PostgreSQL when a test database URL is given
    (tables with a unique prefix, dropped afterwards)."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'store.db'}").create()
    else:
        if not PG_URL:
            pytest.skip(PG_SKIP_REASON)
        s = Store(PG_URL, table_prefix=f"t{uuid.uuid4().hex[:10]}_").create()
    try:
        yield s
    finally:
        if request.param != "sqlite":
            s.drop()
        s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_settings(request) -> Iterator[dict]:
    """Store settings on SQLite, and on PostgreSQL (unique table prefix, dropped after)
    when a test database URL is given."""
    if request.param == "sqlite":
        yield {}
        return
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    yield {"database_url": PG_URL, "table_prefix": prefix}
    store = Store(PG_URL, table_prefix=prefix)
    store.drop()
    store.close()
