"""The engine's pool (SQLAlchemy's pool_pre_ping) replaces a connection the server closed before
handing it out: a PostgreSQL restart or an idle timeout costs no statement (lienthong.db)."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from lienthong.db import dispose_engines, get_engine

pytestmark = pytest.mark.integration


def test_a_pooled_connection_the_server_closed_is_replaced_before_use(pg_url: str) -> None:
    dispose_engines()
    engine = get_engine(pg_url)
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        admin = pg_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with engine.connect() as conn:  # the ping finds it dead: a new connection, no error
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        dispose_engines()
