"""The deadline sweep on a fixed clock: warnings, the D-1 apology draft (once), lateness."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from lienthong.clock import FixedClock, set_clock
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, ReappointmentRow, StepRow
from lienthong.notify import LocalSink, relay
from lienthong.portal.ledger import LatenessRow, SweepEvent
from lienthong.settings import reset_settings
from lienthong.sweep import ApologyNotFound, approve_apology, pending_apologies, sweep
from tests.integration.accountability_factory import make_dossier, t

pytestmark = pytest.mark.integration

CODE = "000.00.06.H56-260302-0001"


@pytest.fixture
def env(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FixedClock]:
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("LIENTHONG_NOTIFY_SINK_PATH", str(tmp_path / "notifications.jsonl"))
    reset_settings()
    clock = FixedClock(datetime(2026, 3, 2, 9, 0))
    set_clock(clock)
    yield clock
    set_clock(None)


def _land_dossier(code: str = CODE) -> None:
    with session_scope() as s:
        make_dossier(
            s,
            code,
            received_at="2026-03-02T09:00",
            due_at="2026-03-06T17:00",
            steps=[
                {
                    "key": "tham_dinh",
                    "agency": "VPDKDD",
                    "started_at": "2026-03-02T09:00",
                    "due_at": "2026-03-04T17:00",
                    "action": "Kiểm tra hồ sơ",
                }
            ],
        )


def _sink(tmp: Path) -> list[dict[str, object]]:
    relay()
    return LocalSink(tmp / "notifications.jsonl").read()


def test_agency_is_warned_once_when_less_than_a_quarter_of_its_step_time_is_left(env, tmp_path):
    _land_dossier()
    env.set(datetime(2026, 3, 3, 9, 0))  # about 54% of the step's office time left
    assert sweep().warnings == []
    env.set(datetime(2026, 3, 4, 14, 0))  # 3 of 27 office hours left
    report = sweep()
    assert report.warnings == [(CODE, "step:tham_dinh", "VPDKDD")]
    assert sweep().warnings == []  # a second pass warns nobody again
    messages = _sink(tmp_path)
    assert [(m["audience"], m["to"], m["kind"]) for m in messages] == [
        ("agency", "VPDKDD", "warning")
    ]
    text = str(messages[0]["text"])
    assert CODE in text and "sắp đến hạn" in text and "Nguyễn" not in text
    with session_scope() as s:
        step = s.execute(select(StepRow)).scalar_one()
        assert step.warned_at is not None and not step.late


def test_apology_draft_is_prepared_at_d_minus_1_only_and_only_once(env, tmp_path):
    _land_dossier()
    env.set(datetime(2026, 3, 4, 10, 0))  # D-2: too early, even though the dossier is at risk
    assert sweep().apology_drafts == []
    env.set(datetime(2026, 3, 5, 10, 0))  # D-1, the land office's step is overdue
    report = sweep()
    assert report.apology_drafts == [(CODE, "VPDKDD")]
    assert report.late_steps == [(CODE, "step:tham_dinh", "VPDKDD")]
    env.set(datetime(2026, 3, 5, 16, 0))
    assert sweep().apology_drafts == []
    drafts = pending_apologies()
    assert len(drafts) == 1 and drafts[0].agency == "VPDKDD"
    assert drafts[0].original_due == t("2026-03-06T17:00")
    assert drafts[0].new_due == t("2026-03-10T17:00")  # two working days later, over the weekend
    with session_scope() as s:  # still a draft: the appointment has not moved
        assert s.execute(select(DossierRow.due_at)).scalar_one() == t("2026-03-06T17:00")


def test_no_apology_draft_for_a_dossier_on_track_at_d_minus_1(env):
    with session_scope() as s:
        make_dossier(
            s,
            CODE,
            received_at="2026-03-02T09:00",
            due_at="2026-03-06T17:00",
            steps=[
                {
                    "key": "cap_giay",
                    "agency": "VPDKDD",
                    "started_at": "2026-03-02T09:00",
                    "due_at": "2026-03-06T17:00",
                },
                {
                    "key": "tham_dinh",
                    "agency": "VPDKDD",
                    "started_at": "2026-03-02T09:00",
                    "due_at": "2026-03-03T17:00",
                    "status": "done",
                    "finished_at": "2026-03-03T10:00",
                    "verdict": "on_time",
                },
                {
                    "key": "xac_dinh_thue",
                    "agency": "THUE",
                    "started_at": "2026-03-03T10:00",
                    "due_at": "2026-03-04T17:00",
                    "status": "done",
                    "finished_at": "2026-03-04T10:00",
                    "verdict": "on_time",
                },
                {
                    "key": "nop_thue",
                    "agency": "THUE",
                    "kind": "payment",
                    "started_at": "2026-03-04T10:00",
                    "due_at": "2026-03-04T17:00",
                    "status": "done",
                    "finished_at": "2026-03-04T11:00",
                },
            ],
        )
    env.set(datetime(2026, 3, 5, 10, 0))
    assert sweep().apology_drafts == []


def test_approved_apology_moves_the_appointment_and_tells_the_citizen(env, tmp_path):
    _land_dossier()
    env.set(datetime(2026, 3, 5, 10, 0))
    sweep()
    env.set(datetime(2026, 3, 5, 11, 0))
    decision = approve_apology(
        CODE, approved=True, approver="lanh-dao-vpdkdd", new_due=datetime(2026, 3, 11, 17, 0)
    )
    assert decision.approved and decision.within_legal_time
    with session_scope() as s:
        assert s.execute(select(DossierRow.due_at)).scalar_one() == t("2026-03-11T17:00")
        assert s.execute(select(ReappointmentRow.approved_at)).scalar_one() is not None
    citizen = [m for m in _sink(tmp_path) if m["audience"] == "citizen"]
    assert len(citizen) == 1
    assert citizen[0]["to"] == "*******678"  # the phone number is masked in the record
    assert "11/03/2026" in str(citizen[0]["text"]) and "xin lỗi" in str(citizen[0]["text"])
    with pytest.raises(ApologyNotFound):  # one re-appointment per dossier
        approve_apology(CODE, approved=True, approver="x")
    env.set(datetime(2026, 3, 10, 10, 0))  # the new D-1: no second draft
    assert sweep().apology_drafts == []


def test_rejected_draft_is_not_prepared_again(env):
    _land_dossier()
    env.set(datetime(2026, 3, 5, 10, 0))
    sweep()
    approve_apology(CODE, approved=False, approver="lanh-dao-vpdkdd")
    assert pending_apologies() == []
    env.set(datetime(2026, 3, 5, 15, 0))
    assert sweep().apology_drafts == []


def test_lateness_is_attributed_to_the_agency_whose_step_overran(env):
    with session_scope() as s:
        make_dossier(
            s,
            CODE,
            received_at="2026-03-02T09:00",
            due_at="2026-03-06T17:00",
            status=9,
            finished_at="2026-03-09T10:00",
            steps=[
                {
                    "key": "tham_dinh",
                    "agency": "VPDKDD",
                    "started_at": "2026-03-02T09:00",
                    "due_at": "2026-03-03T17:00",
                    "status": "done",
                    "finished_at": "2026-03-03T10:00",
                    "verdict": "early",
                },
                {
                    "key": "xac_dinh_thue",
                    "agency": "THUE",
                    "started_at": "2026-03-03T10:00",
                    "due_at": "2026-03-04T17:00",
                    "status": "done",
                    "finished_at": "2026-03-06T16:00",
                    "verdict": "late",
                },
                {
                    "key": "cap_giay",
                    "agency": "VPDKDD",
                    "started_at": "2026-03-06T16:00",
                    "due_at": "2026-03-09T17:00",
                    "status": "done",
                    "finished_at": "2026-03-09T10:00",
                    "verdict": "on_time",
                },
            ],
        )
        # Open, past its deadline, the police step still running past its own limit.
        make_dossier(
            s,
            "000.00.06.H56-260302-0002",
            procedure_id="lien-thong-khai-sinh",
            received_at="2026-03-02T09:00",
            due_at="2026-03-05T17:00",
            steps=[
                {
                    "key": "thuong_tru",
                    "agency": "CONG_AN_XA",
                    "started_at": "2026-03-02T11:00",
                    "due_at": "2026-03-05T17:00",
                }
            ],
        )
        # Late, but every step kept its own limit: the time was lost between steps.
        make_dossier(
            s,
            "000.00.06.H56-260302-0003",
            received_at="2026-03-02T09:00",
            due_at="2026-03-04T17:00",
            status=10,
            finished_at="2026-03-05T09:00",
            steps=[
                {
                    "key": "tham_dinh",
                    "agency": "VPDKDD",
                    "started_at": "2026-03-02T09:00",
                    "due_at": "2026-03-03T17:00",
                    "status": "done",
                    "finished_at": "2026-03-03T10:00",
                    "verdict": "early",
                }
            ],
        )
    env.set(datetime(2026, 3, 9, 12, 0))
    report = sweep()
    assert report.late_dossiers == ["000.00.06.H56-260302-0002"]
    assert report.attributions == {"THUE": 1, "CONG_AN_XA": 1, "MOT_CUA": 1}
    with session_scope() as s:
        rows = {
            (r.dossier_code[-4:], r.agency, r.primary)
            for r in s.execute(select(LatenessRow)).scalars()
        }
        assert rows == {
            ("0001", "THUE", True),
            ("0002", "CONG_AN_XA", True),
            ("0003", "MOT_CUA", True),
        }
        thue = s.execute(select(LatenessRow).where(LatenessRow.agency == "THUE")).scalar_one()
        assert thue.overrun_seconds == pytest.approx(
            (9.5 + 8.5) * 3600
        )  # 05/3 all day + 06/3 07:30-16:00
        assert all(s.execute(select(DossierRow.late)).scalars())
        assert s.execute(select(StepRow.late).where(StepRow.agency == "CONG_AN_XA")).scalar_one()
    assert sweep().late_dossiers == []  # marks are made once
    with session_scope() as s:
        assert (
            s.execute(
                select(SweepEvent).where(SweepEvent.kind == "late", SweepEvent.subject == "dossier")
            )
            .scalars()
            .all()
        )
