"""Shared fixtures: a fresh PostgreSQL database per test session, migrated to the newest schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from lienthong.db import dispose_engines
from lienthong.settings import reset_settings

PG_ADMIN = os.environ.get("LIENTHONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of this test session (created, migrated, dropped at the end)."""
    name = f"lienthong_test_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{base}/{name}"
    from lienthong.db.migrate import upgrade

    upgrade(url)
    yield url
    dispose_engines()
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point the settings at the session's PostgreSQL database; rows are cleaned after each test."""
    monkeypatch.setenv("LIENTHONG_DATABASE_URL", pg_url)
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
            conn.execute(text("SET session_replication_role = origin"))
    reset_settings()
