"""One small demo run on embedded defaults (its own Prefect server, simulator and served
deployments, under a temporary ./var), shared by the system tests that read what it left: the
personal-data scan and the demo-clock check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
SECRET = "demo-scan-dvcqg-secret-0123456789"


def _env(var: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIENTHONG_", "PREFECT_"))}
    env.update({
        "LIENTHONG_VAR_DIR": str(var),
        "LIENTHONG_PREFECT_PORT": str(free_port()),
        "LIENTHONG_SIM_PORT": str(free_port()),
        "LIENTHONG_SERVE_HEALTH_PORT": str(free_port()),
        "LIENTHONG_AGENCY_SECRETS": json.dumps({"DVCQG": [SECRET]}),
    })
    return env


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A small demo run on embedded defaults, its servers left running for the scan."""
    var = tmp_path_factory.mktemp("demo-var")
    env = _env(var)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "infra.cli", "demo", "--dossiers", "3", "--speed", "6000", "--keep-running"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        yield {"var": var, "env": env, "output": run.stdout + run.stderr}
    finally:
        subprocess.run([sys.executable, "-m", "infra.local", "down"], cwd=ROOT, env=env,
                       capture_output=True, timeout=120)


