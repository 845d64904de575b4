"""``deadline-sweep``: every 15 minutes in working hours, warn, mark late, draft Form 04, notify."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event

from lienthong.calendar import get_calendar
from lienthong.clock import get_clock
from tasks.accountability import relay_task, sweep_task

# Suggested schedule: every 15 minutes, 07:00-16:45 on weekdays, Vietnam time. Holidays are
# skipped by the flow itself (the working-day calendar), not by the cron.
SCHEDULE = {"cron": "*/15 7-16 * * 1-5", "timezone": "Asia/Ho_Chi_Minh"}


@flow(
    name="deadline-sweep",
    description="Warn agencies before deadlines, mark late dossiers, "
    "attribute lateness, and draft the apology letter (Form 04) at D-1.",
)
def deadline_sweep(start_approvals: bool = True, force: bool = False) -> dict[str, Any]:
    log = get_run_logger()
    today = get_clock().now().date()
    if not force and not get_calendar().is_working_day(today):
        log.info("deadline-sweep: %s is not a working day; nothing to do", today)
        return {"skipped": True}
    report = sweep_task()
    sent = relay_task()
    rows = report["rows"]
    create_table_artifact(
        key="deadline-sweep",
        table=rows or [{"dossier": "", "subject": "", "agency": "", "action": "nothing to report"}],
        description=f"Deadline sweep at {report['at']}: {report['open_dossiers']} open dossiers, "
        f"{len(report['apology_drafts'])} apology drafts, {sent['sent']} notifications sent",
    )
    for row in rows:
        if row.get("action") == "warning":  # automations notify on these (infra/automations.py)
            emit_event(
                event="lienthong.dossier.deadline-near",
                resource={"prefect.resource.id": f"lienthong.dossier.{row['dossier']}",
                          "lienthong.dossier.code": str(row["dossier"]), "lienthong.agency": str(row["agency"])},
                payload={"subject": row["subject"]},
            )
    if start_approvals and report["apology_drafts"]:
        _start_approvals(report["apology_drafts"])
    log.info("deadline-sweep: %d actions, %d notifications", len(rows), sent["sent"])
    return {**report, "notifications": sent}


def _start_approvals(codes: list[str]) -> None:
    """One approve-apology run per new draft, if that deployment is registered."""
    from prefect.deployments import run_deployment

    log = get_run_logger()
    for code in codes:
        try:
            run_deployment(
                "approve-apology/approve-apology",
                parameters={"dossier_code": code},
                timeout=0,
                idempotency_key=f"apology:{code}",
            )
        except Exception as exc:  # noqa: BLE001 - the draft stays listed for operators either way
            log.warning("approve-apology for %s not started: %s", code, type(exc).__name__)
