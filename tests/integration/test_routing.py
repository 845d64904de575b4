"""The routing core against PostgreSQL and the agency simulator over HTTP, without Prefect."""

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from lienthong.agencies.client import HttpAgencyClient
from lienthong.clock import FixedClock, set_clock
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, HandOver, StepRow
from lienthong.dossier import Status
from lienthong.reception import receive
from lienthong.routing import Routing
from samples.dossiers import make_submission

pytestmark = pytest.mark.integration
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")


def run_all(routing: Routing, code: str) -> Status:
    routing.begin(code)
    outcomes = [routing.run_step(code, s.id) for s in routing.plan(code).steps]
    return routing.finish(code, outcomes)


@pytest.fixture
def routing(db, agency_sim):
    """Routing and the simulator share one fixed clock, as every process shares the demo's."""
    url, _ = agency_sim
    clock = FixedClock(T + timedelta(hours=1))
    set_clock(clock)
    yield Routing(client=HttpAgencyClient(url), clock=clock, poll_seconds=0.0, sleep=lambda s: None)
    set_clock(None)


def test_group_1_runs_to_returned_with_personal_id_from_civil_status(routing):
    code = receive(make_submission("lien-thong-khai-sinh", random.Random(1), T)).dossier_code
    assert run_all(routing, code) == Status.RETURNED
    with session_scope() as s:
        steps = {st.step_key: st for st in s.execute(select(StepRow)).scalars()}
        assert set(steps) == {"khai_sinh", "thuong_tru", "bhyt"}
        pid = steps["khai_sinh"].outputs["personal_id"]
        assert len(pid) == 12 and steps["khai_sinh"].outputs["birth_extract"]["so_dinh_danh"] == pid
        # Same-day birth registration finished on the day; the others finished days ahead.
        assert steps["khai_sinh"].verdict == "on_time"
        assert steps["thuong_tru"].verdict == steps["bhyt"].verdict == "early"
        hand = [(h.from_agency, h.to_agency) for h in s.execute(select(HandOver).order_by(HandOver.id)).scalars()]
    assert hand[0] == ("MOT_CUA", "UBND_XA")
    assert ("UBND_XA", "CONG_AN_XA") in hand and ("UBND_XA", "BHXH") in hand
    assert ("CONG_AN_XA", "MOT_CUA") in hand and ("BHXH", "MOT_CUA") in hand


def test_residence_step_receives_the_personal_id_issued_upstream(routing, agency_sim):
    _, sim = agency_sim
    code = receive(make_submission("lien-thong-khai-sinh", random.Random(2), T)).dossier_code
    run_all(routing, code)
    entry = next(e for e in sim._by_ticket.values() if e.request.step_key == "thuong_tru")
    with session_scope() as s:
        pid = s.execute(select(StepRow.outputs).where(StepRow.step_key == "khai_sinh")).scalar_one()["personal_id"]
    assert entry.request.data["personal_id"] == pid


def test_refusal_by_an_agency_stops_the_dossier_and_skips_later_steps(routing, agency_sim):
    _, sim = agency_sim
    sim.switches.refusal_rate = 1.0
    code = receive(make_submission("lien-thong-khai-tu", random.Random(3), T)).dossier_code
    assert run_all(routing, code) == Status.STOPPED
    with session_scope() as s:
        row = s.execute(select(DossierRow)).scalar_one()
        states = dict(s.execute(select(StepRow.step_key, StepRow.status)).all())
    assert row.reason and states == {"khai_tu": "refused"}


def test_land_transfer_waits_for_payment_in_status_6_without_counting_it(routing, agency_sim):
    code = receive(make_submission("chuyen-nhuong-dat", random.Random(4), T)).dossier_code
    routing.begin(code)
    for key in ("tham_dinh", "xac_dinh_thue"):
        routing.run_step(code, key)
    seen = []
    real_submit = routing.client.submit

    def spy(req):  # type: ignore[no-untyped-def]
        with session_scope() as s:
            seen.append(s.execute(select(DossierRow.status)).scalar_one())
        return real_submit(req)

    routing.client.submit = spy  # type: ignore[method-assign]
    routing.run_step(code, "nop_thue")
    assert seen == [Status.AWAITING_PAYMENT]
    routing.run_step(code, "cap_giay")
    assert routing.finish(code, []) == Status.RETURNED
    with session_scope() as s:
        pay = s.execute(select(StepRow).where(StepRow.step_key == "nop_thue")).scalar_one()
    assert pay.verdict is None and pay.outputs["payment_receipt"]["so_tien_vnd"] > 0


def test_running_a_step_again_after_it_finished_changes_nothing(routing, agency_sim):
    _, sim = agency_sim
    code = receive(make_submission("lien-thong-khai-sinh", random.Random(5), T)).dossier_code
    run_all(routing, code)
    calls = len(sim._by_ticket)
    again = routing.run_step(code, "khai_sinh")
    assert again.state == "done" and len(sim._by_ticket) == calls


def test_late_agencies_get_late_verdicts_while_the_dossier_keeps_its_group_deadline(routing, agency_sim):
    _, sim = agency_sim
    sim.switches.mode = "realistic"
    sim.switches.late_share = 1.0
    code = receive(make_submission("lien-thong-khai-tu", random.Random(6),
                                   T, options={"procedures": 2})).dossier_code
    routing.begin(code)
    # The clock moves on: the simulator answers only once its (late) finishing time has passed.
    routing.sleep = lambda s: routing.clock.advance(timedelta(hours=6))  # type: ignore[attr-defined]
    outcomes = [routing.run_step(code, s.id) for s in routing.plan(code).steps]
    assert routing.finish(code, outcomes) == Status.RETURNED
    with session_scope() as s:
        verdicts = dict(s.execute(select(StepRow.step_key, StepRow.verdict)).all())
        row = s.execute(select(DossierRow)).scalar_one()
    assert verdicts == {"khai_tu": "late", "xoa_thuong_tru": "late"}
    # Each overran its own limit by hours; the dossier's 15-working-day limit still holds.
    assert not row.late and row.finished_at < row.due_at
