"""Sealing: canonical JSON and Ed25519 signatures with each issuing agency's key.

Keys come from settings (``LIENTHONG_VAULT_SIGNING_KEYS``, base64 of the 32-byte seed per agency);
for the demo an agency without one gets a key generated into ``<var_dir>/keys/<AGENCY>.pem``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import unicodedata
from datetime import date, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lienthong.vault.errors import SealError
from lienthong.vault.settings import VaultSettings, get_vault_settings


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return value if value.isascii() else unicodedata.normalize("NFC", value)  # ASCII is NFC
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8, NFC: the same document always gives the same bytes."""
    return json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


class Keyring:
    """Ed25519 keys of the issuing agencies."""

    def __init__(self, settings: VaultSettings | None = None) -> None:
        self.settings = settings or get_vault_settings()
        self._cache: dict[str, Ed25519PrivateKey] = {}
        self._key_ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def _path(self, agency: str) -> Path:
        return self.settings.key_root / f"{agency}.pem"

    def _load(self, agency: str, *, create: bool) -> Ed25519PrivateKey:
        with self._lock:
            if agency in self._cache:
                return self._cache[agency]
            secret = self.settings.signing_keys.get(agency)
            if secret is not None:
                seed = base64.b64decode(secret.get_secret_value())
                if len(seed) != 32:
                    raise SealError(f"signing key of {agency} must be 32 bytes, got {len(seed)}")
                key = Ed25519PrivateKey.from_private_bytes(seed)
            else:
                path = self._path(agency)
                if path.exists():
                    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
                    if not isinstance(loaded, Ed25519PrivateKey):
                        raise SealError(f"{path} is not an Ed25519 key")
                    key = loaded
                elif create and self.settings.generate_keys:
                    key = Ed25519PrivateKey.generate()
                    path.parent.mkdir(parents=True, exist_ok=True)
                    pem = key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                    tmp = path.with_suffix(f".tmp{os.getpid()}")
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(pem)
                    with contextlib.suppress(FileExistsError):
                        os.link(tmp, path)  # first writer wins when processes race
                    tmp.unlink(missing_ok=True)
                    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
                    assert isinstance(loaded, Ed25519PrivateKey)
                    key = loaded
                else:
                    raise SealError(
                        f"no signing key for agency {agency}",
                        message_vi=f"Chưa có khóa ký số của cơ quan {agency}.",
                    )
            self._cache[agency] = key
            return key

    def public_key(self, agency: str) -> Ed25519PublicKey:
        return self._load(agency, create=False).public_key()

    def key_id(self, agency: str, *, create: bool = False) -> str:
        key = self._load(agency, create=create)
        known = self._key_ids.get(agency)
        if known is None:
            raw = key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            known = self._key_ids[agency] = f"{agency}:{hashlib.sha256(raw).hexdigest()[:16]}"
        return known

    def sign(self, agency: str, payload: bytes) -> tuple[str, str]:
        """``(base64 signature, key id)``."""
        key = self._load(agency, create=True)
        return base64.b64encode(key.sign(payload)).decode("ascii"), self.key_id(agency)

    def verify(self, agency: str, payload: bytes, signature: str, key_id: str) -> str | None:
        """None when the signature holds; otherwise what is wrong."""
        try:
            current = self.key_id(agency)
        except SealError as exc:
            return exc.message
        if key_id != current:
            return f"signed with key {key_id}, the agency's key is {current}"
        try:
            self.public_key(agency).verify(base64.b64decode(signature), payload)
        except (InvalidSignature, ValueError):
            return "signature does not match the sealed metadata"
        return None
