"""Storage operations of the procedure engine: code allocation, dossier aggregate load/save,
steps and hand-overs. Every function takes an open session; the caller owns the transaction."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lienthong.calendar import TimeLimit, WorkingCalendar
from lienthong.db.models import (
    DossierRow,
    DossierSequence,
    HandOver,
    ReappointmentRow,
    StatusHistory,
    StepRow,
    SupplementRow,
    table_of,
)
from lienthong.dossier import Dossier, Reappointment, Status, StatusChange, SupplementRequest
from lienthong.errors import ExitCode, LienThongError


class DossierNotFound(LienThongError, LookupError):
    code = "dossier_not_found"
    exit_code = ExitCode.NOT_FOUND


def next_sequence(session: Session, unit_id: str, day: date) -> int:
    """The next dossier sequence number of a unit for a day: one atomic upsert, so parallel writers
    on PostgreSQL queue on the row lock and never see the same number."""
    table = table_of(DossierSequence)
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = ins.values(unit_id=unit_id, day=day, last_value=1).on_conflict_do_update(
        index_elements=["unit_id", "day"], set_={"last_value": table.c.last_value + 1}
    ).returning(table.c.last_value)
    return int(session.execute(stmt).scalar_one())


def get_row(session: Session, code: str, *, for_update: bool = False) -> DossierRow:
    stmt = select(DossierRow).where(DossierRow.code == code)
    if for_update:
        stmt = stmt.with_for_update()
    row = session.execute(stmt).scalar_one_or_none()
    if row is None:
        raise DossierNotFound(f"no dossier {code}", message_vi=f"Không tìm thấy hồ sơ {code}.")
    return row


def to_aggregate(session: Session, row: DossierRow) -> Dossier:
    supplements = session.execute(
        select(SupplementRow).where(SupplementRow.dossier_id == row.id).order_by(SupplementRow.id)
    ).scalars()
    re = session.execute(
        select(ReappointmentRow).where(ReappointmentRow.dossier_id == row.id)
    ).scalar_one_or_none()
    return Dossier(
        code=row.code,
        procedure_id=row.procedure_id,
        procedure_version=row.procedure_version,
        time_limit=TimeLimit(row.time_limit_days),
        received_at=row.received_at,
        status=Status(row.status),
        clock_started_at=row.clock_started_at,
        due_at=row.due_at,
        clock_paused_at=row.clock_paused_at,
        finished_at=row.finished_at,
        delivered_at=row.delivered_at,
        reason=row.reason,
        supplements=[SupplementRequest(s.phase, s.requested_at, list(s.items), s.completed_at)  # type: ignore[arg-type]
                     for s in supplements],
        reappointment=Reappointment(re.original_due, re.new_due, re.reason, re.recorded_at, re.agency)
        if re else None,
        deliveries={k: datetime.fromisoformat(v) for k, v in (row.deliveries or {}).items()},
    )


def save_aggregate(session: Session, row: DossierRow, dossier: Dossier, now: datetime) -> None:
    """Write the aggregate's state back; new history lines and supplements are appended."""
    row.status = int(dossier.status)
    row.clock_started_at = dossier.clock_started_at
    row.clock_paused_at = dossier.clock_paused_at
    row.due_at = dossier.due_at
    row.finished_at = dossier.finished_at
    row.delivered_at = dossier.delivered_at
    row.reason = dossier.reason
    row.late = bool(dossier.due_at and dossier.finished_at and dossier.finished_at > dossier.due_at)
    row.deliveries = {k: v.isoformat() for k, v in dossier.deliveries.items()}
    row.updated_at = now
    existing = session.execute(
        select(SupplementRow).where(SupplementRow.dossier_id == row.id).order_by(SupplementRow.id)
    ).scalars().all()
    for i, s in enumerate(dossier.supplements):
        if i < len(existing):
            existing[i].completed_at = s.completed_at
        else:
            session.add(SupplementRow(dossier_id=row.id, phase=s.phase, requested_at=s.requested_at,
                                      completed_at=s.completed_at, items=s.items))
    if dossier.reappointment is not None:
        has = session.execute(
            select(ReappointmentRow.id).where(ReappointmentRow.dossier_id == row.id)
        ).first()
        if not has:
            r = dossier.reappointment
            session.add(ReappointmentRow(dossier_id=row.id, original_due=r.original_due,
                                         new_due=r.new_due, reason=r.reason,
                                         recorded_at=r.recorded_at, agency=r.agency))


def append_history(session: Session, row: DossierRow, change: StatusChange) -> None:
    session.add(StatusHistory(
        dossier_id=row.id,
        from_status=int(change.from_status) if change.from_status is not None else None,
        to_status=int(change.to_status), event=change.event, at=change.at, actor=change.actor,
        reason=change.reason,
    ))


def apply_event(
    session: Session,
    code: str,
    event: str,
    at: datetime,
    calendar: WorkingCalendar,
    *,
    actor: str = "system",
    reason: str | None = None,
    items: list[str] | None = None,
) -> Dossier:
    """Load the dossier under a row lock, apply one event, persist state and history."""
    row = get_row(session, code, for_update=True)
    dossier = to_aggregate(session, row)
    change = dossier.apply(event, at, calendar, actor=actor, reason=reason, items=items)  # type: ignore[arg-type]
    save_aggregate(session, row, dossier, at)
    append_history(session, row, change)
    return dossier


# --- steps and hand-overs ---------------------------------------------------------------------


def get_step(session: Session, dossier_id: int, step_key: str, *, for_update: bool = False) -> StepRow | None:
    stmt = select(StepRow).where(StepRow.dossier_id == dossier_id, StepRow.step_key == step_key)
    if for_update:
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def open_step(
    session: Session,
    row: DossierRow,
    *,
    step_key: str,
    agency: str,
    action: str,
    kind: str,
    limit: TimeLimit,
    at: datetime,
    calendar: WorkingCalendar,
    givers: list[tuple[str, str | None]],
) -> StepRow:
    """Create the step (idempotent: an existing one is returned) and record its hand-overs:
    one per giver (agency, verdict of the giver's own step)."""
    step = get_step(session, row.id, step_key)
    if step is not None:
        return step
    step = StepRow(
        ref=uuid.uuid4().hex, dossier_id=row.id, step_key=step_key, agency=agency, action=action,
        kind=kind, time_limit_days=limit.working_days, status="pending", started_at=at,
        due_at=calendar.due(at, limit), outputs={},
    )
    session.add(step)
    session.flush()
    for giver, verdict in givers:
        session.add(HandOver(dossier_id=row.id, step_id=step.id, from_agency=giver,
                             to_agency=agency, at=at, verdict=verdict))
    return step


def close_step(
    session: Session,
    step: StepRow,
    *,
    status: str,
    at: datetime,
    calendar: WorkingCalendar,
    outputs: dict[str, Any] | None = None,
    error: str | None = None,
) -> StepRow:
    step.status = status
    step.finished_at = at
    if step.due_at is not None:
        verdict = calendar.verdict(step.due_at, at)
        step.verdict = verdict.value
        step.late = verdict.value == "late"
    if outputs is not None:
        step.outputs = outputs
    step.error = error
    return step


def record_hand_over(session: Session, row: DossierRow, *, from_agency: str, to_agency: str,
                     at: datetime, verdict: str | None, step_id: int | None = None,
                     note: str | None = None) -> None:
    session.add(HandOver(dossier_id=row.id, step_id=step_id, from_agency=from_agency,
                         to_agency=to_agency, at=at, verdict=verdict, note=note))
