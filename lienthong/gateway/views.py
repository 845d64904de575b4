"""What the gateway shows of a dossier: its sender's view (status, steps, the open request for
supplement) and the step results agencies sent back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienthong.db import session_scope
from lienthong.db.models import DossierRow, InboxRow, StepRow, SupplementRow
from lienthong.dossier import Status
from lienthong.gateway.errors import (
    NotFound,
)
from lienthong.gateway.schemas import (
    DossierView,
    StepView,
    SupplementView,
)
from lienthong.payloads import Submission
from lienthong.privacy import mask_citizen_id, mask_ids_in_text, mask_name


def status_path(code: str) -> str:
    return f"/v1/dossiers/{code}"


def find_dossier(session: Session, code: str) -> DossierRow:
    row = session.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one_or_none()
    if row is None:
        raise NotFound(
            f"no dossier {code}",
            code="dossier_not_found",
            message_vi=f"Không tìm thấy hồ sơ {code}.",
        )
    return row


def stored_step_result(step_ref: str, *, session: Session | None = None) -> dict[str, Any] | None:
    """The result an agency sent back for step ``step_ref`` (the StepRow's ``ref``), or None.

    The asynchronous agency path reads this before suspending, so a result that arrived first
    is never waited for."""
    if session is None:
        with session_scope() as s:
            return stored_step_result(step_ref, session=s)
    step = session.execute(select(StepRow.dossier_id).where(StepRow.ref == step_ref)).scalar()
    if step is None:
        return None
    code = session.execute(select(DossierRow.code).where(DossierRow.id == step)).scalar()
    for payload in session.execute(
        select(InboxRow.payload)
        .where(InboxRow.kind == "step_result", InboxRow.dossier_code == code)
        .order_by(InboxRow.id)
    ).scalars():
        if (payload or {}).get("step_ref") == step_ref:
            return dict(payload["body"])
    return None


def dossier_view(code: str) -> DossierView:
    """The sender's view of a dossier, with the open request for supplement (Form 02) if any."""
    with session_scope() as s:
        row = find_dossier(s, code)
        steps = s.execute(select(StepRow).where(StepRow.dossier_id == row.id).order_by(StepRow.id)).scalars()
        supplements = (
            s.execute(select(SupplementRow).where(SupplementRow.dossier_id == row.id).order_by(SupplementRow.id))
            .scalars()
            .all()
        )
        status = Status(row.status)
        request = None
        if status == Status.SUPPLEMENT_REQUESTED and supplements:
            last = supplements[-1]
            request = SupplementView(
                round=len(supplements),
                phase=last.phase,
                requested_at=last.requested_at,
                completed_at=last.completed_at,
                lines=[mask_ids_in_text(str(i)) for i in last.items or []],
            )
        owner = Submission.model_validate(row.payload).owner() if row.payload else None
        return DossierView(
            dossier_code=row.code,
            procedure_id=row.procedure_id,
            procedure_code=row.procedure_code,
            status=int(status),
            status_label=status.label_vi,
            received_at=row.received_at,
            due_at=row.due_at,
            finished_at=row.finished_at,
            owner=mask_name(owner.full_name if owner else None),
            owner_citizen_id=mask_citizen_id(row.owner_citizen_id),
            run_started=row.flow_run_id is not None,
            steps=[
                StepView(
                    step=st.step_key,
                    agency=st.agency,
                    status=st.status,
                    due_at=st.due_at,
                    finished_at=st.finished_at,
                    verdict=st.verdict,
                )
                for st in steps
            ],
            supplement_request=request,
            reason=mask_ids_in_text(row.reason) if row.reason else None,
        )
