"""Every deployment as code: one per catalog procedure (named after it, tagged with its agencies),
plus the scheduled batch flows. ``python -m infra.deployments`` serves them all in one process."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.procedure import procedure
from infra.automations import apply_automations
from lienthong.catalog import get_catalog
from lienthong.settings import get_settings

TZ = "Asia/Ho_Chi_Minh"


def procedure_deployments() -> list[RunnerDeployment]:
    deployments = []
    for proc in get_catalog():
        agencies = sorted({s.agency for s in proc.steps})
        deployments.append(procedure.to_deployment(
            name=proc.id,
            description=f"{proc.name} ({proc.code}); căn cứ: "
            + "; ".join(f"{b.document} {b.article}".strip() for b in proc.legal_basis),
            tags=["procedure", proc.code, *(f"agency:{a}" for a in agencies)],
            version=proc.version,
        ))
    return deployments


def _cron(expr: str) -> list[Cron]:
    return [Cron(expr, timezone=TZ)]


def batch_deployments() -> list[RunnerDeployment]:
    """The scheduled batch flows and the operator-started ones, with their cron in Vietnam time."""
    from flows.approve_apology import approve_apology_flow
    from flows.data_quality_daily import SCHEDULE as QUALITY_SCHEDULE
    from flows.data_quality_daily import data_quality_daily
    from flows.deadline_sweep import SCHEDULE as SWEEP_SCHEDULE
    from flows.deadline_sweep import deadline_sweep
    from flows.digitize_backlog import BACKLOG_CRON, digitize_backlog
    from flows.portal_sync import SCHEDULE as PORTAL_SCHEDULE
    from flows.portal_sync import portal_sync
    from flows.service_index import SCHEDULE as INDEX_SCHEDULE
    from flows.service_index import service_index
    from flows.vault_sweep import SWEEP_CRON, vault_correction, vault_sweep

    return [
        deadline_sweep.to_deployment(name="deadline-sweep", schedules=_cron(SWEEP_SCHEDULE["cron"]),
                                     tags=["batch", "deadlines"]),
        approve_apology_flow.to_deployment(name="approve-apology", tags=["operator", "form-04"]),
        portal_sync.to_deployment(name="portal-sync", schedules=_cron(PORTAL_SCHEDULE["cron"]),
                                  tags=["batch", "agency:DVCQG"]),
        service_index.to_deployment(name="service-index", schedules=_cron(INDEX_SCHEDULE["cron"]),
                                    tags=["batch", "report"]),
        data_quality_daily.to_deployment(name="data-quality-daily",
                                         schedules=_cron(QUALITY_SCHEDULE["cron"]),
                                         tags=["batch", "quality"]),
        digitize_backlog.to_deployment(name="digitize-backlog", schedules=_cron(BACKLOG_CRON),
                                       tags=["batch", "digitize"]),
        vault_sweep.to_deployment(name="vault-sweep", schedules=_cron(SWEEP_CRON), tags=["batch", "vault"]),
        vault_correction.to_deployment(name="vault-correction", tags=["operator", "vault"]),
    ]


def all_deployments() -> list[RunnerDeployment]:
    return procedure_deployments() + batch_deployments()


def _health_server(port: int) -> None:
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", port), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def serve_all() -> None:
    deployments = all_deployments()
    port = os.environ.get("LIENTHONG_SERVE_HEALTH_PORT")
    if port:  # tells the local stack that every deployment is registered before runs are asked for
        for d in deployments:
            d.apply()
    apply_automations()
    if port:
        _health_server(int(port))
    serve(*deployments, limit=get_settings().serve_limit, print_starting_message=False)


if __name__ == "__main__":
    serve_all()
