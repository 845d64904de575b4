"""Tables of the procedure engine. The dossier row mirrors :class:`lienthong.dossier.Dossier`;
status history and hand-overs are append-only records (the control slip, Form 05)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator, TypeEngine

from lienthong.clock import VN_TZ


class TZDateTime(TypeDecorator[datetime]):
    """An aware datetime, returned in Asia/Ho_Chi_Minh: ``timestamptz`` on PostgreSQL, ISO 8601
    text with its offset on SQLite (which has no time zone type). Naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def _resolve_for_python_type(self, python_type: Any, matched_on: Any,
                                 matched_on_flattened: Any) -> TZDateTime:
        # TypeDecorator proxies unknown attributes to its impl; without this override the
        # declarative type_annotation_map would quietly map Mapped[datetime] to a plain DateTime.
        return self

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store times with their offset")
        if dialect.name == "sqlite":
            # Normalised to +07:00 so that text order is time order.
            return value.astimezone(VN_TZ).isoformat(timespec="microseconds")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} in the database: it was stored without offset")
        return value.astimezone(VN_TZ)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: TZDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


def table_of(model: type[Base]) -> Table:
    """A mapped class's Core table (for statements built without the ORM), typed as one."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class DossierSequence(Base):
    """Last dossier sequence number used per receiving unit per day (allocated under a row lock)."""

    __tablename__ = "dossier_sequences"
    unit_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer, nullable=False)


class DossierRow(Base):
    __tablename__ = "dossiers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    # Globally unique, unlike the code (whose sequence restarts with a new database): it keys the
    # dossier's flow run, so a redelivered start finds the same run and a new dossier never an old one.
    uid: Mapped[str] = mapped_column(String(32), unique=True, nullable=False,
                                     default=lambda: uuid.uuid4().hex)
    unit_id: Mapped[str] = mapped_column(String(32), nullable=False)
    procedure_id: Mapped[str] = mapped_column(String(64), nullable=False)
    procedure_code: Mapped[str] = mapped_column(String(32), nullable=False)
    procedure_version: Mapped[str] = mapped_column(String(32), nullable=False)
    time_limit_days: Mapped[int] = mapped_column(Integer, nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    received_at: Mapped[datetime] = mapped_column(nullable=False, index=True)
    clock_started_at: Mapped[datetime | None]
    clock_paused_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    late: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    owner_citizen_id: Mapped[str | None] = mapped_column(String(12), index=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    deliveries: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    updated_at: Mapped[datetime] = mapped_column(nullable=False)

    steps: Mapped[list[StepRow]] = relationship(back_populates="dossier", order_by="StepRow.id")
    components: Mapped[list[ComponentRow]] = relationship(back_populates="dossier")


class ComponentRow(Base):
    """A dossier component (thành phần hồ sơ): uploaded, digitized, or reused from the vault."""

    __tablename__ = "components"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    file_ref: Mapped[str | None] = mapped_column(Text)
    vault_address: Mapped[str | None] = mapped_column(Text)
    paper: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    digitized: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    reused: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    from_national_vault: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    status: Mapped[str] = mapped_column(String(24), default="received", nullable=False)
    confidence: Mapped[float | None] = mapped_column(Float)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    dossier: Mapped[DossierRow] = relationship(back_populates="components")


class StepRow(Base):
    """One agency step of a dossier, with its own deadline and verdict."""

    __tablename__ = "steps"
    __table_args__ = (UniqueConstraint("dossier_id", "step_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    step_key: Mapped[str] = mapped_column(String(64), nullable=False)
    agency: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), default="agency", nullable=False)
    time_limit_days: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="pending", nullable=False, index=True)
    started_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    verdict: Mapped[str | None] = mapped_column(String(16))
    late: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    warned_at: Mapped[datetime | None]
    ticket: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)

    dossier: Mapped[DossierRow] = relationship(back_populates="steps")


class HandOver(Base):
    """A hand-over on the processing control slip (Phiếu kiểm soát quá trình giải quyết, Form 05)."""

    __tablename__ = "hand_overs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[int | None] = mapped_column(ForeignKey("steps.id", ondelete="CASCADE"))
    from_agency: Mapped[str] = mapped_column(String(32), nullable=False)
    to_agency: Mapped[str] = mapped_column(String(32), nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)
    # The giver's verdict on the step it hands over: early / on_time / late (None at the first hand-over).
    verdict: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


class StatusHistory(Base):
    """Append-only: a database trigger refuses UPDATE and DELETE."""

    __tablename__ = "status_history"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    from_status: Mapped[int | None] = mapped_column(Integer)
    to_status: Mapped[int] = mapped_column(Integer, nullable=False)
    event: Mapped[str] = mapped_column(String(32), nullable=False)
    at: Mapped[datetime] = mapped_column(nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)


class SupplementRow(Base):
    __tablename__ = "supplement_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    phase: Mapped[str] = mapped_column(String(16), nullable=False)
    requested_at: Mapped[datetime] = mapped_column(nullable=False)
    completed_at: Mapped[datetime | None]
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)


class ReappointmentRow(Base):
    """Apology and new appointment (Form 04); unique per dossier because the law allows one."""

    __tablename__ = "reappointments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), unique=True)
    original_due: Mapped[datetime] = mapped_column(nullable=False)
    new_due: Mapped[datetime] = mapped_column(nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    recorded_at: Mapped[datetime] = mapped_column(nullable=False)
    agency: Mapped[str] = mapped_column(String(32), nullable=False)
    approved_at: Mapped[datetime | None]


class InboxRow(Base):
    """A durable inbox of accepted requests (webhooks, supplements, agency callbacks)."""

    __tablename__ = "inbox"
    __table_args__ = (UniqueConstraint("source", "idempotency_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    body_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    dossier_code: Mapped[str | None] = mapped_column(String(40), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending", nullable=False, index=True)
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(nullable=False)
    processed_at: Mapped[datetime | None]


class OutboxRow(Base):
    """Messages to send out (portal sync, notifications), sent at least once by a relay."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "topic", "sent_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(32), nullable=False)
    key: Mapped[str] = mapped_column(String(200), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
