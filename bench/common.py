"""Shared pieces of the benchmarks: a scratch PostgreSQL database, a live server, a report line."""

from __future__ import annotations

import os
import platform
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

PG_ADMIN = os.environ.get("LIENTHONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def scratch_database(prefix: str = "lienthong_bench") -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one benchmark run, dropped afterwards."""
    from lienthong.db import dispose_engines
    from lienthong.db.migrate import upgrade
    from lienthong.settings import reset_settings

    name = f"{prefix}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    os.environ["LIENTHONG_DATABASE_URL"] = url
    reset_settings()
    upgrade(url)
    try:
        yield url
    finally:
        dispose_engines()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def line(name: str, value: float, unit: str, anchor: float | None = None, anchor_name: str = "") -> str:
    ratio = f"  ratio {value / anchor:.3f} vs {anchor_name}" if anchor else ""
    return f"{name:<52} {value:>10.2f} {unit}{ratio}"
