"""The gateway and its relay against a real Prefect API: one run per accepted dossier even when the
API is down for a while, and a citizen's supplement by webhook resuming the suspended run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from sqlalchemy import select

from flows.procedure import procedure, start_run
from infra.gateway_relay import PrefectOrchestrator, relay_once
from infra.processes import free_port
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, InboxRow
from tests.integration.gateway_helpers import (
    Signed,
    gateway_server,  # noqa: F401
    submission_json,
)

pytestmark = pytest.mark.flows


def execute(run_id: str) -> None:
    """Run (or continue) a flow run as a served runner would: a subprocess of the engine."""
    env = {**os.environ, "PREFECT__FLOW_RUN_ID": run_id, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run(
        [sys.executable, "-m", "prefect.engine"], env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def state_of(run_id: str):  # type: ignore[no-untyped-def]
    async def read():  # type: ignore[no-untyped-def]
        async with get_client() as client:
            return (await client.read_flow_run(run_id)).state

    return asyncio.run(read())


def runs_of_deployment(name: str) -> int:
    async def count() -> int:
        async with get_client() as client:
            return len(
                await client.read_flow_runs(
                    deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name]))
                )
            )

    return asyncio.run(count())


def inbox_row(kind: str) -> InboxRow:
    with session_scope() as s:
        return s.execute(select(InboxRow).where(InboxRow.kind == kind)).scalar_one()


def test_the_relay_keeps_a_dossier_while_prefect_is_down_and_starts_exactly_one_run_after(gateway):
    procedure.to_deployment(name="lien-thong-khai-sinh").apply()
    code = Signed(gateway).post("/v1/dossiers", submission_json(31)).json()["dossier_code"]
    dead = f"http://127.0.0.1:{free_port()}/api"
    with temporary_settings({PREFECT_API_URL: dead, PREFECT_CLIENT_MAX_RETRIES: 0}):
        report = relay_once()
    assert report.failed == 1 and not report.started
    row = inbox_row("dossier")
    assert row.state == "pending" and row.attempts == 1 and row.flow_run_id is None

    assert report.unavailable and "ConnectError" in (row.last_error or "")

    report = relay_once()  # the API is back
    assert report.started == [code]
    row = inbox_row("dossier")
    with session_scope() as s:
        dossier = s.execute(select(DossierRow)).scalar_one()
    assert row.state == "done" and row.flow_run_id == dossier.flow_run_id is not None

    # The relay died after starting the run but before marking the row: the start is redone,
    # and the deployment's idempotency key (the dossier's UID) returns the same run.
    with session_scope() as s:
        s.execute(select(InboxRow)).scalar_one().state = "pending"
    assert relay_once().started == [code]
    assert inbox_row("dossier").flow_run_id == row.flow_run_id
    assert runs_of_deployment("lien-thong-khai-sinh") == 1


def test_a_supplement_sent_to_the_gateway_resumes_the_suspended_run_to_the_end(gateway, agency_sim):
    procedure.to_deployment(name="lien-thong-khai-sinh").apply()
    portal = Signed(gateway)
    accepted = portal.post(
        "/v1/dossiers", submission_json(32, defects=["child_sex_mismatch"])
    ).json()
    code = accepted["dossier_code"]
    assert relay_once().started == [code]
    run_id = inbox_row("dossier").flow_run_id
    execute(run_id)
    assert state_of(run_id).is_paused()

    view = portal.get(accepted["status_url"]).json()
    assert view["status"] == 5 and view["run_started"]
    assert any("giới tính" in line.lower() for line in view["supplement_request"]["lines"])

    with session_scope() as s:
        sex = s.execute(select(DossierRow.payload)).scalar_one()["child"]["sex"]
    r = portal.post(
        f"/v1/dossiers/{code}/supplement", {"fields": {"birth_certificate.child_sex": sex}}
    )
    assert r.status_code == 202 and r.json()["round"] == 1
    assert relay_once().resumed == [f"{code} supplement-1"]
    execute(run_id)
    assert state_of(run_id).is_completed()
    assert portal.get(accepted["status_url"]).json()["status"] == 10


def test_the_relay_and_start_run_key_a_dossier_s_run_alike_whichever_starts_first(gateway):
    """The relay creates runs through one client (not run_deployment); both must find one run."""
    procedure.to_deployment(name="lien-thong-khai-sinh").apply()
    before = runs_of_deployment("lien-thong-khai-sinh")  # the test server is shared by the session
    portal = Signed(gateway)
    a, b = (portal.post("/v1/dossiers", submission_json(i)).json()["dossier_code"] for i in (33, 34))
    first_a = start_run(a)  # e.g. the demo, or an operator, started it before the relay
    orch = PrefectOrchestrator()
    with orch.pass_scope():
        assert orch.start(a) == first_a
        run_b = orch.start(b)
        assert orch.start(b) == run_b
    assert start_run(b) == run_b
    # The inbox rows: the same runs again, none new. A busy test server (SQLite answers 503 when its
    # writers collide) may leave a row to the next pass, as the relay does in service.
    started: list[str] = []
    for _ in range(10):
        started += relay_once().started
        if sorted(started) == sorted([a, b]):
            break
        time.sleep(2.5)  # past a failed row's back-off
    assert sorted(started) == sorted([a, b])
    assert {inbox.dossier_code: inbox.flow_run_id for inbox in _inbox()} == {a: first_a, b: run_b}
    assert runs_of_deployment("lien-thong-khai-sinh") == before + 2


def test_the_relay_finds_a_re_created_deployment_by_name(gateway):
    procedure.to_deployment(name="lien-thong-khai-sinh").apply()
    portal = Signed(gateway)
    a, b = (portal.post("/v1/dossiers", submission_json(i)).json()["dossier_code"] for i in (35, 36))
    orch = PrefectOrchestrator()
    with orch.pass_scope():
        orch.start(a)

    async def recreate() -> None:
        async with get_client() as client:
            old = await client.read_deployment_by_name("procedure/lien-thong-khai-sinh")
            await client.delete_deployment(old.id)

    asyncio.run(recreate())
    new_id = procedure.to_deployment(name="lien-thong-khai-sinh").apply()
    with orch.pass_scope():
        run_b = orch.start(b)  # the remembered id is gone (404): looked up again by name

    async def deployment_of(run_id: str):  # type: ignore[no-untyped-def]
        async with get_client() as client:
            return (await client.read_flow_run(run_id)).deployment_id

    assert asyncio.run(deployment_of(run_b)) == new_id


def _inbox() -> list[InboxRow]:
    with session_scope() as s:
        return list(s.execute(select(InboxRow).order_by(InboxRow.id)).scalars())
