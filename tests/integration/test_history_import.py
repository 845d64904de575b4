"""import-history: bad rows reported by line and skipped, good rows at once, twice = no change."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from lienthong.db import get_engine, session_scope
from lienthong.history import HistoryFileError, import_history
from lienthong.portal.ledger import HistoryDossier

pytestmark = pytest.mark.integration

HEADER = (
    "dossier_code,procedure_code,agency,received_at,due_at,finished_at,status,supplement_requests\n"
)
GOOD = [
    "000.00.06.H56-240105-0001,1.013831,VPDKDD,2024-01-05T09:00:00,"
    "2024-01-31 17:00,2024-01-30 10:00,10,0",
    "000.00.06.H56-240105-0002,1.013831,THUE,05/01/2024 10:00,20240201170000,,4,1",
    "000.00.06.H56-240106-0001,1.001193,UBND_XA,2024-01-06 08:00,"
    "2024-01-06 17:00,2024-01-06 15:00,9,0",
]
BAD = [
    # status 9 without an end time
    "000.00.06.H56-240107-0001,1.013831,VPDKDD,2024-01-07 09:00,2024-01-31 17:00,,9,0",
    "not-a-code,1.013831,VPDKDD,2024-01-07 09:00,,,4,0",
    "000.00.06.H56-240107-0002,1.013831,VPDKDD,2024-13-40 09:00,,,4,0",
    "000.00.06.H56-240105-0001,1.013831,VPDKDD,2024-01-05 09:00,,,4,0",  # duplicate of line 2
]


def _file(tmp: Path, lines: list[str]) -> Path:
    path = tmp / "history.csv"
    path.write_text(HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def _count() -> int:
    with session_scope() as s:
        return int(s.execute(select(func.count()).select_from(HistoryDossier)).scalar_one())


def test_bad_rows_are_reported_by_line_and_good_rows_are_imported(db, tmp_path):
    report = import_history(_file(tmp_path, GOOD + BAD))
    assert report.inserted == 3 and report.rows == 7
    assert [b.line for b in report.bad] == [5, 6, 7, 8]
    assert "finished_at" in report.bad[0].reason and "dòng 2" in report.bad[3].reason
    assert _count() == 3


def test_importing_the_same_file_twice_changes_nothing(db, tmp_path):
    path = _file(tmp_path, GOOD)
    import_history(path)
    with session_scope() as s:
        before = s.execute(select(HistoryDossier.code, HistoryDossier.imported_at)).all()
    again = import_history(path)
    assert (again.inserted, again.unchanged, again.bad) == (0, 3, [])
    with session_scope() as s:
        assert s.execute(select(HistoryDossier.code, HistoryDossier.imported_at)).all() == before


def test_a_changed_row_for_an_imported_dossier_is_refused_not_overwritten(db, tmp_path):
    import_history(_file(tmp_path, GOOD))
    changed = GOOD[0].replace(",10,0", ",10,2")
    report = import_history(_file(tmp_path, [changed]))
    assert report.inserted == 0 and [b.line for b in report.bad] == [2]
    with session_scope() as s:
        assert (
            s.execute(
                select(HistoryDossier.supplement_requests).where(
                    HistoryDossier.code == "000.00.06.H56-240105-0001"
                )
            ).scalar_one()
            == 0
        )


def test_history_rows_are_read_only_in_the_database(db, tmp_path):
    import_history(_file(tmp_path, GOOD))
    with pytest.raises(DBAPIError), get_engine().begin() as conn:
        conn.execute(text("UPDATE history_dossiers SET status = 9"))
    assert _count() == 3


def test_a_file_without_the_required_columns_is_refused_whole(db, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("dossier_code,status\nA,1\n", encoding="utf-8")
    with pytest.raises(HistoryFileError):
        import_history(path)
    assert _count() == 0
