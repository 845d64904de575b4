"""Fault-test fixtures: real processes (:class:`infra.processes.Process`) that a test kills
(SIGKILL) and restarts, scratch PostgreSQL databases, a Prefect server on one of them.

Start a process registered in ``services``, ``kill()`` it at a point of the test's choosing,
``start()`` or ``restart()`` it, and ``wait_healthy()`` before asserting on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import processes
from infra.processes import QUIET_SERVICES, Process, free_port, scratch_database
from tests.conftest import PG_ADMIN

__all__ = ["Process", "free_port", "prefect_server", "scratch_database"]


def prefect_server(home: Path, log_dir: Path, database_url: str, port: int | None = None) -> Process:
    """A Prefect server on ``database_url`` (asyncpg) without the services a test does not need,
    so that a restart is quick."""
    env = processes.prefect_server_env(home, port or free_port(), database_url, without=QUIET_SERVICES)
    return processes.prefect_server(env, log_dir=log_dir)


@pytest.fixture
def pg_scratch() -> Iterator[str]:
    """A scratch PostgreSQL database for one test (SQLAlchemy URL), migrated."""
    with scratch_database(PG_ADMIN, "lienthong_fault") as url:
        yield url


@pytest.fixture
def prefect_pg() -> Iterator[str]:
    """An empty scratch PostgreSQL database for a Prefect server (asyncpg URL): SQLite locks under
    the concurrent writes a fault test makes, and a lost write can strand a suspended run."""
    with scratch_database(PG_ADMIN, "lienthong_fault_prefect", driver="asyncpg", migrate=False) as url:
        yield url


@pytest.fixture
def services() -> Iterator[list[Process]]:
    """Register every Process here *before* starting it; all are stopped at teardown."""
    started: list[Process] = []
    yield started
    for proc in reversed(started):
        proc.stop()
