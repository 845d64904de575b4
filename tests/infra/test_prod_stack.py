"""`make up-prod` for real: the production topology as processes on this machine, a signed dossier
through the reverse proxy, a worker of the process pool running its flow to the end, then
`make down-prod` leaving nothing behind. Ports, databases and var/ are this test's own."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from infra.processes import drop_database, free_port_range
from infra.prod import ProdConfig, ProdHandle, start_prod, stop_prod
from lienthong.settings import reset_settings
from tests.conftest import PG_ADMIN
from tests.integration.gateway_helpers import SECRETS, Signed, submission_json

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.topology]


def _processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment carries ``marker`` (this stack's var dir)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes():
                status = (proc / "status").read_text()
                if "\nState:\tZ" not in status:
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.fixture
def prod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ProdConfig, Path]]:
    var = tmp_path / "var"
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(var))
    monkeypatch.setenv("LIENTHONG_AGENCY_SECRETS", json.dumps(SECRETS))
    monkeypatch.setenv("LIENTHONG_SIM_MODE", "instant")
    monkeypatch.delenv("LIENTHONG_DATABASE_URL", raising=False)
    reset_settings()
    suffix = uuid.uuid4().hex[:8]
    cfg = ProdConfig(port_base=free_port_range(60), pg_admin_url=PG_ADMIN, prefect_db=f"prodtest_prefect_{suffix}",
                     lienthong_db=f"prodtest_lienthong_{suffix}", pool=f"lienthong-{suffix}",
                     # Two API replicas whatever the host (small hosts default to one): the proxy's
                     # spread over replicas is part of what this test proves.
                     api_replicas=2,
                     env={"LIENTHONG_SIM_REFUSAL_RATE": "0", "LIENTHONG_SIM_FAILURE_RATE": "0",
                          "LIENTHONG_APPROVAL_POLICY": "auto"})
    try:
        yield cfg, var
    finally:
        stop_prod()
        for db in (cfg.prefect_db, cfg.lienthong_db):
            drop_database(PG_ADMIN, db)
        reset_settings()


def _wait_status(client: Signed, code: str, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    view: dict = {}
    while time.monotonic() < deadline:
        view = client.get(f"/v1/dossiers/{code}").json()
        if view["status"] in (3, 5, 7, 8, 10):
            return view
        time.sleep(1.0)
    raise AssertionError(f"dossier {code} still in status {view.get('status')} after {timeout:.0f}s")


def _flow_run_id(cfg: ProdConfig, code: str) -> str:
    url = cfg.database_url(cfg.lienthong_db, "psycopg").replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT flow_run_id FROM dossiers WHERE code = %s", (code,)).fetchone()
    assert row and row[0], f"no flow run recorded for {code}"
    return str(row[0])


def test_up_prod_runs_a_signed_dossier_through_the_proxy_on_a_worker_and_down_prod_leaves_nothing(prod):
    cfg, var = prod
    handle: ProdHandle = start_prod(cfg)
    assert set(handle.processes) == {
        "redis", "s3", "agency-sim", "portal-sim", "prefect-api-1", "prefect-api-2", "prefect-services",
        "gateway-1", "gateway-2", "nginx", "worker-1", "worker-2", "relay"}
    assert all(handle.alive(name) for name in handle.processes)
    assert httpx.get(f"{handle.urls['prefect-api']}/health", timeout=5).status_code == 200

    # Idempotent: a second up-prod reuses every live process and starts none.
    again = start_prod(cfg)
    assert again.started == [] and {n: again.pid(n) for n in again.processes} == {
        n: handle.pid(n) for n in handle.processes}

    # One gateway replica crashes: the proxy sends the next request to the other one.
    handle.kill("gateway-1")
    assert not handle.alive("gateway-1")
    portal = Signed(handle.urls["gateway"], "DVCQG")
    answer = portal.post("/v1/dossiers", submission_json(81), key=f"prod-{cfg.pool}")
    assert answer.status_code == 202, answer.text
    code = answer.json()["dossier_code"]
    handle.restart("gateway-1")
    assert handle.alive("gateway-1") and httpx.get(f"{cfg.url('gateway-replica', 1)}/healthz").status_code == 200

    # The relay starts the deployment run; a worker of the pool runs it to the end (status 10).
    view = _wait_status(portal, code)
    assert view["status"] == 10, view
    run_id = _flow_run_id(cfg, code)
    # The portal hears status 10 from inside the run, moments before the run reports Completed.
    deadline = time.monotonic() + 60
    while True:
        run = httpx.get(f"{handle.urls['prefect-api']}/flow_runs/{run_id}", timeout=10).json()
        if run["state_type"] not in ("PENDING", "RUNNING") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert run["state_type"] == "COMPLETED" and run["work_pool_name"] == cfg.pool
    assert run["work_queue_name"] == "procedures"
    # Both workers may try to claim it (each polls the pool); the loser's claim is refused by the
    # API ("Aborted submission"). Exactly one runs it.
    def ran(log: str) -> bool:
        return run_id in log and f"Aborted submission of flow run '{run_id}'" not in log

    ran_on = [n for n in ("worker-1", "worker-2") if ran(handle.processes[n].log_path.read_text())]
    assert len(ran_on) == 1, f"the run should have run on exactly one worker, got {ran_on}"
    # It started warm: forked from that worker's fork server, which imported everything once.
    # The state is Completed before the process has drained its logs and exited: wait for that.
    log_path = handle.processes[ran_on[0]].log_path
    deadline = time.monotonic() + 60
    while " exited with " not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.5)
    worker_log = log_path.read_text()
    assert "forkserver: listening on" in worker_log
    assert "forkserver: started prefect.engine" in worker_log and " exited with 0" in worker_log

    # down-prod stops every process of the topology (and their children), and removes the pid files.
    stopped = stop_prod()
    assert set(stopped) == set(handle.processes)
    deadline = time.monotonic() + 15
    while _processes_with(str(var)) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _processes_with(str(var)) == []
    assert list((var / "run" / "prod").glob("*.pid")) == []
