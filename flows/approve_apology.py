"""``approve-apology``: the responsible agency approves (or drops) its Form 04 draft in the UI.

The run suspends with an :class:`ApologyApproval` form pre-filled from the draft; on resume the
appointment moves, Form 04 is rendered under ``var/forms/<code>/`` and the citizen is notified.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from prefect import flow, get_run_logger
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput
from prefect.runtime import deployment

from lienthong.calendar import get_calendar
from lienthong.sweep import pending_apologies
from tasks.accountability import approve_apology_task, relay_task


class ApologyApproval(RunInput):
    """The agency leader's decision on a draft apology and re-appointment (Mẫu 04)."""

    approved: bool = True
    new_appointment: date | None = None
    reason: str | None = None
    approver: str = ""


@flow(
    name="approve-apology",
    flow_run_name="approve-apology · {dossier_code}",
    description="Approve the apology and re-appointment letter (Form 04) drafted at D-1.",
)
def approve_apology_flow(dossier_code: str, wait_seconds: int | None = None) -> dict[str, Any]:
    log = get_run_logger()
    draft = next((d for d in pending_apologies() if d.dossier_code == dossier_code), None)
    if draft is None:
        log.info("no pending Form 04 draft for %s", dossier_code)
        return {"dossier_code": dossier_code, "pending": False}
    prompt = (
        f"**Phiếu xin lỗi và hẹn lại ngày trả kết quả** — hồ sơ `{dossier_code}`\n\n"
        f"- Cơ quan: {draft.agency}\n- Hẹn cũ: {draft.original_due:%H:%M %d/%m/%Y}\n"
        f"- Đề xuất hẹn mới: {draft.new_due:%H:%M %d/%m/%Y}\n- Lý do: {draft.reason}"
    )
    form = ApologyApproval.with_initial_data(
        description=prompt, approved=True, new_appointment=draft.new_due.date(), reason=draft.reason
    )
    if deployment.id:
        decision = suspend_flow_run(
            wait_for_input=form, timeout=wait_seconds, key=f"form04-{dossier_code}"
        )
    else:  # a local run without a deployment cannot suspend; it waits in-process instead
        decision = pause_flow_run(wait_for_input=form, timeout=wait_seconds or 3600)
    cal = get_calendar()
    new_due = (
        datetime.combine(decision.new_appointment, cal.closes, tzinfo=cal.tz)
        if decision.new_appointment
        else None
    )
    result = approve_apology_task(
        dossier_code, decision.approved, decision.approver or "prefect-ui", new_due, decision.reason
    )
    relay_task()
    return result
