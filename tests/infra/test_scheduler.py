"""Scheduled batch runs happen: a real ``prefect server start`` (its scheduler service on) turns a
deployment's cron schedule in Asia/Ho_Chi_Minh into scheduled flow runs.

This failed silently once: with SQLAlchemy 2.1 the server's scheduler raised "Can't evaluate bulk
DML statement" on every loop, so the deadline sweep, portal sync and every other cron flow never
ran while runs started by hand worked. Hence the pin ``sqlalchemy<2.1`` in pyproject.toml.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from zoneinfo import ZoneInfo

import pytest

# The session's Prefect server (tests/conftest.py: prefect_api) runs its scheduler every second.
pytestmark = pytest.mark.prefect


def test_a_cron_schedule_produces_scheduled_runs(prefect_api: str) -> None:
    from prefect.client.orchestration import PrefectClient
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
    from prefect.client.schemas.schedules import CronSchedule

    async def scheduled_runs() -> int:
        async with PrefectClient(prefect_api) as client:
            flow_id = await client.create_flow_from_name("deadline-sweep")
            deployment_id = await client.create_deployment(
                flow_id=flow_id, name=f"every-morning-{uuid.uuid4().hex[:6]}",
                entrypoint="flows/deadline_sweep.py:deadline_sweep",
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
