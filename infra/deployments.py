"""Every deployment as code: one per catalog procedure (named after it, tagged with its agencies),
plus the scheduled batch flows. ``python -m infra.deployments`` serves them all in one process."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from flows.procedure import procedure
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


def batch_deployments() -> list[RunnerDeployment]:
    """Scheduled batch flows (each issue adds its own here)."""
    return []


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
        _health_server(int(port))
    serve(*deployments, limit=get_settings().serve_limit, print_starting_message=False)


if __name__ == "__main__":
    serve_all()
