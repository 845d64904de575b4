"""Shared pieces of the benchmarks: a scratch PostgreSQL database, a live server, a report line."""

from __future__ import annotations

import os
import platform
import statistics
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
    """The machine a figure was measured on: CPU model, cores, memory, OS and Python."""
    cpu, mem = platform.machine(), ""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
        cpu = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), cpu)
        meminfo = Path("/proc/meminfo").read_text(encoding="utf-8")
        kib = next(int(ln.split()[1]) for ln in meminfo.splitlines() if ln.startswith("MemTotal"))
        mem = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return (f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


@dataclass
class Figure:
    """One measured figure, with the anchor measured in the same run and the issue's target."""

    name: str
    value: float
    unit: str
    anchor: float | None = None
    anchor_name: str = ""
    target: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.anchor if self.anchor else None


# Figures recorded by the running benchmark; ``python -m bench`` turns them into the report's table.
FIGURES: list[Figure] = []


def record(name: str, value: float, unit: str, anchor: float | None = None, anchor_name: str = "",
           target: str = "") -> Figure:
    """Keep a figure for the report's table (and return it, to print)."""
    fig = Figure(name, value, unit, anchor, anchor_name, target)
    FIGURES.append(fig)
    return fig


def line(name: str, value: float, unit: str, anchor: float | None = None, anchor_name: str = "",
         target: str = "") -> str:
    """A printed report line; the figure is recorded for the table as well."""
    fig = record(name, value, unit, anchor, anchor_name, target)
    ratio = f"  ratio {fig.ratio:.3f} vs {anchor_name}" if fig.ratio is not None else ""
    return f"{name:<52} {value:>10.2f} {unit}{ratio}" + (f"  (target {target})" if target else "")


def paired(name: str, ratios: list[float], target: str) -> str:
    """The ratio of each paired round (the same work for both sides, moments apart), summarised by
    its median and quartiles. A ratio of totals or of best times is at the mercy of the few rounds
    a hiccup of the shared virtual machine (another tenant's burst, an fsync taking ten times its
    usual time) fell on; the median of paired rounds is not."""
    ratios = sorted(ratios)
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    fig = record(f"{name}, median of paired rounds", q[1], "ratio", target=target)
    return (f"{'  ' + fig.name:<52} {fig.value:>10.3f} ratio (quartiles {q[0]:.3f}-{q[2]:.3f}, "
            f"{len(ratios)} rounds)" + (f"  (target {target})" if target else ""))


@contextmanager
def prefect_server_on_postgres() -> Iterator[str]:
    """A real ``prefect server start`` on a scratch PostgreSQL database; yields its API URL."""
    from infra.local import prefect_server_on_postgres as start

    with start(PG_ADMIN, name="bench-prefect-server") as api:
        yield api
