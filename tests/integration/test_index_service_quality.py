"""The 766 index and the operator report on a hand-computed fixture of dossiers (March 2026)."""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime
from pathlib import Path

import pytest

from lienthong.clock import FixedClock, set_clock
from lienthong.db import session_scope
from lienthong.index.report import build_report
from lienthong.portal.ledger import HistoryDossier, PortalSyncRow
from lienthong.reports.cli import register
from lienthong.settings import reset_settings
from tests.integration.accountability_factory import make_dossier, t

pytestmark = pytest.mark.integration
U = "000.00.06.H56-2603"


@pytest.fixture
def fixture(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(tmp_path))
    reset_settings()
    set_clock(FixedClock(datetime(2026, 4, 15, 9, 0)))
    step = lambda agency, verdict, started, due, finished=None, **kw: {  # noqa: E731
        "key": kw.get("key", "tham_dinh" if agency == "VPDKDD" else "xac_dinh_thue"),
        "agency": agency,
        "verdict": verdict,
        "started_at": started,
        "due_at": due,
        "finished_at": finished,
        "status": "done" if finished else "pending",
        **kw,
    }
    with session_scope() as s:
        # D1 early (end = first 9, not the later 10), online, fully digitized, reused, synced.
        d1 = make_dossier(
            s,
            f"{U}02-0001",
            received_at="2026-03-02T09:00",
            due_at="2026-03-10T17:00",
            status=10,
            finished_at="2026-03-09T10:00",
            channel="online",
            history=[(2, "2026-03-02T09:00"), (9, "2026-03-09T10:00"), (10, "2026-03-11T08:00")],
            components=[{"file_ref": "a.pdf", "reused": True}, {"vault_address": "vault://x"}],
            deliveries={"vault": "2026-03-09T10:00:00+07:00"},
            steps=[
                step("VPDKDD", "early", "2026-03-02T09:30", "2026-03-06T17:00", "2026-03-05T09:30")
            ],
        )
        s.add(
            PortalSyncRow(
                dossier_code=d1.code, dossier_id=d1.id, state="acked", progress_count=1, attempts=1
            )
        )
        # D2 on time only because the 2 days waiting for the citizen's supplement are
        # subtracted; paid online.
        make_dossier(
            s,
            f"{U}02-0002",
            received_at="2026-03-02T09:00",
            due_at="2026-03-05T17:00",
            status=9,
            finished_at="2026-03-06T15:00",
            history=[(2, "2026-03-02T09:00"), (9, "2026-03-06T15:00")],
            supplements=[("2026-03-03T09:00", "2026-03-05T09:00")],
            steps=[
                step("THUE", "on_time", "2026-03-02T10:00", "2026-03-05T17:00", "2026-03-05T10:00"),
                step(
                    "THUE",
                    None,
                    "2026-03-05T10:00",
                    "2026-03-05T17:00",
                    "2026-03-05T11:00",
                    key="nop_thue",
                    kind="payment",
                    outputs={"payment_receipt": {"channel": "online"}},
                ),
            ],
        )
        # D3 late: two supplement requests, whatever the dates.
        make_dossier(
            s,
            f"{U}03-0001",
            received_at="2026-03-03T09:00",
            due_at="2026-03-20T17:00",
            status=9,
            finished_at="2026-03-04T10:00",
            history=[(2, "2026-03-03T09:00"), (9, "2026-03-04T10:00")],
            supplements=[
                ("2026-03-03T10:00", "2026-03-03T11:00"),
                ("2026-03-03T12:00", "2026-03-03T13:00"),
            ],
            steps=[
                step("VPDKDD", "late", "2026-03-03T09:00", "2026-03-03T17:00", "2026-03-04T09:00")
            ],
        )
        # D4 no end yet, overdue at the end of the period: late.
        make_dossier(
            s,
            f"{U}20-0001",
            received_at="2026-03-20T09:00",
            due_at="2026-03-25T17:00",
            status=4,
            history=[(2, "2026-03-20T09:00")],
            steps=[step("THUE", None, "2026-03-20T10:00", "2026-03-24T17:00")],
        )
        # D5 no end yet, not due before the period ends: not judged; online.
        make_dossier(
            s,
            f"{U}30-0001",
            received_at="2026-03-30T09:00",
            due_at="2026-04-10T17:00",
            status=4,
            channel="online",
            history=[(2, "2026-03-30T09:00")],
        )
        # D6 stopped (8) before its deadline: ended, early.
        make_dossier(
            s,
            f"{U}05-0001",
            received_at="2026-03-05T09:00",
            due_at="2026-03-20T17:00",
            status=8,
            finished_at="2026-03-12T10:00",
            history=[(2, "2026-03-05T09:00"), (8, "2026-03-12T10:00")],
        )
        for code, agency, rec, due, fin, st in [
            (
                "000.00.06.H56-260303-0009",
                "VPDKDD",
                "2026-03-03T09:00",
                "2026-03-10T17:00",
                "2026-03-11T09:00",
                10,
            ),
            (
                "000.00.06.H56-260304-0009",
                "UBND_XA",
                "2026-03-04T09:00",
                "2026-03-10T17:00",
                "2026-03-09T09:00",
                9,
            ),
        ]:
            s.add(
                HistoryDossier(
                    code=code,
                    procedure_code="1.001193",
                    agency=agency,
                    received_at=t(rec),
                    due_at=t(due),
                    finished_at=t(fin),
                    status=st,
                    supplement_requests=0,
                    row_hash="x",
                    source_file="old.csv",
                    line_no=2,
                    imported_at=t(rec),
                )
            )
    yield tmp_path
    set_clock(None)


def test_on_time_rate_follows_decision_766_rules(fixture):
    r = build_report(date(2026, 3, 1), date(2026, 3, 31), write=False)
    ind = r.province.indicator("2.1")
    # judged: D1 early, D2 on time (wait subtracted), D3 late (2 supplements),
    # D4 late (open, overdue),
    # D6 early, H1 late, H2 early; D5 is not yet due.
    assert (ind.numerator, ind.denominator) == (4, 7)
    assert ind.points == pytest.approx(round(20 * 4 / 7, 2))


def test_digital_indicators_are_shares_of_live_dossiers_with_thresholds(fixture):
    p = build_report(date(2026, 3, 1), date(2026, 3, 31), write=False).province
    got = {
        i: (p.indicator(i).numerator, p.indicator(i).denominator, p.indicator(i).points)
        for i in ("1.4", "3.3", "3.6", "4.2", "4.3", "4.4")
    }
    assert got == {
        "1.4": (1, 6, round(6 * (1 / 6), 2)),
        "3.3": (2, 6, 4.0),  # 33% online against a 50% threshold
        "3.6": (1, 6, 1.0),  # every land dossier bears a fee; one paid online
        "4.2": (1, 6, round(4 * (1 / 6) / 0.8, 2)),
        "4.3": (1, 6, round(2 * (1 / 6) / 0.8, 2)),
        "4.4": (1, 6, round(4 * (1 / 6), 2)),
    }
    assert p.indicator("5.4").points is None  # no complaints data: never scored
    assert p.points == pytest.approx(sum(g.points for g in p.groups))
    assert p.available_points == 6 + 20 + 10 + 12


def test_report_json_counts_dossiers_received_in_the_period(fixture, capsys):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(
        ["report", "--from", "2026-03-01", "--to", "2026-03-31", "--format", "json"]
    )
    assert args.handler(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert {
        k: out[k]
        for k in ("received", "resolved", "resolved_on_time", "late", "in_progress", "on_time_rate")
    } == {
        "received": 8,
        "resolved": 6,
        "resolved_on_time": 4,
        "late": 2,
        "in_progress": 2,
        "on_time_rate": 66.67,
    }
    assert out["lateness_by_agency"] == {"VPDKDD": 2, "THUE": 1}
    html = Path(out["files"]["html"])
    assert html.exists() and "Tỷ lệ đúng hạn" in html.read_text(encoding="utf-8")
    for chart in ("on_time", "lateness", "steps"):
        assert Path(out["files"][chart]).read_bytes()[:4] == b"\x89PNG"


def test_report_for_one_agency_counts_only_its_dossiers(fixture, capsys):
    r = build_report(date(2026, 3, 1), date(2026, 3, 31), agency="THUE", write=False)
    assert (r.summary["received"], r.summary["resolved"], r.summary["in_progress"]) == (2, 1, 1)
    assert r.summary["on_time_rate"] == 100.0
    assert [a["agency"] for a in r.agencies] == ["THUE"]


def test_a_period_before_the_dossiers_is_empty_not_an_error(fixture):
    r = build_report(date(2026, 1, 1), date(2026, 1, 31), write=False)
    assert r.summary["received"] == 0 and r.summary["on_time_rate"] is None
    assert r.province.indicator("2.1").points is None
