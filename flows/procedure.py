"""The one generic procedure flow: any catalog procedure, from intake to the returned result.

1. intake: receipt (Form 01), once-only reuse from the vault, digitization of paper components
   (weak pages go to an operator), validation; a failing dossier gets one complete request for
   supplement (Form 02) and the run suspends, holding no worker, until the citizen supplements;
2. routing: the catalog's steps, each started as soon as every step upstream of it is done
   (independent steps in parallel), each result published to the vault as soon as its step is
   done. An asynchronous agency's step answers ``waiting``: when nothing else can proceed the run
   suspends once for every such step in flight (``agency-{ref}[-{ref}...]``, no worker held)
   until the gateway's relay resumes it with whichever agency answers first; the results are read
   from the gateway's inbox, so callbacks that came early or meanwhile are not waited for. A step
   the catalog marks ``approval:`` suspends on ``approval-{ref}`` for the operator's decision
   (``tasks.procedure.ApprovalInput``), unless the approval policy is ``auto``;
3. closing: resolve and deliver, or stop with the agency's reason (Form 03); the control slip
   (Form 05) and the timeline artifact.

A suspended run executes this body again from the top when resumed. It does not replay what was
done: it reads what is left of the dossier once (``tasks.procedure.dossier_progress``) and goes on
from there; steps closed before are not asked again and results published before not published
again. Every task is idempotent and every suspend has a stable key besides, so that a run re-run
after a crash finds the work it had done.
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
from lienthong.gateway.relay import agency_wait_key
from lienthong.routing import AUTOMATIC, AgencyResultInvalid, ApprovalInvalid, Decision, Progress, StepOutcome
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
    begin_processing,
    dossier_progress,
    dossier_status,
    finish_dossier,
    routing,
    stored_agency_results,
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


def route(dossier_code: str, recorded: Progress) -> list[StepOutcome]:
    """Run every step whose upstream steps are done, as soon as they are; then wait (suspended)
    for the asynchronous agencies in flight, once for the whole wave, and for approvals one at a
    time, and go on with what they unblock. Steps recorded in an earlier execution of the run
    (``recorded``) are taken as they stand: nothing is asked or published again."""
    plan = outlast_outage(lambda: routing().plan(dossier_code))
    outcomes: dict[str, StepOutcome] = {}
    running: dict[PrefectFuture[StepOutcome], StepSpec] = {}
    waiting: dict[str, StepSpec] = {}  # step ref -> an asynchronous agency's step in flight
    approvals: list[tuple[StepSpec, StepOutcome]] = []  # held for an operator's decision
    publications: list[PrefectFuture[Any]] = []
    specs = {spec.id: spec for spec in plan.steps}

    def settle(spec: StepSpec, outcome: StepOutcome, *, publish: bool = True) -> None:
        if outcome.state == "waiting":
            waiting[str(outcome.ref)] = spec
        elif outcome.state == "approval":
            approvals.append((spec, outcome))
        else:
            outcomes[spec.id] = outcome
            if publish and spec.results and outcome.state == "done":
                publications.append(
                    publish_step_results.with_options(task_run_name=f"vault: publish {spec.id} [{dossier_code}]")
                    .submit(dossier_code, spec.id))

    def start_ready() -> None:
        busy = ({s.id for s in running.values()} | {s.id for s in waiting.values()}
                | {s.id for s, _ in approvals})
        for spec in plan.steps:
            if spec.id in outcomes or spec.id in busy:
                continue
            if all(u in outcomes for u in plan.upstream[spec.id]):
                running[agency_step_for(spec, dossier_code).submit(dossier_code, spec.id)] = spec

    for key, outcome in recorded.steps.items():
        if key in specs:
            settle(specs[key], outcome, publish=key not in recorded.published)
    start_ready()
    while running or waiting or approvals:
        while running:
            for future in as_completed(list(running)):
                spec = running.pop(future)
                settle(spec, future.result())
                start_ready()
                break  # look at the set of running steps again: new ones may have started
        if approvals:  # nothing else can proceed: one decision (this may suspend the run)
            spec, outcome = approvals.pop(0)
            settle(spec, await_approval(dossier_code, spec, str(outcome.ref)))
        elif waiting:  # the agencies' results that came, or one suspend for the whole wave
            for ref, body in await_agencies(dossier_code, waiting).items():
                spec = waiting.pop(ref)
                settle(spec, agency_result(dossier_code, spec.id, body))
        start_ready()
    for f in publications:
        f.result()  # a failed publication fails the run (and its retry), never silently
    return [outcomes[spec.id] for spec in plan.steps]


def await_agencies(dossier_code: str, waiting: dict[str, StepSpec]) -> dict[str, dict[str, Any]]:
    """The results of asynchronous agencies' steps in flight, by step ref: those the gateway
    received already (callbacks that came early or meanwhile are not waited for), else the one
    the run is resumed with after waiting suspended (no worker held; the steps' deadlines keep
    running) on one key for the whole wave, resumed by the relay with whichever answers first or
    by an operator entering a result by hand."""
    found = stored_agency_results(dossier_code, sorted(waiting))
    if found:
        return found
    refs = sorted(waiting)
    lines = [f"- {spec.agency}: {spec.action} — mã bước `{ref}` (`POST /v1/steps/{ref}/result`)"
             for ref, spec in sorted(waiting.items())]
    answer = suspend_flow_run(
        wait_for_input=AgencyResultInput.with_initial_data(
            description=f"**Chờ kết quả của cơ quan** – hồ sơ {dossier_code}\n\n" + "\n".join(lines)
            + ("\n\nNhập kết quả bằng tay: ghi *step_ref* là mã bước." if len(refs) > 1 else ""),
            step_ref=refs[0] if len(refs) == 1 else None),
        key=agency_wait_key(refs),
        timeout=get_settings().agency_wait_timeout_seconds,
    )
    body = answer.model_dump(mode="json", exclude_none=True)
    ref = body.pop("step_ref", None) or (refs[0] if len(refs) == 1 else None)
    if ref not in waiting:
        raise AgencyResultInvalid(
            f"{dossier_code}: a result for step {ref!r}, which the run does not wait for ({', '.join(refs)})",
            message_vi="Kết quả nhập tay phải ghi mã bước (step_ref) của một bước đang chờ cơ quan.")
    return {ref: body}


def await_approval(dossier_code: str, spec: StepSpec, ref: str) -> StepOutcome:
    """The operator's decision on a held step; a request for supplement waits for the citizen and
    then asks again. Every ask has its own stable key, so a resumed run replays the answers."""
    log = get_run_logger()
    for ask in range(1, MAX_APPROVAL_ASKS + 1):
        key = f"approval-{ref}" if ask == 1 else f"approval-{ref}-{ask}"
        if get_settings().approval_policy == "auto":
            decision = Decision("approve", AUTOMATIC, automatic=True, key=key)
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
            decision = Decision(answer.decision, answer.officer, answer.reason, answer.note, key=key)
        try:
            outcome = approval_decision(dossier_code, spec.id, decision)
        except ApprovalInvalid as exc:  # an answer that cannot be applied is asked again
            log.warning("approval %s not applied: %s", key, exc.message)
            continue
        if outcome.state != "approval":
            return outcome
        # The officer requested a supplement: the appraisal phase's one request (Form 02).
        round_no = approval_supplement_round(dossier_code, spec.id, key)
        lines = [str(decision.reason)]
        if request_supplement(dossier_code, lines, round_no) == "refused":
            # A second request in the same phase is not allowed: the dossier is stopped (Form 03).
            return approval_decision(dossier_code, spec.id, Decision(
                "refuse", decision.officer, "Hồ sơ vẫn chưa đầy đủ sau khi đã yêu cầu bổ sung: " + lines[0],
                key=f"{key}-stopped"))
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
    progress = dossier_progress(dossier_code)  # what is left, read once
    status = progress.status
    # Resumed after the supplement an approving officer requested: back to that approval, not intake.
    if status in INTAKE and not progress.approving:
        status = intake(dossier_code)
    outcomes: list[StepOutcome] = []
    if status in (Status.ACCEPTED, Status.PROCESSING, Status.AWAITING_PAYMENT) or progress.approving:
        if status == Status.ACCEPTED:
            status = Status(begin_processing(dossier_code))
        outcomes = route(dossier_code, progress)
        status = Status(finish_dossier(dossier_code, outcomes))
        if status == Status.STOPPED:
            render_form_task(dossier_code, "03")
    render_form_task(dossier_code, "05")
    log.info("dossier %s ended in status %s (%s)", dossier_code, int(status), status.name)
    timeline = outlast_outage(lambda: timeline_markdown(dossier_code))
    create_markdown_artifact(key=_artifact_key(dossier_code), markdown=timeline,
                             description=f"Timeline of dossier {dossier_code}")
    return {"dossier_code": dossier_code, "status": int(status),
            "steps": {o.step_key: o.state for o in outcomes}}


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
