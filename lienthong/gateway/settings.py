"""Typed settings of the gateway (``LIENTHONG_GATEWAY_`` prefix) and the agencies' HMAC secrets."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class GatewaySettings(BaseSettings):
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


@lru_cache
def get_gateway_settings() -> GatewaySettings:
    return GatewaySettings()


def reset_gateway_settings() -> None:
    get_gateway_settings.cache_clear()
