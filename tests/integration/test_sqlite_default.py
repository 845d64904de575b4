"""The embedded default (SQLite under ./var) keeps times aware and ordered, as PostgreSQL does."""

import random
from datetime import datetime

import pytest
from sqlalchemy import select, text

from lienthong.db import dispose_engines, get_engine, session_scope
from lienthong.db.migrate import upgrade
from lienthong.db.models import DossierRow
from lienthong.reception import receive
from lienthong.settings import reset_settings
from samples.dossiers import make_submission


@pytest.fixture
def sqlite_default(tmp_path, monkeypatch):
    monkeypatch.delenv("LIENTHONG_DATABASE_URL", raising=False)
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(tmp_path))
    reset_settings()
    upgrade()
    yield tmp_path
    dispose_engines()
    reset_settings()


def test_sqlite_default_lives_under_var_and_returns_aware_times(sqlite_default):
    t = datetime.fromisoformat("2026-03-10T16:15:00+07:00")
    receive(make_submission("lien-thong-khai-sinh", random.Random(1), t))
    assert (sqlite_default / "lienthong.db").exists()
    with session_scope() as s:
        row = s.execute(select(DossierRow)).scalar_one()
        assert row.received_at == t and row.received_at.utcoffset().total_seconds() == 7 * 3600
        assert row.due_at.isoformat() == "2026-03-16T17:00:00+07:00"  # after 15:00: day 0 is 11/3
    with get_engine().connect() as conn:
        raw = conn.execute(text("select received_at from dossiers")).scalar_one()
    assert raw.endswith("+07:00")


def test_naive_times_are_refused_rather_than_stored_ambiguously(sqlite_default):
    with pytest.raises(Exception, match="naive"), session_scope() as s:
        s.execute(text("select 1"))
        s.add(DossierRow(code="x", unit_id="u", procedure_id="p", procedure_code="1.000001",
                         procedure_version="1", time_limit_days=1, channel="online", status=2,
                         received_at=datetime(2026, 3, 10, 9), options={}, payload={},
                         deliveries={}, created_at=datetime(2026, 3, 10, 9),
                         updated_at=datetime(2026, 3, 10, 9)))
        s.flush()
