"""Sealing: canonical JSON and Ed25519 signatures with each issuing agency's key, and the keyring
that keeps every key an agency has sealed with, so that a result stays verifiable under the key that
sealed it after the agency rotates to a new one.

A seal is the Ed25519 signature of the result's metadata document in RFC 8785 canonical form
(JSON Canonicalization Scheme): another agency checks one with a stock JCS library and the public
key named by ``seal.key_id`` in the document. Seals made before RFC 8785 have no ``seal`` entry and
used this project's first canonical form (:data:`LEGACY`), which stays verifiable.

Keys come from settings (``LIENTHONG_VAULT_SIGNING_KEYS``, base64 of the 32-byte seed per agency,
and ``LIENTHONG_VAULT_PUBLIC_KEYS`` for the agencies' earlier keys with their validity); for the demo
an agency without one gets a key generated into ``<var_dir>/keys/<AGENCY>.pem``, and
:meth:`Keyring.rotate` replaces it, keeping the old public key in ``<AGENCY>.retired.json``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lienthong.vault.errors import SealError
from lienthong.vault.settings import VaultSettings, get_vault_settings

# Canonical forms of a sealed document, by the name recorded in the seal.
RFC8785 = "RFC8785"
LEGACY = "lienthong-json-1"  # sorted keys, no spaces, UTF-8, NFC (Python's json): seals before RFC 8785


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
    """The project's first canonical form (:data:`LEGACY`): sorted keys, no spaces, UTF-8, NFC.
    The hash chain and the data objects keep it; new seals use :func:`seal_bytes`."""
    return json.dumps(
        _plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def seal_form(document: dict[str, Any]) -> str:
    """The canonical form a sealed document was signed in (recorded in it since RFC 8785)."""
    seal = document.get("seal")
    return str(seal.get("canonicalization", RFC8785)) if isinstance(seal, dict) else LEGACY


def seal_bytes(document: dict[str, Any]) -> bytes:
    """The bytes a seal signs: the document (NFC) in the canonical form it records."""
    if seal_form(document) == LEGACY:
        return canonical_json(document)
    return rfc8785.dumps(_plain(document))


def seal_digest(document: dict[str, Any]) -> str:
    return hashlib.sha256(seal_bytes(document)).hexdigest()


def key_id_of(agency: str, public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{agency}:{hashlib.sha256(raw).hexdigest()[:16]}"


@dataclass(frozen=True)
class Seal:
    """A sealed document, the exact bytes signed, the signature (base64) and the key's id."""

    document: dict[str, Any]
    payload: bytes
    signature: str
    key_id: str


@dataclass(frozen=True)
class PublicKey:
    """One key an agency seals (or sealed) with, and when it may have sealed: [from, until)."""

    agency: str
    key: Ed25519PublicKey
    valid_from: datetime | None = None
    valid_until: datetime | None = None

    @property
    def key_id(self) -> str:
        return key_id_of(self.agency, self.key)

    def covers(self, at: datetime) -> bool:
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        return (self.valid_from is None or self.valid_from <= at) and (
            self.valid_until is None or at < self.valid_until
        )

    def as_json(self) -> dict[str, Any]:
        raw = self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "key_id": self.key_id,
            "public_key": base64.b64encode(raw).decode("ascii"),
            "valid_from": self.valid_from.isoformat() if self.valid_from else None,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
        }


def _public_key(agency: str, entry: dict[str, Any]) -> PublicKey:
    raw = base64.b64decode(entry["public_key"])
    if len(raw) != 32:
        raise SealError(f"a public key of {agency} must be 32 bytes, got {len(raw)}")

    def when(v: Any) -> datetime | None:
        if v in (None, ""):
            return None
        d = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
        return d if d.tzinfo else d.replace(tzinfo=UTC)

    return PublicKey(
        agency, Ed25519PublicKey.from_public_bytes(raw), when(entry.get("valid_from")),
        when(entry.get("valid_until")),
    )


def _write_private(path: Path, key: Ed25519PrivateKey, *, replace: bool) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())
    if replace:
        os.replace(tmp, path)
        return
    with contextlib.suppress(FileExistsError):
        os.link(tmp, path)  # first writer wins when processes race
    tmp.unlink(missing_ok=True)


class Keyring:
    """Ed25519 keys of the issuing agencies: the current signing key of each, and the public keys
    of every key each has sealed with (current and retired), with their validity."""

    def __init__(self, settings: VaultSettings | None = None) -> None:
        self.settings = settings or get_vault_settings()
        self._cache: dict[str, Ed25519PrivateKey] = {}
        self._lock = threading.RLock()

    def _path(self, agency: str) -> Path:
        return self.settings.key_root / f"{agency}.pem"

    def _retired_path(self, agency: str) -> Path:
        return self.settings.key_root / f"{agency}.retired.json"

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
                if not path.exists():
                    if not (create and self.settings.generate_keys):
                        raise SealError(
                            f"no signing key for agency {agency}",
                            message_vi=f"Chưa có khóa ký số của cơ quan {agency}.",
                        )
                    _write_private(path, Ed25519PrivateKey.generate(), replace=False)
                loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
                if not isinstance(loaded, Ed25519PrivateKey):
                    raise SealError(f"{path} is not an Ed25519 key")
                key = loaded
            self._cache[agency] = key
            return key

    def key_id(self, agency: str, *, create: bool = False) -> str:
        return key_id_of(agency, self._load(agency, create=create).public_key())

    def sign(self, agency: str, payload: bytes) -> tuple[str, str]:
        """``(base64 signature, key id)`` with the agency's current key."""
        with self._lock:
            key = self._load(agency, create=True)
            return base64.b64encode(key.sign(payload)).decode("ascii"), self.key_id(agency)

    def seal(self, agency: str, document: dict[str, Any]) -> Seal:
        """Seal ``document`` with the agency's current key: the document gains its ``seal`` entry
        (canonical form and key id), and the signature covers it in RFC 8785 form."""
        with self._lock:
            key_id = self.key_id(agency, create=True)
            sealed = {**document, "seal": {"canonicalization": RFC8785, "key_id": key_id}}
            payload = seal_bytes(sealed)
            signature, signed_with = self.sign(agency, payload)
            assert signed_with == key_id  # both under the lock: no rotation in between
            return Seal(sealed, payload, signature, key_id)

    def _retired(self, agency: str) -> list[PublicKey]:
        path = self._retired_path(agency)
        if not path.exists():
            return []
        return [_public_key(agency, e) for e in json.loads(path.read_text(encoding="utf-8"))]

    def public_keys(self, agency: str) -> list[PublicKey]:
        """Every key the agency has sealed with: the current one (valid from the end of the last
        retired one), the retired ones kept by :meth:`rotate`, and those listed in settings."""
        keys = [_public_key(agency, e) for e in self.settings.public_keys.get(agency, [])]
        keys += self._retired(agency)
        with contextlib.suppress(SealError):
            current = self._load(agency, create=False).public_key()
            ends = [k.valid_until for k in keys if k.valid_until is not None]
            keys.append(PublicKey(agency, current, max(ends) if ends else None, None))
        return keys

    def rotate(self, agency: str, at: datetime) -> str:
        """Replace the agency's generated signing key by a new one from ``at`` on; the old public
        key is kept (valid until ``at``) so that what it sealed stays verifiable. Keys given in
        settings are rotated there (new seed in SIGNING_KEYS, the old public key in PUBLIC_KEYS)."""
        if agency in self.settings.signing_keys:
            raise SealError(
                f"the signing key of {agency} comes from settings: rotate it there",
                message_vi="Khóa ký số của cơ quan này được cấu hình; hãy thay khóa trong cấu hình.",
            )
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        with self._lock:
            old = self._load(agency, create=True).public_key()
            retired = self._retired(agency)
            starts = [k.valid_until for k in retired if k.valid_until is not None]
            retired.append(PublicKey(agency, old, max(starts) if starts else None, at))
            path = self._retired_path(agency)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps([k.as_json() for k in retired], indent=2), encoding="utf-8")
            os.replace(tmp, path)
            _write_private(self._path(agency), Ed25519PrivateKey.generate(), replace=True)
            self._cache.pop(agency, None)
            return self.key_id(agency)

    def verify(
        self, agency: str, payload: bytes, signature: str, key_id: str, at: datetime | None = None
    ) -> str | None:
        """None when the signature holds under the agency's key ``key_id`` (and that key was valid
        at ``at``, the publication time, when given); otherwise what is wrong."""
        keys = {k.key_id: k for k in self.public_keys(agency)}
        key = keys.get(key_id)
        if key is None:
            return f"signed with key {key_id}, which is not one of {agency}'s keys"
        if at is not None and not key.covers(at):
            return f"signed at {at.isoformat()} with key {key_id}, outside its validity"
        try:
            key.key.verify(base64.b64decode(signature), payload)
        except (InvalidSignature, ValueError):
            return "signature does not match the sealed metadata"
        return None
