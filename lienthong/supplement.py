"""Intake after reception: the one complete request for supplement (Form 02) and its return.

The law allows one complete request at reception; a dossier still failing after the supplement
gets a second request during appraisal (it counts against the agency in the service index), and a
third failure ends the dossier with the reasons. Every function is idempotent by round, because a
suspended flow re-runs its body from the top when resumed.
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select

from lienthong.calendar import WorkingCalendar, get_calendar
from lienthong.clock import Clock, get_clock
from lienthong.db import session_scope
from lienthong.db.models import ComponentRow
from lienthong.db.store import apply_event, get_row, to_aggregate
from lienthong.dossier import Status
from lienthong.errors import SupplementAlreadyRequested
from lienthong.payloads import Submission

Outcome = Literal["requested", "already", "refused"]
RECEPTION = "MOT_CUA"


def component_problems(dossier_code: str) -> list[str]:
    """One Vietnamese line per component that digitization or its reviewer rejected."""
    with session_scope() as s:
        row = get_row(s, dossier_code)
        comps = s.execute(select(ComponentRow).where(ComponentRow.dossier_id == row.id,
                                                     ComponentRow.status == "rejected")).scalars()
        return [f"{c.name}: {(c.meta or {}).get('supplement_reason') or 'đề nghị nộp lại bản đọc được.'}"
                for c in comps]


def request_supplement(dossier_code: str, lines: list[str], round_no: int, *,
                       calendar: WorkingCalendar | None = None, clock: Clock | None = None) -> Outcome:
    """Ask the applicant, once and completely, for everything ``lines`` names (status 5, clock stopped)."""
    calendar, clock = calendar or get_calendar(), clock or get_clock()
    with session_scope() as s:
        row = get_row(s, dossier_code, for_update=True)
        dossier = to_aggregate(s, row)
        if dossier.status.terminal:
            return "refused"
        if dossier.supplement_count >= round_no:
            return "already"
        now = clock.now()
        if dossier.status == Status.ACCEPTED and dossier.supplements:
            # The reception phase had its request: a second one belongs to appraisal.
            apply_event(s, dossier_code, "start_processing", now, calendar, actor=RECEPTION)
        try:
            apply_event(s, dossier_code, "request_supplement", now, calendar, actor=RECEPTION,
                        items=lines)
            return "requested"
        except SupplementAlreadyRequested:
            reason = "Hồ sơ vẫn chưa đầy đủ sau khi đã yêu cầu bổ sung: " + "; ".join(lines)
            event = "stop" if row.status == Status.PROCESSING else "refuse_at_reception"
            apply_event(s, dossier_code, event, now, calendar, actor=RECEPTION, reason=reason)
            return "refused"


def supplement_received(dossier_code: str, round_no: int, *, calendar: WorkingCalendar | None = None,
                        clock: Clock | None = None) -> Status:
    """The complete dossier is back: the clock restarts from zero and new files are queued for digitizing."""
    calendar, clock = calendar or get_calendar(), clock or get_clock()
    with session_scope() as s:
        row = get_row(s, dossier_code, for_update=True)
        dossier = to_aggregate(s, row)
        pending = dossier.supplements[-1] if dossier.supplements else None
        if (dossier.status == Status.SUPPLEMENT_REQUESTED and dossier.supplement_count == round_no
                and pending is not None and pending.completed_at is None):
            dossier = apply_event(s, dossier_code, "supplement_received", clock.now(), calendar,
                                  actor="citizen")
        _sync_components(s, row)
        return dossier.status


def _sync_components(session, row) -> None:  # type: ignore[no-untyped-def]
    """Components of the (supplemented) payload become rows; a replaced file is digitized again."""
    submission = Submission.model_validate(row.payload)
    existing = {c.code: c for c in session.execute(
        select(ComponentRow).where(ComponentRow.dossier_id == row.id)).scalars()}
    for comp in submission.components:
        have = existing.get(comp.code)
        if have is None:
            session.add(ComponentRow(dossier_id=row.id, code=comp.code, name=comp.name,
                                     file_ref=comp.file, vault_address=comp.vault_address,
                                     paper=comp.paper, meta={}))
        elif comp.file and comp.file != have.file_ref:
            have.file_ref, have.paper = comp.file, comp.paper or have.paper
            have.digitized, have.status, have.confidence = False, "received", None
