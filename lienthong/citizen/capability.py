"""The status capability: an unguessable link to one dossier's status, printed as the receipt's
QR code and carried by every notification.

A dossier code says nothing secret (codes are sequential per unit and day), so the status is
answered only to a token: the dossier's random ``uid`` followed by a MAC of it under the
deployment's key (HMAC-SHA256, 128 bits kept). Nothing is stored per dossier until a token is
revoked: revoking bumps the dossier's token generation, so the old link stops working at once and
a new one (printed on a new receipt, sent in the next message) takes its place.

The key comes from ``LIENTHONG_STATUS_KEY``; without it a random key is made once and kept in
``<var_dir>/secrets/status.key`` (0600), shared by the processes of one machine.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lienthong.clock import get_clock
from lienthong.db.models import Base, DossierRow
from lienthong.settings import get_settings

TOKEN = re.compile(r"^([0-9a-f]{32})([A-Za-z0-9_-]{22})$")
PAGE_PATH = "/tra-cuu/"


class StatusSettings(BaseSettings):
    """``LIENTHONG_STATUS_*``."""

    model_config = SettingsConfigDict(env_prefix="LIENTHONG_STATUS_", extra="ignore")

    key: SecretStr | None = None
    # Absolute base of the links (the gateway as citizens reach it); default: the gateway's
    # LIENTHONG_GATEWAY_PUBLIC_URL, else LIENTHONG_CALLBACK_BASE_URL.
    public_url: str | None = None
    gateway_public_url: str | None = Field(default=None, validation_alias="LIENTHONG_GATEWAY_PUBLIC_URL")
    # Requests per minute allowed per token and per client address (Redis, fixed window).
    per_token_per_minute: int = 30
    per_ip_per_minute: int = 120
    redis_url: str = "redis://127.0.0.1:6379/0"


class StatusCapability(Base):
    """A dossier whose status link was revoked at least once: the generation now valid."""

    __tablename__ = "status_capabilities"
    dossier_uid: Mapped[str] = mapped_column(String(32), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, nullable=False)
    revoked_at: Mapped[datetime] = mapped_column(nullable=False)
    revoked_by: Mapped[str] = mapped_column(String(64), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)


def _key_file() -> Path:
    return get_settings().var_dir / "secrets" / "status.key"


@lru_cache(maxsize=4)
def _file_key(path: str) -> bytes:
    p = Path(path)
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        fresh = secrets.token_bytes(32).hex()
        tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(fresh)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, p)  # the first writer wins; a racing one reads the winner's key
        tmp.unlink(missing_ok=True)
    return bytes.fromhex(p.read_text().strip())


def _key() -> bytes:
    s = StatusSettings()
    if s.key is not None:
        return s.key.get_secret_value().encode()
    return _file_key(str(_key_file()))


def _mac(uid: str, generation: int) -> str:
    digest = hmac.new(_key(), f"status:{uid}:{generation}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def generation_of(session: Session, uid: str) -> int:
    return session.execute(
        select(StatusCapability.generation).where(StatusCapability.dossier_uid == uid)
    ).scalar() or 0


def token_for(uid: str, generation: int = 0) -> str:
    return uid + _mac(uid, generation)


def base_url() -> str:
    s = StatusSettings()
    return (s.public_url or s.gateway_public_url or get_settings().callback_base_url).rstrip("/")


def status_url(token: str) -> str:
    return base_url() + PAGE_PATH + token


def current_url(session: Session, uid: str) -> str:
    return status_url(token_for(uid, generation_of(session, uid)))


def resolve(session: Session, token: str) -> DossierRow | None:
    """The dossier a token opens, or None (malformed, forged, revoked or unknown alike)."""
    m = TOKEN.match(token or "")
    if m is None:
        return None
    uid, mac = m.groups()
    if not hmac.compare_digest(mac, _mac(uid, generation_of(session, uid))):
        return None
    return session.execute(select(DossierRow).where(DossierRow.uid == uid)).scalar_one_or_none()


def revoke(session: Session, code: str, *, by: str, reason: str | None = None) -> str:
    """Invalidate the dossier's current link; returns the new one (to print or send)."""
    row = session.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one_or_none()
    if row is None:
        from lienthong.db.store import DossierNotFound

        raise DossierNotFound(f"no dossier {code}", message_vi=f"Không tìm thấy hồ sơ {code}.")
    cap = session.get(StatusCapability, row.uid, with_for_update=True)
    now = get_clock().now()
    if cap is None:
        cap = StatusCapability(dossier_uid=row.uid, generation=1, revoked_at=now, revoked_by=by, reason=reason)
        session.add(cap)
    else:
        cap.generation += 1
        cap.revoked_at, cap.revoked_by, cap.reason = now, by, reason
    session.flush()
    return status_url(token_for(row.uid, cap.generation))


def describe(token: str) -> dict[str, Any]:
    """What a log line may say about a token: its first characters, never enough to use it."""
    return {"token": (token or "")[:6] + "…"}
