"""Shared fixtures: a PostgreSQL database and a Prefect server per test session (per xdist worker
under ``make check``/``make test``), started once, when a test first asks for them; live HTTP
services on localhost.

Markers say what a test needs (pyproject.toml): ``postgres`` and ``prefect`` tests get them from
the session's fixtures; ``topology`` tests start process stacks of their own; ``browser`` tests
drive headless Chromium. A test that uses ``db``/``pg_url`` or ``prefect_api`` is marked
``postgres``/``prefect`` here at collection, so that the marker cannot be forgotten."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import prefect.context  # noqa: F401  (see below)
import pytest

# Prefect fixes its root settings from the environment when `prefect.context` is first imported.
# Imported here, at collection, they come from the clean environment: were the first import to
# happen inside a fixture that points the environment at a throw-away topology (the fault tests'
# Redis and API), every later Prefect server of the session would inherit it.
from infra.processes import PG_ADMIN, LiveServer, prefect_server_on_postgres, scratch_database
from lienthong.settings import reset_settings


@contextmanager
def prefect_harness() -> Iterator[str]:
    """What ``prefect_test_harness`` does, on a PostgreSQL-backed server instead of its SQLite one:
    this process (and every subprocess given ``PREFECT_API_URL``) talks to a fresh ``prefect
    server start``. Yields the API URL. Its scheduler looks for due cron runs every second (the
    scheduler test waits for one), instead of every minute."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from prefect.utilities.asyncutils import run_coro_as_sync

    with (prefect_server_on_postgres(PG_ADMIN, name="test-prefect-server",
                                     env={"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "1"}) as server,
          temporary_settings({PREFECT_API_URL: (api := server.env["PREFECT_API_URL"])}),
          prefect.context._temporary_global_settings_context(prefect.context.get_settings_context())):
        yield api

        async def drain() -> None:  # as the harness does: no log or event left for a stopped server
            with contextlib.suppress(RuntimeError):  # the log worker never started
                result = APILogWorker.instance().drain()
                if inspect.isawaitable(result):
                    await result
            result = EventsWorker.drain_all()
            if inspect.isawaitable(result):
                await result

        run_coro_as_sync(drain())


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test session (created, migrated, dropped at the end)."""
    with scratch_database(PG_ADMIN, "lienthong_test") as url:
        yield url


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[str]:
    """The session's Prefect server (on PostgreSQL): this process, and every subprocess that
    inherits the environment, talks to it. Started once, for the first test that asks."""
    with prefect_harness() as api, pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_API_URL", api)
        yield api


PREFECT_FIXTURES = {"prefect_api", "prefect_server"}
POSTGRES_FIXTURES = {"db", "pg_url", "pg_scratch", "prefect_pg", "vault_env"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what a test needs from the fixtures it uses (a topology test is marked by its module);
    an ``integration`` test needs PostgreSQL, a ``ui`` test a browser."""
    for item in items:
        if item.get_closest_marker("ui"):
            item.add_marker(pytest.mark.browser)
        used = set(getattr(item, "fixturenames", ()))
        if used & PREFECT_FIXTURES:
            item.add_marker(pytest.mark.prefect)
        if used & (POSTGRES_FIXTURES | PREFECT_FIXTURES) or item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.postgres)
    _longest_first(items)


def _longest_first(items: list[pytest.Item]) -> None:
    """Modules that start process topologies first, then browser tests, then those on the Prefect
    server, then the rest; each module's tests in their own order. Under xdist (``--dist loadscope
    --no-loadscope-reorder``) a module is one unit of work, handed out in this order: the long
    topologies start at once, side by side with the rest, instead of last on an idle worker."""
    rank_of: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        module = item.nodeid.split("::", 1)[0]
        rank = next((r for r, m in enumerate(("topology", "browser", "prefect")) if item.get_closest_marker(m)), 3)
        rank_of[module] = min(rank_of.get(module, rank), rank)
        first.setdefault(module, i)
    order = {id(item): n for n, item in enumerate(items)}
    items.sort(key=lambda item: (rank_of[m := item.nodeid.split("::", 1)[0]], first[m], order[id(item)]))


@pytest.fixture
def db(pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """Point the settings at the session's PostgreSQL database, and runtime files (forms, vault,
    keys) at a scratch directory; rows are cleaned after each test."""
    monkeypatch.setenv("LIENTHONG_DATABASE_URL", pg_url)
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(tmp_path / "var"))
    reset_settings()
    yield pg_url
    from sqlalchemy import text

    from lienthong.db import get_engine

    with get_engine(pg_url).begin() as conn:
        tables = [r[0] for r in conn.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version'"))]
        if tables:
            conn.execute(text("SET session_replication_role = replica"))  # bypass append-only triggers
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
            # The row the migrations seed: the vault chain's head at the genesis hash.
            conn.execute(text("INSERT INTO vault_chain_head (id, last_hash, length) VALUES (1, :g, 0)"),
                         {"g": "0" * 64})
            conn.execute(text("SET session_replication_role = origin"))
    reset_settings()


# --- live HTTP services on localhost ----------------------------------------------------------

import time  # noqa: E402


def prefect_texts(api_url: str | None = None) -> list[str]:
    """Every artifact (key, data, description) and log line a Prefect API holds: this process's
    API, or ``api_url``'s. Logs are shipped in the background: this process's are flushed first,
    or a scan would see only part of them."""
    from prefect.client.orchestration import PrefectClient, get_client
    from prefect.client.schemas.filters import LogFilter
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)

    async def paged(read: Callable[[int], Any]) -> list[Any]:
        found, offset = [], 0
        while True:
            page = await read(offset)
            found += page
            if len(page) < 200:
                return found
            offset += 200

    async def read() -> list[str]:
        async with PrefectClient(api_url) if api_url else get_client() as client:
            arts = await paged(lambda at: client.read_artifacts(limit=200, offset=at))
            logs = await paged(lambda at: client.read_logs(log_filter=LogFilter(), limit=200, offset=at))
        return [f"{a.key} {a.data} {a.description or ''}" for a in arts] + [log.message for log in logs]

    return asyncio.run(read())


def until(cond: Callable[[], bool], what: str, timeout: float = 20.0, poll: float = 0.02) -> None:
    """Wait for ``cond()`` to hold, checking every ``poll`` seconds; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


@pytest.fixture
def agency_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, object]]:
    """The bundled agency simulator over HTTP (instant mode); yields (url, simulator)."""
    from lienthong.simulators.agency import Simulator, Switches, create_app

    sim = Simulator(Switches(mode="instant", refusal_rate=0.0, failure_rate=0.0))
    with LiveServer(create_app(sim)) as server:
        monkeypatch.setenv("LIENTHONG_AGENCY_API_URL", server.url)
        monkeypatch.setenv("LIENTHONG_AGENCY_POLL_SECONDS", "0.01")
        reset_settings()
        yield server.url, sim
    reset_settings()
