"""Settings of the result vault, read from the environment with the ``LIENTHONG_VAULT_`` prefix.

The embedded default is a directory under ``<var_dir>/vault``; production sets ``backend=s3`` and an
endpoint/bucket (AWS, MinIO, any S3-compatible store) with no code change.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lienthong.settings import get_settings


class VaultSettings(BaseSettings):
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


@lru_cache
def get_vault_settings() -> VaultSettings:
    return VaultSettings()


def reset_vault_settings() -> None:
    get_vault_settings.cache_clear()
