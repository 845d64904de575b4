"""Commands on a fresh database (issue 16 §6): the schema is brought up to date, or the command
says in one line (Vietnamese and English) what to run. Never a traceback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from lienthong.cli import main
from lienthong.db import dispose_engines
from lienthong.db.migrate import current, schema_heads, upgrade
from lienthong.errors import ExitCode
from lienthong.settings import reset_settings

pytestmark = pytest.mark.integration

HEADER = "dossier_code,procedure_code,agency,received_at,due_at,finished_at,status,supplement_requests\n"
# One dossier a year from 2018 on: every year needs its calendar.
ROWS = [
    f"000.00.06.H56-{y % 100:02d}0305-0001,1.001193,UBND_XA,{y}-03-05T09:00:00,"
    f"{y}-03-06 17:00,{y}-03-06 10:00,10,0"
    for y in range(2018, 2027)
]


@pytest.fixture
def fresh_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("LIENTHONG_DATABASE_URL", raising=False)
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(tmp_path / "var"))
    reset_settings()
    yield tmp_path
    dispose_engines()
    reset_settings()


def test_history_from_2018_imports_and_reports_on_a_new_database(fresh_sqlite, capsys):
    csv = fresh_sqlite / "history.csv"
    csv.write_text(HEADER + "\n".join(ROWS) + "\n", encoding="utf-8")
    assert not (fresh_sqlite / "var" / "lienthong.db").exists()
    assert main(["import-history", str(csv)]) == 0
    assert "9 đã nhập" in capsys.readouterr().out
    assert current() == schema_heads()
    assert main(["report", "--from", "2018-01-01", "--to", "2026-12-31", "--format", "json"]) == 0
    out = capsys.readouterr()
    assert '"received": 9' in out.out
    assert "Traceback" not in out.err


def test_a_report_over_a_year_without_a_notice_warns_and_still_answers(fresh_sqlite, capsys):
    assert main(["report", "--from", "2027-01-01", "--to", "2027-03-31"]) == 0
    err = capsys.readouterr().err
    assert "2027" in err and "tạm tính" in err and "provisional" in err


@pytest.fixture
def old_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A PostgreSQL database left at the first migration, as an install of an older version."""
    from tests.conftest import PG_ADMIN

    name = f"lienthong_old_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    upgrade(url, "0001_foundation")
    monkeypatch.setenv("LIENTHONG_DATABASE_URL", url)
    reset_settings()
    yield url
    dispose_engines()
    reset_settings()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_older_server_schema_is_not_migrated_behind_the_operator_but_named(old_postgres, capsys, tmp_path):
    csv = tmp_path / "h.csv"
    csv.write_text(HEADER + ROWS[0] + "\n", encoding="utf-8")
    assert main(["import-history", str(csv)]) == ExitCode.CONFIG
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "lienthong db upgrade" in line and "Lược đồ" in line and "out of date" in line
    assert current(old_postgres) == {"0001_foundation"}
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["import-history", str(csv)]) == 0


def test_a_missing_table_met_mid_command_is_one_line_not_a_traceback(fresh_sqlite, capsys, monkeypatch):
    # Migrations recorded as applied but a table dropped by hand: the check passes, the statement
    # fails, and the command still ends in one line.
    from sqlalchemy import text

    from lienthong.db import get_engine

    upgrade()
    with get_engine().begin() as conn:
        conn.execute(text("DROP TABLE history_dossiers"))
    csv = fresh_sqlite / "h.csv"
    csv.write_text(HEADER + ROWS[0] + "\n", encoding="utf-8")
    assert main(["import-history", str(csv)]) == ExitCode.CONFIG
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "lienthong db upgrade" in line and "Lược đồ" in line
