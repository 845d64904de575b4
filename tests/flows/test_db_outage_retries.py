"""Tasks that touch the database outlast a PostgreSQL restart (a real one: a cluster of the test's
own, stopped and started while the task runs), and retry other failures only as often as they say."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from infra.processes import OwnPostgres
from lienthong.db import dispose_engines, is_outage, outlast_outage, session_scope
from tasks.retry import retrying

pytestmark = [pytest.mark.integration, pytest.mark.flows]

ZERO = (0.0, 0.0, 0.0, 0.0)


def _outage() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


class Flaky:
    """Raises the given errors in turn, then answers; counts its calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _run(flaky: Flaky, **policy: object) -> str:
    @task(name="flaky", cache_policy=NO_CACHE, **retrying(**policy))  # type: ignore[arg-type]
    def step() -> str:
        return flaky()

    @flow(name="retry-policy")
    def run() -> str:
        return step()

    return run()


def test_database_outage_is_retried_past_the_retries_for_other_failures() -> None:
    flaky = Flaky(_outage(), _outage(), _outage())
    assert _run(flaky, others=1, delays=ZERO) == "ok"
    assert flaky.calls == 4


def test_other_failures_are_retried_only_as_often_as_the_task_says() -> None:
    flaky = Flaky(ValueError("a"), ValueError("b"), ValueError("c"))
    with pytest.raises(ValueError, match="b"):
        _run(flaky, others=1, delays=ZERO)
    assert flaky.calls == 2


def test_never_and_when_stop_retries_but_not_for_an_outage() -> None:
    never = Flaky(KeyError("refused answer"))
    with pytest.raises(KeyError):
        _run(never, others=3, delays=ZERO, never=(KeyError,))
    assert never.calls == 1
    picky = Flaky(_outage(), LookupError("no"))
    with pytest.raises(LookupError):
        _run(picky, others=3, delays=ZERO, when=lambda exc: isinstance(exc, TimeoutError))
    assert picky.calls == 2


def test_constraint_violations_are_not_outages() -> None:
    assert is_outage(_outage())
    assert not is_outage(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_outage(ValueError("x"))
    with pytest.raises(IntegrityError):
        outlast_outage(Flaky(IntegrityError("INSERT", {}, Exception("dup"))), delays=ZERO)


@pytest.fixture
def own_pg() -> Iterator[OwnPostgres]:
    pg = OwnPostgres().init()
    pg.start()
    try:
        yield pg
    finally:
        dispose_engines()
        pg.destroy()


def _restart_later(pg: OwnPostgres, down_for: float) -> threading.Thread:
    pg.stop()

    def start() -> None:
        time.sleep(down_for)
        pg.start()

    thread = threading.Thread(target=start)
    thread.start()
    return thread


def _select_one(url: str) -> int:
    with session_scope(url) as s:
        return int(s.execute(text("SELECT 1")).scalar_one())


def test_a_task_outlasts_a_real_postgresql_restart(own_pg: OwnPostgres) -> None:
    url = own_pg.admin_url.replace("postgresql://", "postgresql+psycopg://")
    assert _select_one(url) == 1  # the pool now holds a connection the restart will cut
    calls: list[float] = []

    @task(name="select-one", cache_policy=NO_CACHE, **retrying(others=0, delays=(1, 1, 2, 2, 4, 8)))
    def select_one() -> int:
        calls.append(time.monotonic())
        return _select_one(url)

    @flow(name="outage")
    def run() -> int:
        return select_one()

    restart = _restart_later(own_pg, down_for=3.0)
    try:
        assert run() == 1
    finally:
        restart.join()
    assert len(calls) >= 2  # it failed while the server was down, then succeeded


def test_outlast_outage_in_a_flow_body_rides_out_a_restart(own_pg: OwnPostgres) -> None:
    url = own_pg.admin_url.replace("postgresql://", "postgresql+psycopg://")
    assert _select_one(url) == 1
    restart = _restart_later(own_pg, down_for=2.0)
    try:
        assert outlast_outage(lambda: _select_one(url), delays=(1, 1, 2, 2, 4, 8)) == 1
    finally:
        restart.join()
