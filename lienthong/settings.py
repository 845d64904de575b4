"""One typed settings object, read from the environment with the ``LIENTHONG_`` prefix.

Local runs default to embedded parts (SQLite under ``./var``, a directory vault, the bundled agency
simulator); production swaps them by setting URLs, with no code change.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIENTHONG_", extra="ignore")

    # Where runtime data of the embedded default lives (database file, vault, forms, reports).
    var_dir: Path = REPO_ROOT / "var"
    # Procedure catalog, agencies, holidays, expectation suites, templates.
    config_dir: Path = REPO_ROOT / "config"
    # A SQLAlchemy URL; PostgreSQL in production, e.g. postgresql+psycopg://user@host/db.
    database_url: str | None = None
    # The receiving unit's identifier code (mã định danh, QCVN 102:2016) used in dossier codes.
    unit_id: str = "000.00.06.H56"
    # Base URL of the agency API (the bundled simulator by default).
    agency_api_url: str = "http://127.0.0.1:8710"
    # Seconds between polls of an agency for a step's result (real seconds).
    agency_poll_seconds: float = 0.2
    # Agency code -> "poll" or "async" (JSON object), over `mode:` in config/agencies.yaml. An
    # asynchronous agency calls back to the gateway; the run waits suspended, holding no worker.
    agency_modes: dict[str, Literal["poll", "async"]] = Field(default_factory=dict)
    # Base URL of the webhook gateway as the agencies reach it: callbacks go to
    # <callback_base_url>/v1/steps/<step ref>/result.
    callback_base_url: str = "http://127.0.0.1:8720"
    # How long a run waits suspended for an asynchronous agency's result, or for an operator's
    # approval, before the run fails (real seconds; the step's own deadline keeps running meanwhile).
    agency_wait_timeout_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    approval_timeout_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    # Steps the catalog marks `approval:`: "operator" pauses the run for a person's decision in the
    # Prefect UI; "auto" approves at once, recorded as automatic (tests, demo, benchmarks).
    approval_policy: Literal["operator", "auto"] = "auto"
    # The clock: "system", or "sim:<ISO start>@<unix anchor>x<speed>" (see lienthong.clock).
    clock: str = "system"
    # Mask personal data (citizen IDs, names, addresses) in logs, artifacts and errors.
    mask_personal_data: bool = True
    # Prefect deployments are served with this many concurrent flow runs.
    serve_limit: int = Field(default=4, ge=1)
    # Dask scheduler for the OCR fan-out of digitize-backlog (e.g. tcp://10.0.0.5:8786); empty: a
    # local cluster of `dask_workers` single-threaded worker processes (0: one per core).
    dask_address: str | None = None
    dask_workers: int = Field(default=0, ge=0)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / 'lienthong.db'}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the demo change the environment)."""
    get_settings.cache_clear()
