"""Fault-test fixtures: real processes that a test kills (SIGKILL) and restarts, a PostgreSQL
database of its own, a Prefect server on SQLite under the test's directory, and free ports.

Reused by every fault suite: start a :class:`ServiceProcess`, ``kill()`` it at a point of the
test's choosing, ``restart()`` it, and ``wait_healthy()`` before asserting on it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import PG_ADMIN, free_port

__all__ = ["ServiceProcess", "free_port", "prefect_server_env", "scratch_database"]


class ServiceProcess:
    """A service run as its own process group, with a health URL (or none: a service without an
    HTTP side, such as the relay, counts as healthy while its process is alive).

    ``kill()`` sends SIGKILL to the whole group (a Prefect server's or uvicorn's children die
    with it, nothing is flushed or shut down cleanly); ``restart()`` starts the same command
    again on the same port. Output goes to ``<log_dir>/<name>.log`` (appended across restarts),
    whose tail is quoted when the service fails to come up.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        health_url: str | None,
        log_dir: Path,
        *,
        healthy: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200,
        start_timeout: float = 300.0,  # a loaded 2-core machine can take minutes to start Prefect
    ) -> None:
        self.name, self.argv, self.env, self.health_url = name, list(argv), dict(env), health_url
        self.log_path = log_dir / f"{name}.log"
        self._healthy, self.start_timeout = healthy, start_timeout
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, wait: bool = True) -> ServiceProcess:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n==== start #{self.starts + 1} at {time.strftime('%H:%M:%S')} ====\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: kill() reaches its children
            )
        self.starts += 1
        if wait:
            self.wait_healthy()
        return self

    def kill(self) -> None:
        """SIGKILL the process group, as a crash or the OOM killer would, and reap it."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=30)
        self.kills += 1

    def restart(self, pause: float = 0.0, wait: bool = True) -> ServiceProcess:
        self.kill()
        if pause:
            time.sleep(pause)
        return self.start(wait=wait)

    def stop(self, timeout: float = 15.0) -> None:
        """Ask politely (SIGTERM to the group), then SIGKILL the group (children that outlived
        their parent included): for teardown."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=30)

    # -- state -------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def is_healthy(self, timeout: float = 2.0) -> bool:
        if self.health_url is None:
            return self.alive
        try:
            return self._healthy(httpx.get(self.health_url, timeout=timeout))
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while not self.is_healthy():
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not healthy at {self.health_url}:\n{self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def scratch_database(
    prefix: str = "lienthong_fault", *, driver: str = "psycopg", migrate: bool = True
) -> Iterator[str]:
    """A PostgreSQL database of its own on the machine's server, migrated to the newest schema
    (``migrate=False``: empty, for a Prefect server, which migrates its own); yields its
    SQLAlchemy URL with ``driver`` and drops it afterwards (connections of killed processes
    included)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", f"postgresql+{driver}://")
    url = f"{base}/{name}"
    try:
        if migrate:
            from lienthong.db.migrate import upgrade

            upgrade(url)
        yield url
    finally:
        from lienthong.db import dispose_engines

        dispose_engines()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prefect_server_env(home: Path, port: int, database_url: str) -> dict[str, str]:
    """A Prefect server on ``database_url`` (an asyncpg URL, as in production; see
    :func:`prefect_pg`) with its home under ``home``, without the UI and the services a test does
    not need, so that a restart is quick."""
    home.mkdir(parents=True, exist_ok=True)
    api = f"http://127.0.0.1:{port}/api"
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
        # No cron deployments here, and no run is meant to execute: these would only take CPU.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
    }


def prefect_server(
    home: Path, log_dir: Path, database_url: str, port: int | None = None
) -> ServiceProcess:
    port = port or free_port()
    env = prefect_server_env(home, port, database_url)
    return ServiceProcess(
        "prefect-server",
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env,
        f"http://127.0.0.1:{port}/api/health",
        log_dir,
    )


@pytest.fixture
def pg_scratch() -> Iterator[str]:
    """A scratch PostgreSQL database for one test (SQLAlchemy URL)."""
    with scratch_database() as url:
        yield url


@pytest.fixture
def prefect_pg() -> Iterator[str]:
    """An empty scratch PostgreSQL database for a Prefect server (asyncpg URL): SQLite locks under
    the concurrent writes a fault test makes, and a lost write can strand a suspended run."""
    with scratch_database("lienthong_fault_prefect", driver="asyncpg", migrate=False) as url:
        yield url


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    """Register every ServiceProcess here *before* starting it; all are stopped at teardown."""
    started: list[ServiceProcess] = []
    yield started
    for proc in reversed(started):
        proc.stop()
