"""Automations as code (open-source Prefect 3 has them; prefect-notes.md §1, §5):

- a flow run whose heartbeats stop (its process or host died) is marked Crashed;
- a crashed procedure run is rescheduled, and the procedure flow itself refuses to go past
  ``MAX_PROCEDURE_RUNS`` attempts (automations cannot count; the run knows its own run count);
- a failed procedure run, and a dossier whose deadline is about to pass (the sweep's
  ``lienthong.dossier.deadline-near`` events), notify a webhook when one is configured
  (``LIENTHONG_ALERT_WEBHOOK_URL``: a custom webhook notification block ``lienthong-alerts``).
"""

from __future__ import annotations

import os
from datetime import timedelta

from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState, SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.settings import get_current_settings

PREFIX = "lienthong: "
ALERT_BLOCK = "lienthong-alerts"
MAX_PROCEDURE_RUNS = 3
TERMINAL_EVENTS = {f"prefect.flow-run.{s}" for s in ("Completed", "Failed", "Cancelled", "Crashed")}
# A suspended or paused run holds no process and sends no heartbeat: not a zombie.
WAITING_EVENTS = {"prefect.flow-run.Suspended", "prefect.flow-run.Paused"}
# A worker claims a run as Pending (named "Submitting" by workers) before its process starts.
CLAIM_EVENTS = {"prefect.flow-run.Pending", "prefect.flow-run.Submitting"}
PROCEDURE_FLOW = {"prefect.resource.role": "flow", "prefect.resource.name": "procedure"}


def zombie_runs() -> Automation:
    beat = get_current_settings().flows.heartbeat_frequency or 30
    return Automation(
        name=PREFIX + "crash zombie flow runs",
        description="A running flow run that missed three heartbeats lost its process: mark it crashed.",
        trigger=EventTrigger(
            # Armed by a claim (Pending) and a start (Running) too: a worker killed before the run's
            # first heartbeat reached the API otherwise leaves it Pending or Running for good.
            after={"prefect.flow-run.heartbeat", *CLAIM_EVENTS, "prefect.flow-run.Running"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Running", *TERMINAL_EVENTS,
                    *WAITING_EVENTS},
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=3 * beat),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message="Flow run marked as crashed: no heartbeat for three periods.")],
    )


def rerun_crashed_procedures() -> Automation:
    return Automation(
        name=PREFIX + "re-run crashed procedure runs",
        description=f"Reschedule a crashed procedure run; the flow stops itself after {MAX_PROCEDURE_RUNS} runs.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed"},
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            match_related=PROCEDURE_FLOW,
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[ChangeFlowRunState(state=StateType.SCHEDULED, name="AwaitingRetry",
                                    message="Re-run after a crash (the procedure flow is idempotent).")],
    )


def notifications(block_document_id: str) -> list[Automation]:
    failed = Automation(
        name=PREFIX + "notify failed procedure runs",
        trigger=EventTrigger(expect={"prefect.flow-run.Failed"}, match={"prefect.resource.id": ["prefect.flow-run.*"]},
                             match_related=PROCEDURE_FLOW, posture=Posture.Reactive, threshold=1),
        actions=[SendNotification(block_document_id=block_document_id,
                                  subject="Liên Thông: procedure run failed",
                                  body="{{ flow_run.name }} failed: {{ flow_run.state.message }}")],
    )
    deadline = Automation(
        name=PREFIX + "notify deadlines about to pass",
        trigger=EventTrigger(expect={"lienthong.dossier.deadline-near"},
                             match={"prefect.resource.id": ["lienthong.dossier.*"]},
                             posture=Posture.Reactive, threshold=1),
        actions=[SendNotification(block_document_id=block_document_id,
                                  subject="Liên Thông: hạn giải quyết sắp đến",
                                  body="{{ event.resource['lienthong.dossier.code'] }}: "
                                       "{{ event.payload.subject }} ({{ event.resource['lienthong.agency'] }})")],
    )
    return [failed, deadline]


def all_automations() -> list[Automation]:
    automations = [zombie_runs(), rerun_crashed_procedures()]
    url = os.environ.get("LIENTHONG_ALERT_WEBHOOK_URL")
    if url:
        from prefect.blocks.notifications import CustomWebhookNotificationBlock

        block = CustomWebhookNotificationBlock(name=ALERT_BLOCK, url=url,
                                               json_data={"subject": "{{subject}}", "body": "{{body}}"})
        block_id = block.save(ALERT_BLOCK, overwrite=True)
        automations += notifications(str(block_id))
    return automations


def apply_automations() -> list[str]:
    """Create or replace every automation (by name); returns their names."""
    from prefect.client.orchestration import get_client

    automations = all_automations()
    with get_client(sync_client=True) as client:
        existing = {a.name: a for a in client.read_automations()}
        for automation in automations:
            if automation.name in existing:
                client.delete_automation(existing[automation.name].id)
            automation.create()
    return [a.name for a in automations]
