"""Flow runs as a served runner runs them, for the flow tests that start a deployment's run, and
what those tests read back from the Prefect API."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from prefect.flow_runs import resume_flow_run
from prefect.settings import PREFECT_API_URL

from flows.procedure import _artifact_key


def execute(run_id: str, *, check: bool = True) -> None:
    """Run (or continue) a flow run as a served runner would: a subprocess of the engine. With
    ``check`` the engine must exit cleanly; without, a run meant to fail may."""
    env = {**os.environ, "PREFECT__FLOW_RUN_ID": run_id, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([sys.executable, "-m", "prefect.engine"], env=env, capture_output=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stderr.decode()[-3000:]


def read_run(run_id: str):  # type: ignore[no-untyped-def]
    async def read():  # type: ignore[no-untyped-def]
        async with get_client() as client:
            return await client.read_flow_run(run_id)

    return asyncio.run(read())


def task_run_names(run_id: str) -> list[str]:
    """The names of every task run of a flow run, over all its executions."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> list[str]:
        async with get_client() as client:
            runs = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
            return [str(t.name) for t in runs]

    return asyncio.run(read())


def pause_key(run_id: str) -> str | None:
    """The key the run is suspended on, or None when it is not paused."""
    state = read_run(run_id).state
    return state.state_details.pause_key if state.is_paused() else None


def answer(run_id: str, **form: Any) -> None:
    """Resume a suspended run with ``form`` (as the Prefect UI's Resume does), then run it on."""
    resume_flow_run(run_id, run_input=form)
    execute(run_id)


def timeline(dossier_code: str) -> str:
    """The newest version of the dossier's timeline artifact: every test restarts the dossier
    sequence, so earlier tests left artifacts under the same key."""

    async def read() -> str:
        async with get_client() as client:
            arts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[_artifact_key(dossier_code)])),
                sort=ArtifactSort.CREATED_DESC, limit=1)
            return str(arts[0].data)

    return asyncio.run(read())
