"""The one generic procedure flow: any catalog procedure, from intake to the returned result.

1. intake: receipt (Form 01), once-only reuse from the vault, digitization of paper components
   (weak pages go to an operator), validation; a failing dossier gets one complete request for
   supplement (Form 02) and the run suspends, holding no worker, until the citizen supplements;
2. routing: the catalog's steps, each started as soon as every step upstream of it is done
   (independent steps in parallel), each result published to the vault as soon as its step is
   done. An asynchronous agency's step answers ``waiting``: when nothing else can proceed the run
   suspends on ``agency-{ref}`` (no worker held) until the gateway's relay resumes it with the
   agency's callback (read first from the gateway's inbox, so a callback that came early is not
   waited for). A step the catalog marks ``approval:`` suspends on ``approval-{ref}`` for the
   operator's decision (``tasks.procedure.ApprovalInput``), unless the approval policy is ``auto``;
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
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import deployment, flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from infra.automations import MAX_PROCEDURE_RUNS
from lienthong.catalog import StepSpec
from lienthong.db import outlast_outage, session_scope
from lienthong.db.store import get_row
from lienthong.dossier import Status
from lienthong.routing import AUTOMATIC, ApprovalInvalid
from lienthong.settings import get_settings
from lienthong.timeline import timeline_markdown
from tasks.accountability import render_form_task
from tasks.digitize import apply_review_decision, components_to_review, digitize_dossier, review_input
from tasks.procedure import (
    AgencyResultInput,
    ApprovalInput,
    agency_result,
    agency_step_for,
    approval_decision,
    approval_supplement_round,
    awaiting_approval_supplement,
    begin_processing,
    dossier_status,
    finish_dossier,
    routing,
    stored_agency_result,
)
from tasks.quality import SupplementInput, apply_supplement, validate_dossier
from tasks.supplement import component_problems, request_supplement, supplement_received
from tasks.vault import publish_step_results, reuse_components

INTAKE = (Status.ACCEPTED, Status.SUPPLEMENT_REQUESTED)
MAX_APPROVAL_ASKS = 10  # answers that cannot be applied (refusal without reason) are asked again


def _name_if_unnamed(dossier_code: str) -> None:
    """Runs are named when created (``infra.gateway_relay.run_name``); one started otherwise (the
    UI's Run button, a test calling the flow) is named here, once. A ``flow_run_name`` on the flow
    would PATCH the name in every execution of every run."""
    from infra.gateway_relay import run_name

    name = run_name(deployment.name or "procedure", dossier_code)
    if flow_run.name != name and flow_run.id:
        from uuid import UUID

        from prefect import get_client

        with get_client(sync_client=True) as client:
            client.set_flow_run_name(UUID(flow_run.id), name)


def _artifact_key(dossier_code: str) -> str:
    return "dossier-" + "".join(c if c.isalnum() else "-" for c in dossier_code.lower())


def intake(dossier_code: str) -> Status:
    """Reuse, digitize, validate; loop through supplements until the dossier is complete or refused."""
    render_form_task(dossier_code, "01")
    reuse_components(dossier_code)
    round_no = 0
    while True:
        digitize_and_review(dossier_code)
        checked = validate_dossier(dossier_code)
        lines = [*checked["lines_vi"], *component_problems(dossier_code)]
        if not lines:
            return Status(dossier_status(dossier_code))
        round_no += 1
        outcome = request_supplement(dossier_code, lines, round_no)
        if outcome == "refused":
            render_form_task(dossier_code, "03")
            return Status(dossier_status(dossier_code))
        await_supplement(dossier_code, lines, round_no)


def digitize_and_review(dossier_code: str) -> None:
    """Digitize the dossier's paper components not read yet (new ones, or new files of old ones);
    each file the quality gate holds waits (suspended) for an operator's review. The question is
    read from the database and keyed on the component and its file, so that the run, which a
    resume starts again from the top, finds every answer it was given."""
    digitize_dossier(dossier_code)
    for item in components_to_review(dossier_code):
        cid = item["component_id"]
        decision = suspend_flow_run(wait_for_input=review_input(cid), key=item["key"])
        apply_review_decision(cid, decision)


def await_supplement(dossier_code: str, lines: list[str], round_no: int) -> None:
    """Form 02 to the citizen, then wait suspended (no worker held) for the supplement, keyed on
    its round, and store it; the caller then validates again or asks its question again."""
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
    """Run every step whose upstream steps are done, as soon as they are; then wait (suspended) for
    asynchronous agencies and approvals one at a time, and go on with what they unblock."""
    plan = outlast_outage(lambda: routing().plan(dossier_code))
    outcomes: dict[str, dict[str, Any]] = {}
    running: dict[PrefectFuture[dict[str, Any]], StepSpec] = {}
    held: list[tuple[StepSpec, dict[str, Any]]] = []  # waiting for an agency or an approval
    publications: list[PrefectFuture[Any]] = []

    def settle(spec: StepSpec, outcome: dict[str, Any]) -> None:
        if outcome["state"] in ("waiting", "approval"):
            held.append((spec, outcome))
            return
        outcomes[spec.id] = outcome
        if spec.results and outcome["state"] == "done":
            publications.append(
                publish_step_results.with_options(task_run_name=f"vault: publish {spec.id} [{dossier_code}]")
                .submit(dossier_code, spec.id))

    def start_ready() -> None:
        busy = {s.id for s in running.values()} | {s.id for s, _ in held}
        for spec in plan.steps:
            if spec.id in outcomes or spec.id in busy:
                continue
            if all(u in outcomes for u in plan.upstream[spec.id]):
                running[agency_step_for(spec, dossier_code).submit(dossier_code, spec.id)] = spec

    start_ready()
    while running or held:
        while running:
            for future in as_completed(list(running)):
                spec = running.pop(future)
                settle(spec, future.result())
                start_ready()
                break  # look at the set of running steps again: new ones may have started
        if held:  # nothing else can proceed: resolve one held step (this may suspend the run)
            spec, outcome = held.pop(0)
            settle(spec, resolve(dossier_code, spec, outcome))
            start_ready()
    for f in publications:
        f.result()  # a failed publication fails the run (and its retry), never silently
    return [outcomes[spec.id] for spec in plan.steps]


def resolve(dossier_code: str, spec: StepSpec, outcome: dict[str, Any]) -> dict[str, Any]:
    """A held step to its end: the asynchronous agency's result, then the approval if one is required."""
    if outcome["state"] == "waiting":
        outcome = await_agency(dossier_code, spec, outcome["ref"])
    if outcome["state"] == "approval":
        outcome = await_approval(dossier_code, spec, outcome["ref"])
    return outcome


def await_agency(dossier_code: str, spec: StepSpec, ref: str) -> dict[str, Any]:
    """The agency's callback: from the gateway's inbox if it came already, else wait suspended
    (no worker held; the step's deadline keeps running) until the relay resumes the run with it."""
    body = stored_agency_result(ref)
    if body is None:
        answer = suspend_flow_run(
            wait_for_input=AgencyResultInput.with_initial_data(
                description=f"**{spec.agency}: {spec.action}** – hồ sơ {dossier_code}\n\n"
                "Chờ kết quả của cơ quan (gửi về cổng tiếp nhận `POST /v1/steps/" + ref + "/result`)."),
            key=f"agency-{ref}",
            timeout=get_settings().agency_wait_timeout_seconds,
        )
        body = answer.model_dump(mode="json", exclude_none=True)
    return agency_result(dossier_code, spec.id, body)


def await_approval(dossier_code: str, spec: StepSpec, ref: str) -> dict[str, Any]:
    """The operator's decision on a held step; a request for supplement waits for the citizen and
    then asks again. Every ask has its own stable key, so a resumed run replays the answers."""
    log = get_run_logger()
    for ask in range(1, MAX_APPROVAL_ASKS + 1):
        key = f"approval-{ref}" if ask == 1 else f"approval-{ref}-{ask}"
        if get_settings().approval_policy == "auto":
            decision: dict[str, Any] = {"decision": "approve", "officer": AUTOMATIC, "automatic": True}
        else:
            answer = suspend_flow_run(
                wait_for_input=ApprovalInput.with_initial_data(
                    description=f"**Phê duyệt: {spec.approval}**\n\nHồ sơ {dossier_code} · bước "
                    f"\"{spec.action}\" ({spec.agency}). Cơ quan đã có kết quả; chọn *approve* để ký "
                    "duyệt, *refuse* để từ chối (ghi lý do) hoặc *supplement* để yêu cầu bổ sung hồ sơ "
                    "(ghi nội dung cần bổ sung)."),  # no field values here: Prefect would drop their titles
                key=key,
                timeout=get_settings().approval_timeout_seconds,
            )
            decision = answer.model_dump(mode="json")
        try:
            outcome = approval_decision(dossier_code, spec.id, {**decision, "key": key})
        except ApprovalInvalid as exc:  # an answer that cannot be applied is asked again
            log.warning("approval %s not applied: %s", key, exc.message)
            continue
        if outcome["state"] != "approval":
            return outcome
        # The officer requested a supplement: the appraisal phase's one request (Form 02).
        round_no = approval_supplement_round(dossier_code, spec.id, key)
        lines = [str(decision.get("reason"))]
        if request_supplement(dossier_code, lines, round_no) == "refused":
            # A second request in the same phase is not allowed: the dossier is stopped (Form 03).
            return approval_decision(dossier_code, spec.id, {
                "decision": "refuse", "officer": str(decision["officer"]), "key": f"{key}-stopped",
                "reason": "Hồ sơ vẫn chưa đầy đủ sau khi đã yêu cầu bổ sung: " + lines[0]})
        await_supplement(dossier_code, lines, round_no)
        # What the citizen handed in is read before the officer is asked again.
        digitize_and_review(dossier_code)
    raise RuntimeError(f"dossier {dossier_code}: {MAX_APPROVAL_ASKS} approval answers could not be applied")


@flow(
    name="procedure",
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    description="Route one dossier through the agencies of its procedure (catalog-driven).",
)
def procedure(dossier_code: str) -> dict[str, Any]:
    """Run dossier ``dossier_code`` (received, status 2) to a terminal state."""
    log = get_run_logger()
    _name_if_unnamed(dossier_code)
    if (flow_run.run_count or 1) > MAX_PROCEDURE_RUNS:
        # Re-runs after crashes are bounded: past this, a person looks at the dossier.
        raise RuntimeError(f"dossier {dossier_code}: crashed {MAX_PROCEDURE_RUNS} times; needs an operator")
    status = Status(dossier_status(dossier_code))
    # Resumed after the supplement an approving officer requested: back to that approval, not intake.
    approving = status == Status.SUPPLEMENT_REQUESTED and awaiting_approval_supplement(dossier_code)
    if status in INTAKE and not approving:
        status = intake(dossier_code)
    outcomes: list[dict[str, Any]] = []
    if status in (Status.ACCEPTED, Status.PROCESSING, Status.AWAITING_PAYMENT) or approving:
        status = Status(begin_processing(dossier_code))
        outcomes = route(dossier_code)
        status = Status(finish_dossier(dossier_code, outcomes))
        if status == Status.STOPPED:
            render_form_task(dossier_code, "03")
    render_form_task(dossier_code, "05")
    log.info("dossier %s ended in status %s (%s)", dossier_code, int(status), status.name)
    timeline = outlast_outage(lambda: timeline_markdown(dossier_code))
    create_markdown_artifact(key=_artifact_key(dossier_code), markdown=timeline,
                             description=f"Timeline of dossier {dossier_code}")
    return {"dossier_code": dossier_code, "status": int(status),
            "steps": {o["step_key"]: o["state"] for o in outcomes}}


def start_run(dossier_code: str) -> str:
    """Start the dossier's procedure deployment exactly once: the run is keyed on the dossier's
    UID, so a redelivered start returns the same run. Returns the flow run id."""
    from prefect.deployments import run_deployment

    from infra.gateway_relay import run_key, run_name  # the gateway's relay starts these runs too

    with session_scope() as s:
        row = get_row(s, dossier_code)
        procedure_id, uid = row.procedure_id, row.uid
    run = run_deployment(
        f"procedure/{procedure_id}", parameters={"dossier_code": dossier_code}, timeout=0,
        idempotency_key=run_key(uid), as_subflow=False, flow_run_name=run_name(procedure_id, dossier_code),
    )
    with session_scope() as s:
        get_row(s, dossier_code, for_update=True).flow_run_id = str(run.id)
    return str(run.id)
