"""Tables of the accountability features: the portal sync ledger and its catch-up checkpoints,
deadline-sweep events, lateness attribution, and read-only history from the previous system.

All of them live in migration ``0003_accountability``; none changes a foundation table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from lienthong.db.models import Base


class PortalSyncRow(Base):
    """What was sent to the national portal (Cổng DVCQG) for one dossier, and what it acknowledged.

    ``hoso_hash`` / ``progress_hash`` are content hashes of the last *acknowledged* payloads, so a
    re-run sends only what changed.
    """

    __tablename__ = "portal_sync"
    dossier_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    dossier_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    hoso_hash: Mapped[str | None] = mapped_column(String(64))
    progress_hash: Mapped[str | None] = mapped_column(String(64))
    progress_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    portal_status: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="pending", nullable=False, index=True)
    sent_at: Mapped[datetime | None]
    acked_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)


class PortalCheckpoint(Base):
    """Progress of a resumable catch-up (keyset over dossier ids): where the next batch starts."""

    __tablename__ = "portal_checkpoints"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    total: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    processed: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    sent: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    unchanged: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    failed: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    started_at: Mapped[datetime] = mapped_column(nullable=False)
    updated_at: Mapped[datetime] = mapped_column(nullable=False)
    finished_at: Mapped[datetime | None]


class SweepEvent(Base):
    """One action of the deadline sweep (warning, late mark, apology draft), recorded once.

    ``subject`` is ``dossier`` or ``step:<step_key>``; the unique key makes the sweep idempotent.
    """

    __tablename__ = "sweep_events"
    __table_args__ = (UniqueConstraint("dossier_id", "subject", "kind"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    dossier_code: Mapped[str] = mapped_column(String(40), nullable=False)
    subject: Mapped[str] = mapped_column(String(80), nullable=False)
    kind: Mapped[str] = mapped_column(String(24), nullable=False)
    agency: Mapped[str] = mapped_column(String(32), nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LatenessRow(Base):
    """Lateness attributed to the agency whose step overran (the Form 05 verdict ``quá hạn``)."""

    __tablename__ = "lateness"
    __table_args__ = (UniqueConstraint("dossier_id", "subject"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    dossier_code: Mapped[str] = mapped_column(String(40), nullable=False)
    procedure_code: Mapped[str] = mapped_column(String(32), nullable=False)
    subject: Mapped[str] = mapped_column(String(80), nullable=False)
    agency: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    # Office-hours seconds past the step's (or dossier's) own due time; grows while still open.
    overrun_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    primary: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    due_at: Mapped[datetime] = mapped_column(nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(nullable=False)


class HistoryDossier(Base):
    """A dossier of the previous one-stop software, imported read-only for reports and the index."""

    __tablename__ = "history_dossiers"
    __table_args__ = (Index("ix_history_received", "received_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    procedure_code: Mapped[str] = mapped_column(String(32), nullable=False)
    agency: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    received_at: Mapped[datetime] = mapped_column(nullable=False)
    due_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    supplement_requests: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    row_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    source_file: Mapped[str] = mapped_column(Text, nullable=False)
    line_no: Mapped[int] = mapped_column(Integer, nullable=False)
    imported_at: Mapped[datetime] = mapped_column(nullable=False)


__all__ = ["HistoryDossier", "LatenessRow", "PortalCheckpoint", "PortalSyncRow", "SweepEvent"]
