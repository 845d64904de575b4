"""Scheduled batch runs happen: a real ``prefect server start`` (its scheduler service on) turns a
deployment's cron schedule in Asia/Ho_Chi_Minh into scheduled flow runs.

This failed silently once: with SQLAlchemy 2.1 the server's scheduler raised "Can't evaluate bulk
DML statement" on every loop, so the deadline sweep, portal sync and every other cron flow never
ran while runs started by hand worked. Hence the pin ``sqlalchemy<2.1`` in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from infra.local import Process, prefect_env
from tests.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def prefect_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(tmp_path))
    port = free_port()
    env = {**prefect_env(tmp_path, port=port), "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1"}
    server = Process("scheduler-test-prefect",
                     [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                     env, f"http://127.0.0.1:{port}/api/health")
    server.start(timeout=150)
    try:
        yield env["PREFECT_API_URL"]
    finally:
        server.stop()


def test_a_cron_schedule_produces_scheduled_runs(prefect_api: str) -> None:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
    from prefect.client.schemas.schedules import CronSchedule

    async def scheduled_runs() -> int:
        async with PrefectClient(prefect_api) as client:
            flow_id = await client.create_flow_from_name("deadline-sweep")
            deployment_id = await client.create_deployment(
                flow_id=flow_id, name="every-morning", entrypoint="flows/deadline_sweep.py:deadline_sweep",
                schedules=[DeploymentScheduleCreate(
                    schedule=CronSchedule(cron="30 7 * * 1-5", timezone="Asia/Ho_Chi_Minh"), active=True)],
            )
            deadline = time.monotonic() + 90
            while True:
                runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    deployment_id=FlowRunFilterDeploymentId(any_=[deployment_id])))
                if runs or time.monotonic() > deadline:
                    for run in runs:
                        assert run.state is not None and run.state.is_scheduled()
                        assert run.expected_start_time is not None
                        local = run.expected_start_time.astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
                        assert (local.hour, local.minute) == (7, 30) and local.weekday() < 5
                    return len(runs)
                await asyncio.sleep(1)

    assert asyncio.run(scheduled_runs()) > 0, "the scheduler created no run for a cron schedule"
