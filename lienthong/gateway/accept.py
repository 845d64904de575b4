"""What an agency or portal sends about a dossier already received: the citizen's supplement
(bổ sung) for an open request, and an agency's result for a step routed to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienthong.db.models import DossierRow, InboxRow, StepRow, SupplementRow
from lienthong.dossier import Status
from lienthong.gateway.errors import (
    Conflict,
    Forbidden,
    InvalidPayload,
    NotFound,
)
from lienthong.gateway.inbox import Answer, Delivery, existing, in_transaction, replay, store_and_answer
from lienthong.gateway.schemas import (
    Accepted,
    StepResultBody,
    SupplementBody,
)
from lienthong.gateway.views import find_dossier, stored_step_result

# Without a gateway submission on record, these may still send a dossier's supplement.
DEFAULT_SENDERS = frozenset({"DVCQG", "MOT_CUA"})
CLOSED_STEP = ("done", "refused")


def accept_supplement(d: Delivery, code: str, body: SupplementBody, status_url: Callable[[str], str]) -> Answer:
    """Store the citizen's supplement for the open request (round N); the relay resumes the run."""

    def work(s: Session) -> Answer:
        stored = existing(s, d)
        if stored is not None:
            return replay(stored, d)
        row = find_dossier(s, code)
        senders = set(
            s.execute(
                select(InboxRow.source).where(InboxRow.kind == "dossier", InboxRow.dossier_code == code)
            ).scalars()
        ) or set(DEFAULT_SENDERS)
        if d.agency not in senders | {"MOT_CUA"}:
            raise Forbidden(
                f"{d.agency} did not send dossier {code}",
                code="not_dossier_sender",
                message_vi="Cơ quan gửi không phải nơi đã nộp hồ sơ này.",
            )
        if row.status != Status.SUPPLEMENT_REQUESTED:
            raise Conflict(
                f"dossier {code} is in status {row.status}, no supplement is requested",
                code="supplement_not_requested",
                message_vi="Hồ sơ không ở trạng thái yêu cầu bổ sung.",
            )
        round_no = int(
            s.execute(
                select(func.count()).select_from(SupplementRow).where(SupplementRow.dossier_id == row.id)
            ).scalar_one()
        )
        earlier = s.execute(
            select(InboxRow.payload).where(InboxRow.kind == "supplement", InboxRow.dossier_code == code)
        ).scalars()
        if any((p or {}).get("round") == round_no for p in earlier):
            raise Conflict(
                f"the supplement of round {round_no} was already received",
                code="supplement_already_received",
                message_vi="Hồ sơ bổ sung của lần yêu cầu này đã được tiếp nhận.",
            )
        payload = {"body": body.model_dump(mode="json", exclude_none=True), "round": round_no,
                   "run_input": body.run_input()}
        return store_and_answer(s, d, payload, code, lambda now: Accepted(
            kind="supplement", dossier_code=code, status_url=status_url(code), received_at=now,
            round=round_no))

    return in_transaction(d, work)


def accept_step_result(d: Delivery, step_ref: str, body: StepResultBody, status_url: Callable[[str], str]) -> Answer:
    """Store an agency's result for a step routed to it; only that step's agency may send it."""

    def work(s: Session) -> Answer:
        stored = existing(s, d)
        if stored is not None:
            return replay(stored, d)
        step = s.execute(select(StepRow).where(StepRow.ref == step_ref)).scalar_one_or_none()
        if step is None:
            raise NotFound(
                f"no step {step_ref}",
                code="step_not_found",
                message_vi="Không tìm thấy bước xử lý này.",
            )
        if step.agency != d.agency:
            raise Forbidden(
                f"{d.agency} is not the agency of step {step_ref}",
                code="agency_not_on_step",
                message_vi="Cơ quan gửi không tham gia bước xử lý này.",
            )
        if step.status in CLOSED_STEP:
            raise Conflict(
                f"step {step_ref} is already closed ({step.status})",
                code="step_closed",
                message_vi="Bước xử lý này đã kết thúc.",
            )
        code, procedure_id, version, options = s.execute(
            select(DossierRow.code, DossierRow.procedure_id, DossierRow.procedure_version, DossierRow.options)
            .where(DossierRow.id == step.dossier_id)).one()
        _check_step_result(procedure_id, version, options, step.step_key, body)
        if stored_step_result(step_ref, session=s) is not None:
            raise Conflict(
                f"a result for step {step_ref} was already received",
                code="step_result_already_received",
                message_vi="Kết quả của bước xử lý này đã được tiếp nhận.",
            )
        payload = {"body": body.model_dump(mode="json", exclude_none=True), "step_ref": step_ref,
                   "step_key": step.step_key}
        return store_and_answer(s, d, payload, code, lambda now: Accepted(
            kind="step_result", dossier_code=code, status_url=status_url(code), received_at=now,
            step_id=step_ref))

    return in_transaction(d, work)


def _check_step_result(procedure_id: str, version: str, options: Any, step_key: str,
                       body: StepResultBody) -> None:
    """A result the catalog cannot use is refused here (422), so the agency can correct and resend
    it, rather than stored and found unusable by the flow after the key has been spent."""
    from lienthong.catalog import get_catalog
    from lienthong.routing import result_problems, result_problems_vi

    plan = get_catalog().get(procedure_id, version=version).plan(options)
    spec = next((x for x in plan.steps if x.id == step_key), None)
    if spec is None:  # a step the catalog no longer has (changed since it opened): the flow decides
        return
    problems = result_problems(spec, body.model_dump(mode="json"))
    if problems:
        raise InvalidPayload(
            f"result for step {step_key} unusable: {'; '.join(problems)}", code="agency_result_invalid",
            message_vi=result_problems_vi(spec, problems), details=[{"msg": p} for p in problems],
        )
