"""Reception (tiếp nhận): a submission becomes a dossier with its code, appointment and history.

Used by the CLI and demo, the webhook gateway and operators alike. A redelivered submission with
the same idempotency key returns the dossier already received, never a second one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienthong.calendar import WorkingCalendar, get_calendar
from lienthong.catalog import Catalog, get_catalog
from lienthong.clock import localize
from lienthong.codes import format_dossier_code
from lienthong.db import session_scope
from lienthong.db.models import ComponentRow, DossierRow
from lienthong.db.store import append_history, next_sequence
from lienthong.dossier import Dossier, Status, StatusChange
from lienthong.payloads import Submission
from lienthong.settings import get_settings


@dataclass(frozen=True)
class Receipt:
    """What the receiving desk tells the applicant (the content of Form 01)."""

    dossier_code: str
    dossier_uid: str
    procedure_id: str
    procedure_code: str
    received_at: datetime
    due_at: datetime
    created: bool


def receive(
    submission: Submission,
    *,
    idempotency_key: str | None = None,
    unit_id: str | None = None,
    session: Session | None = None,
    catalog: Catalog | None = None,
    calendar: WorkingCalendar | None = None,
    actor: str = "MOT_CUA",
) -> Receipt:
    if session is None:
        with session_scope() as s:
            return receive(submission, idempotency_key=idempotency_key, unit_id=unit_id,
                           session=s, catalog=catalog, calendar=calendar, actor=actor)
    catalog = catalog or get_catalog()
    calendar = calendar or get_calendar()
    unit_id = unit_id or get_settings().unit_id
    proc = catalog.get(submission.procedure_code)
    options = proc.resolve_options(submission.options)

    if idempotency_key:
        existing = session.execute(
            select(DossierRow).where(DossierRow.idempotency_key == idempotency_key)
        ).scalar_one_or_none()
        if existing is not None:
            return _receipt(existing, proc.code, created=False)

    received_at = localize(submission.received_at)
    seq = next_sequence(session, unit_id, received_at.date())
    code = format_dossier_code(unit_id, received_at.date(), seq)
    dossier = Dossier(code=code, procedure_id=proc.id, procedure_version=proc.version,
                      time_limit=proc.limit(submission.verification), received_at=received_at)
    submitted = StatusChange(None, Status.SUBMITTED, received_at, "submit", submission.channel)
    dossier.history.append(submitted)
    accepted = dossier.apply("receive", received_at, calendar, actor=actor)
    owner = submission.owner()
    # A new dossier has no supplements or re-appointment yet: its row is written whole, without
    # the reads save_aggregate() needs for an existing one (reception is the gateway's hot path).
    row = DossierRow(
        code=code, uid=uuid.uuid4().hex, unit_id=unit_id, procedure_id=proc.id, procedure_code=proc.code,
        procedure_version=proc.version, time_limit_days=dossier.time_limit.working_days,
        channel=submission.channel, status=int(dossier.status), received_at=received_at,
        clock_started_at=dossier.clock_started_at, due_at=dossier.due_at, late=False,
        owner_citizen_id=owner.citizen_id or submission.applicant.citizen_id,
        options=options, payload=submission.model_dump(mode="json"), deliveries={},
        idempotency_key=idempotency_key, created_at=received_at, updated_at=received_at,
    )
    session.add(row)
    session.flush()
    append_history(session, row, submitted)
    append_history(session, row, accepted)
    for comp in submission.components:
        session.add(ComponentRow(dossier_id=row.id, code=comp.code, name=comp.name,
                                 file_ref=comp.file, vault_address=comp.vault_address,
                                 paper=comp.paper, meta={}))
    return _receipt(row, proc.code, created=True)


def _receipt(row: DossierRow, procedure_code: str, *, created: bool) -> Receipt:
    assert row.due_at is not None
    return Receipt(row.code, row.uid, row.procedure_id, procedure_code, row.received_at, row.due_at, created)
