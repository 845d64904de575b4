"""Flow runs as a served runner runs them, for the flow tests that start a deployment's run."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL


def execute(run_id: str) -> None:
    """Run (or continue) a flow run as a served runner would: a subprocess of the engine."""
    env = {**os.environ, "PREFECT__FLOW_RUN_ID": run_id, "PREFECT_API_URL": PREFECT_API_URL.value()}
    done = subprocess.run([sys.executable, "-m", "prefect.engine"], env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def read_run(run_id: str):  # type: ignore[no-untyped-def]
    async def read():  # type: ignore[no-untyped-def]
        async with get_client() as client:
            return await client.read_flow_run(run_id)

    return asyncio.run(read())
