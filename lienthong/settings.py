"""One typed settings object, read from the environment with the ``LIENTHONG_`` prefix, with a
section per part (``settings.vault``, ``settings.gateway``), built once and cached.

Local runs default to embedded parts (SQLite under ``./var``, a directory vault, the bundled agency
simulator); production swaps them by setting URLs, with no code change.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class VaultSettings(BaseSettings):
    """The result vault (``LIENTHONG_VAULT_*``): a directory under ``<var_dir>/vault`` by default;
    production sets ``backend=s3`` and an endpoint/bucket (AWS, MinIO, any S3-compatible store)."""

    model_config = SettingsConfigDict(env_prefix="LIENTHONG_VAULT_", extra="ignore")

    backend: Literal["file", "s3"] = "file"
    # FileVault root; default <var_dir>/vault.
    dir: Path | None = None
    # S3: endpoint (None = AWS), bucket, region, credentials (None = boto3's default chain).
    s3_endpoint_url: str | None = None
    s3_bucket: str = "lienthong-vault"
    s3_region: str = "ap-southeast-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    # Server-side encryption requested on every put ("AES256" or "aws:kms"; "" to not ask).
    s3_sse: str = "AES256"
    s3_kms_key_id: str | None = None
    # Create the bucket when it is missing (demo, tests); production buckets are provisioned.
    s3_create_bucket: bool = False
    # Object-lock retention applied when the bucket has object lock enabled.
    object_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    object_lock_days: int = Field(default=3650, ge=1)
    # Lifetime of presigned download URLs handed to agencies.
    presign_seconds: int = Field(default=300, ge=1, le=3600)
    # Ed25519 signing keys per issuing agency: JSON {"UBND_XA": "<base64 raw 32-byte seed>"}.
    signing_keys: dict[str, SecretStr] = {}
    # Earlier keys of each agency, so that what they sealed stays verifiable after a rotation: JSON
    # {"UBND_XA": [{"public_key": "<base64 raw 32 bytes>", "valid_from": null,
    #               "valid_until": "2026-12-01T00:00:00+07:00"}]}.
    public_keys: dict[str, list[dict[str, Any]]] = {}
    # Where demo keys are generated when an agency has none in settings; default <var_dir>/keys.
    keys_dir: Path | None = None
    generate_keys: bool = True
    # Orphaned objects (no index row refers to them) older than this are deleted by vault-sweep.
    orphan_grace_hours: float = Field(default=24.0, ge=0)
    # Fonts with Vietnamese glyphs for the rendered result PDF.
    font_path: Path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    font_bold_path: Path = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")

    @property
    def root(self) -> Path:
        return self.dir or get_settings().var_dir / "vault"

    @property
    def key_root(self) -> Path:
        return self.keys_dir or get_settings().var_dir / "keys"


class GatewaySettings(BaseSettings):
    """The webhook gateway (``LIENTHONG_GATEWAY_*``) and the agencies' HMAC secrets."""

    model_config = SettingsConfigDict(env_prefix="LIENTHONG_GATEWAY_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8720
    # uvicorn worker processes of `lienthong gateway` (with more than one, or several replicas,
    # set redis_url so that they share each agency's rate limit).
    workers: int = Field(default=1, ge=1)
    # Bodies larger than this are refused (413) before they are read in full.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Per-agency rate limit: sustained requests per second and burst size.
    rate_per_second: float = Field(default=50.0, gt=0)
    rate_burst: int = Field(default=100, ge=1)
    # Redis that holds the rate limits shared by every worker and replica (e.g.
    # redis://127.0.0.1:6379/0); unset: each process limits on its own (one process only).
    redis_url: str | None = None
    # How far X-Timestamp may be from the gateway's clock, in seconds.
    timestamp_window_seconds: int = Field(default=300, ge=1)
    # Database transactions in flight per worker process (the others queue in memory, unanswered).
    db_concurrency: int = Field(default=4, ge=1)
    # New dossiers received per database transaction at most (group commit; 1 = one each), and
    # the threads per worker that write such batches.
    batch_size: int = Field(default=32, ge=1)
    batch_threads: int = Field(default=1, ge=1)
    # Seconds a 503 or 429 tells the sender to wait (Retry-After).
    retry_after_seconds: int = 5
    # FastAPI's OpenTelemetry spans and metrics per request (costly; off unless wanted).
    telemetry: bool = False
    # Absolute base URL for status links in answers (behind a reverse proxy); relative if unset.
    public_url: str | None = None
    # Agency code -> one or two active secrets (two during a rotation). Shared with the simulator,
    # hence the un-prefixed name LIENTHONG_AGENCY_SECRETS (a JSON object).
    agency_secrets: dict[str, list[SecretStr]] = Field(
        default_factory=dict, validation_alias="LIENTHONG_AGENCY_SECRETS"
    )

    @field_validator("agency_secrets")
    @classmethod
    def _one_or_two(cls, v: dict[str, list[SecretStr]]) -> dict[str, list[SecretStr]]:
        for agency, secrets in v.items():
            if not 1 <= len(secrets) <= 2:
                raise ValueError(f"{agency}: give one active secret, or two during a rotation")
            if any(len(s.get_secret_value()) < 16 for s in secrets):
                raise ValueError(f"{agency}: a secret must have at least 16 characters")
        return v


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
    # Sections, each read from its own prefix (LIENTHONG_VAULT_*, LIENTHONG_GATEWAY_*).
    vault: VaultSettings = Field(default_factory=VaultSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)

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
