"""The pool pings a connection before handing it out only when it sat idle (lienthong.db)."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import create_engine, text

import lienthong.db as db_module

pytestmark = pytest.mark.integration


def _engine(pg_url: str, pings: list[int], idle: float):  # type: ignore[no-untyped-def]
    engine = create_engine(pg_url, pool_size=2, max_overflow=0)
    db_module._ping_when_idle(engine, idle)
    real = engine.dialect.do_ping

    def counting(conn):  # type: ignore[no-untyped-def]
        pings.append(1)
        return real(conn)

    engine.dialect.do_ping = counting  # type: ignore[method-assign]
    return engine


def test_a_connection_back_in_use_at_once_is_not_pinged_an_idle_one_is(pg_url: str) -> None:
    pings: list[int] = []
    engine = _engine(pg_url, pings, idle=0.5)
    try:
        for _ in range(5):
            with engine.connect() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
        assert pings == []  # fresh, then reused within the idle window
        time.sleep(0.7)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        assert len(pings) == 1
    finally:
        engine.dispose()


def test_an_idle_connection_the_server_closed_is_replaced_before_use(pg_url: str) -> None:
    pings: list[int] = []
    engine = _engine(pg_url, pings, idle=0.0)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)
        with engine.connect() as conn:  # the ping finds it dead: a new connection, no error
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
        assert pings
    finally:
        engine.dispose()
