"""The one generic procedure flow: any catalog procedure, run as a task graph of agency steps.

Steps that do not depend on each other run in parallel; every hand-over, verdict and status change
is recorded by the core (``lienthong.routing``), so the flow is only the shape of the work.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import PrefectFuture, wait
from prefect.runtime import deployment, flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from lienthong.db import session_scope
from lienthong.db.store import get_row
from lienthong.dossier import Status
from lienthong.timeline import timeline_markdown
from tasks.procedure import agency_step_for, begin_processing, finish_dossier, routing


def _run_name() -> str:
    params = flow_run.parameters or {}
    return f"{deployment.name or 'procedure'} · {params.get('dossier_code', '?')}"


def _artifact_key(dossier_code: str) -> str:
    return "dossier-" + "".join(c if c.isalnum() else "-" for c in dossier_code.lower())


@flow(
    name="procedure",
    flow_run_name=_run_name,
    task_runner=ThreadPoolTaskRunner(max_workers=4),
    description="Route one dossier through the agencies of its procedure (catalog-driven).",
)
def procedure(dossier_code: str) -> dict[str, Any]:
    """Run dossier ``dossier_code`` (already received, status 2) to a terminal state."""
    log = get_run_logger()
    status = Status(begin_processing(dossier_code))
    outcomes: list[dict[str, Any]] = []
    if status == Status.PROCESSING:
        plan = routing().plan(dossier_code)
        futures: dict[str, PrefectFuture[dict[str, Any]]] = {}
        for spec in plan.steps:
            upstream = [futures[u] for u in plan.upstream[spec.id]]
            futures[spec.id] = agency_step_for(spec, dossier_code).submit(
                dossier_code, spec.id, wait_for=upstream
            )
        wait(list(futures.values()))
        outcomes = [f.result() for f in futures.values()]
        status = Status(finish_dossier(dossier_code, outcomes))
    log.info("dossier %s ended in status %s (%s)", dossier_code, int(status), status.name)
    create_markdown_artifact(
        key=_artifact_key(dossier_code),
        markdown=timeline_markdown(dossier_code),
        description=f"Timeline of dossier {dossier_code}",
    )
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
