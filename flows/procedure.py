"""The one generic procedure flow: any catalog procedure, from intake to the returned result.

1. intake: receipt (Form 01), once-only reuse from the vault, digitization of paper components
   (weak pages go to an operator), validation; a failing dossier gets one complete request for
   supplement (Form 02) and the run suspends, holding no worker, until the citizen supplements;
2. routing: the catalog's steps as a task graph (independent steps in parallel), each result
   published to the vault as soon as its step is done;
3. closing: resolve and deliver, or stop with the agency's reason (Form 03); the control slip
   (Form 05) and the timeline artifact.

A suspended run re-executes this body from the top when resumed: every task here is idempotent
and every suspend has a stable key, so work done before is found, not repeated.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.flow_runs import suspend_flow_run
from prefect.futures import PrefectFuture, wait
from prefect.runtime import deployment, flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from infra.automations import MAX_PROCEDURE_RUNS
from lienthong.db import session_scope
from lienthong.db.store import get_row
from lienthong.dossier import Status
from lienthong.timeline import timeline_markdown
from tasks.accountability import render_form_task
from tasks.digitize import apply_review_decision, digitize_dossier, review_input
from tasks.intake import component_problems, request_supplement, supplement_received
from tasks.procedure import agency_step_for, begin_processing, dossier_status, finish_dossier, routing
from tasks.quality import SupplementInput, apply_supplement, validate_dossier
from tasks.vault import publish_step_results, reuse_components

INTAKE = (Status.ACCEPTED, Status.SUPPLEMENT_REQUESTED)


def _run_name() -> str:
    params = flow_run.parameters or {}
    return f"{deployment.name or 'procedure'} · {params.get('dossier_code', '?')}"


def _artifact_key(dossier_code: str) -> str:
    return "dossier-" + "".join(c if c.isalnum() else "-" for c in dossier_code.lower())


def intake(dossier_code: str) -> Status:
    """Reuse, digitize, validate; loop through supplements until the dossier is complete or refused."""
    render_form_task(dossier_code, "01")
    reuse_components(dossier_code)
    round_no = 0
    while True:
        digitized = digitize_dossier(dossier_code)
        for item in digitized["needs_review"]:
            cid = item["component_id"]
            decision = suspend_flow_run(wait_for_input=review_input(cid), key=f"review-{cid}-{round_no}")
            apply_review_decision(cid, decision)
        checked = validate_dossier(dossier_code)
        lines = [*checked["lines_vi"], *component_problems(dossier_code)]
        if not lines:
            return Status(dossier_status(dossier_code))
        round_no += 1
        outcome = request_supplement(dossier_code, lines, round_no)
        if outcome == "refused":
            render_form_task(dossier_code, "03")
            return Status(dossier_status(dossier_code))
        render_form_task(dossier_code, "02")
        supplement = suspend_flow_run(
            wait_for_input=SupplementInput.with_initial_data(
                description="**Yêu cầu bổ sung hồ sơ (Mẫu 02)** – hồ sơ " + dossier_code + "\n\n"
                + "\n".join(f"- {line}" for line in lines)),
            key=f"supplement-{round_no}",
        )
        apply_supplement(dossier_code, supplement)
        supplement_received(dossier_code, round_no)


def route(dossier_code: str) -> list[dict[str, Any]]:
    """The catalog's steps as a task graph, then each finished step's results published to the vault."""
    plan = routing().plan(dossier_code)
    steps: dict[str, PrefectFuture[dict[str, Any]]] = {}
    for spec in plan.steps:
        upstream = [steps[u] for u in plan.upstream[spec.id]]
        steps[spec.id] = agency_step_for(spec, dossier_code).submit(dossier_code, spec.id, wait_for=upstream)
    wait(list(steps.values()))
    outcomes = [f.result() for f in steps.values()]
    published = [
        publish_step_results.with_options(task_run_name=f"vault: publish {spec.id} [{dossier_code}]")
        .submit(dossier_code, spec.id)
        for spec, outcome in zip(plan.steps, outcomes, strict=True)
        if spec.results and outcome["state"] == "done"
    ]
    for f in published:
        f.result()  # a failed publication fails the run (and its retry), never silently
    return outcomes


@flow(
    name="procedure",
    flow_run_name=_run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    description="Route one dossier through the agencies of its procedure (catalog-driven).",
)
def procedure(dossier_code: str) -> dict[str, Any]:
    """Run dossier ``dossier_code`` (received, status 2) to a terminal state."""
    log = get_run_logger()
    if (flow_run.run_count or 1) > MAX_PROCEDURE_RUNS:
        # Re-runs after crashes are bounded: past this, a person looks at the dossier.
        raise RuntimeError(f"dossier {dossier_code}: crashed {MAX_PROCEDURE_RUNS} times; needs an operator")
    status = Status(dossier_status(dossier_code))
    if status in INTAKE:
        status = intake(dossier_code)
    outcomes: list[dict[str, Any]] = []
    if status in (Status.ACCEPTED, Status.PROCESSING, Status.AWAITING_PAYMENT):
        status = Status(begin_processing(dossier_code))
        outcomes = route(dossier_code)
        status = Status(finish_dossier(dossier_code, outcomes))
        if status == Status.STOPPED:
            render_form_task(dossier_code, "03")
    render_form_task(dossier_code, "05")
    log.info("dossier %s ended in status %s (%s)", dossier_code, int(status), status.name)
    create_markdown_artifact(key=_artifact_key(dossier_code), markdown=timeline_markdown(dossier_code),
                             description=f"Timeline of dossier {dossier_code}")
    return {"dossier_code": dossier_code, "status": int(status),
            "steps": {o["step_key"]: o["state"] for o in outcomes}}


def start_run(dossier_code: str) -> str:
    """Start the dossier's procedure deployment exactly once: the run is keyed on the dossier's
    UID, so a redelivered start returns the same run. Returns the flow run id."""
    from prefect.deployments import run_deployment

    with session_scope() as s:
        row = get_row(s, dossier_code)
        procedure_id, uid = row.procedure_id, row.uid
    run = run_deployment(
        f"procedure/{procedure_id}", parameters={"dossier_code": dossier_code}, timeout=0,
        idempotency_key=f"dossier-{uid}", as_subflow=False,
    )
    with session_scope() as s:
        get_row(s, dossier_code, for_update=True).flow_run_id = str(run.id)
    return str(run.id)
