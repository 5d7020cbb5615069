"""Service settings: environment variables with the ``SOCIALCART_`` prefix and a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_CORS_ORIGINS = ["http://127.0.0.1:8000", "http://localhost:8000"]
"""The demo page's origins under ``make run``."""


class Settings(BaseSettings):
    """Everything the service reads from its environment (see ``docs/service.md``)."""

    model_config = SettingsConfigDict(
        env_prefix="SOCIALCART_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    model_dir: Path = Field(
        Path("models/small"), description="Model directory written by `socialcart train`."
    )
    dataset_dir: Path | None = Field(
        None,
        description="Dataset the model was trained on; default: the `dataset_path` file "
        "that `socialcart train` writes into the model directory.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the write store; default "
        "`sqlite:///<model_dir>/../store.db` (next to the model directories, so a retrained "
        "model keeps the writes). `postgresql://...` uses psycopg 3.",
    )
    table_prefix: str = Field(
        "",
        pattern=r"^[a-z0-9_]{0,32}$",
        description="Prefix of the store's table names (several services in one database).",
    )
    api_key: SecretStr | None = Field(
        None, description="Key clients send in `X-API-Key` for writes and admin calls."
    )
    read_auth: bool = Field(False, description="Require the API key for reads too.")
    write_rate_limit: str = Field(
        "60/second", description="Writes per client (API key, else IP), `limits` notation."
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_CORS_ORIGINS),
        description="Allowed CORS origins, comma-separated (`*` for any).",
    )
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes.")
    threads: int = Field(
        4,
        ge=1,
        le=256,
        description=(
            "Requests a worker computes at once; the rest wait their turn in arrival order. "
            "Few threads on few cores keep latency even under load (many threads contend "
            "for the interpreter lock and the slowest requests time out)."
        ),
    )
    recommend_batch: int = Field(
        32,
        ge=1,
        le=1024,
        description=(
            "Most people a worker computes recommendations for in one model call: requests "
            "with the same options that arrive while a batch computes are answered by the "
            "next (1 = each request on its own)."
        ),
    )
    write_batch: int = Field(
        256,
        ge=1,
        le=4096,
        description=(
            "Most writes a worker stores in one transaction (group commit): writes that "
            "arrive while one commits are committed together by the next (1 = each alone)."
        ),
    )
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Larger request bodies get 413.")
    demo_loopback_writes: bool = Field(
        False, description="Accept writes without a key from 127.0.0.1 / ::1 (local demo)."
    )
    release_fit_tables: bool = Field(
        False,
        description=(
            "After loading, drop the interactions tables and ALS's confidence matrix, which "
            "only fitting reads (about a quarter of a worker's memory on `large`; a reload "
            "then reads the dataset again). `socialcart serve` turns it on."
        ),
    )
    freeze_heap: bool = Field(
        False,
        description=(
            "Move the loaded model's objects out of the garbage collector's sight "
            "(gc.freeze) so a full collection does not walk them: a 90 ms pause on "
            "`small` at every full collection otherwise (`socialcart serve` turns it on)."
        ),
    )
    sync_interval_seconds: float = Field(
        1.0,
        ge=0,
        description="How often a process applies writes other processes stored (0 = never).",
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("write_rate_limit")
    @classmethod
    def _parse_limit(cls, value: str) -> str:
        from limits import parse

        parse(value)  # raises ValueError naming the bad value
        return value

    @property
    def resolved_dataset_dir(self) -> Path:
        """The dataset directory: the setting, else the one recorded in the model directory."""
        if self.dataset_dir is not None:
            return self.dataset_dir
        marker = self.model_dir / "dataset_path"
        if not marker.is_file():
            raise FileNotFoundError(
                f"{marker} not found: set SOCIALCART_DATASET_DIR to the dataset the model "
                "was trained on"
            )
        return Path(marker.read_text().strip())

    @property
    def resolved_database_url(self) -> str:
        """The store URL (default: SQLite next to the model directories)."""
        if self.database_url:
            return self.database_url
        path = (self.model_dir.resolve().parent / "store.db").as_posix()
        return f"sqlite:///{path}"


@lru_cache
def get_settings() -> Settings:
    """Settings from the environment, read once per process."""
    return Settings()
