"""Routing with an asynchronous agency, without Prefect: the step is submitted with a callback URL
and waits; the callback closes it once, checked against the catalog; approval holds it."""

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from lienthong.agencies.client import HttpAgencyClient
from lienthong.clock import FixedClock, set_clock
from lienthong.db import session_scope
from lienthong.db.models import StepRow
from lienthong.dossier import Status
from lienthong.reception import receive
from lienthong.routing import APPROVAL, AgencyResultInvalid, ApprovalInvalid, Decision, Routing
from lienthong.sweep import OPEN_STEP_STATUSES
from samples.dossiers import make_submission

pytestmark = pytest.mark.integration
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")


@pytest.fixture
def make_routing(db, agency_sim):
    url, sim = agency_sim
    sim.switches.callback_delay_seconds = 3600  # no callback is sent by itself during these tests
    clock = FixedClock(T + timedelta(hours=1))
    set_clock(clock)

    def make(**kw):  # type: ignore[no-untyped-def]
        return Routing(client=HttpAgencyClient(url), clock=clock, poll_seconds=0.0, sleep=lambda s: None,
                       callback_base_url="http://gateway.example/", **kw)

    yield make
    set_clock(None)


def step(key: str) -> StepRow:
    with session_scope() as s:
        return s.execute(select(StepRow).where(StepRow.step_key == key)).scalar_one()


def test_an_async_step_waits_with_its_deadline_running_then_the_callback_closes_it_once(make_routing, agency_sim):
    _, sim = agency_sim
    routing = make_routing(modes={"UBND_XA": "async"})
    code = receive(make_submission("lien-thong-khai-sinh", random.Random(1), T)).dossier_code
    routing.begin(code)
    waiting = routing.run_step(code, "khai_sinh")
    held = step("khai_sinh")
    assert waiting.state == "waiting" and waiting.ref == held.ref
    assert held.status in OPEN_STEP_STATUSES and held.ticket and held.due_at is not None
    entry = next(e for e in sim._by_ticket.values() if e.request.step_key == "khai_sinh")
    assert entry.request.callback_url == f"http://gateway.example/v1/steps/{held.ref}/result"
    # A re-run (resumed flow) does not ask the agency again.
    assert routing.run_step(code, "khai_sinh").state == "waiting" and len(sim._by_ticket) == 1
    ticket = sim.poll(held.ticket)
    assert ticket is not None and ticket.state == "pending"  # held until the callback is due
    sim.release()

    body = {"state": "done", "ticket": held.ticket, "finished_at": (T + timedelta(hours=3)).isoformat(),
            "result": dict(entry.result)}
    done = routing.close_from_result(code, "khai_sinh", body)
    closed = step("khai_sinh")
    assert done.state == "done" and closed.status == "done" and closed.due_at == held.due_at
    assert closed.finished_at == T + timedelta(hours=3) and closed.verdict == "on_time"
    assert closed.outputs[APPROVAL]["decisions"][0]["automatic"] is True  # policy auto: recorded as such
    # A late or repeated callback (here: a refusal) changes nothing.
    again = routing.close_from_result(code, "khai_sinh", {"state": "refused", "reason": "muộn"})
    assert again.state == "done" and step("khai_sinh").outputs == closed.outputs


@pytest.mark.parametrize("body,problem", [
    ({"state": "done", "result": {"personal_id": "079226000001"}}, "thiếu dữ liệu kết quả: birth_extract"),
    ({"state": "done", "result": {"personal_id": "1", "birth_extract": {}, "bogus": 1}}, "ngoài danh mục"),
    ({"state": "refused", "result": {}}, "không nêu lý do"),
    ({"state": "maybe"}, "trạng thái không hợp lệ"),
])
def test_a_result_the_catalog_does_not_allow_is_refused_and_the_step_stays_open(make_routing, body, problem):
    routing = make_routing(modes={"UBND_XA": "async"})
    code = receive(make_submission("lien-thong-khai-sinh", random.Random(2), T)).dossier_code
    routing.begin(code)
    routing.run_step(code, "khai_sinh")
    with pytest.raises(AgencyResultInvalid) as err:
        routing.close_from_result(code, "khai_sinh", body)
    assert problem in err.value.message_vi and "UBND_XA" in err.value.message_vi
    assert step("khai_sinh").status in OPEN_STEP_STATUSES


def test_an_agency_refusal_by_callback_stops_the_dossier_without_approval(make_routing):
    routing = make_routing(modes={"UBND_XA": "async"}, approval_policy="operator")
    code = receive(make_submission("lien-thong-khai-sinh", random.Random(3), T)).dossier_code
    routing.begin(code)
    routing.run_step(code, "khai_sinh")
    out = routing.close_from_result(code, "khai_sinh", {"state": "refused", "reason": "Giấy tờ không hợp lệ."})
    assert out.state == "refused" and out.reason == "Giấy tờ không hợp lệ."
    assert routing.finish(code, [out]) == Status.STOPPED


def test_operator_policy_holds_the_result_for_a_decision_recorded_with_the_officer(make_routing):
    routing = make_routing(approval_policy="operator")
    code = receive(make_submission("lien-thong-khai-sinh", random.Random(4), T)).dossier_code
    routing.begin(code)
    held = routing.run_step(code, "khai_sinh")  # a polling agency: its result is there at once
    assert held.state == "approval" and set(held.outputs) == {"personal_id", "birth_extract"}
    assert step("khai_sinh").status in OPEN_STEP_STATUSES  # the signature is part of the step
    assert routing.run_step(code, "khai_sinh").state == "approval"  # a re-run finds it held
    with pytest.raises(ApprovalInvalid):
        routing.decide(code, "khai_sinh", Decision("refuse", "Trần Thị B", key="approval-x"))
    supplement = routing.decide(code, "khai_sinh", Decision("supplement", "Trần Thị B", reason="Thiếu giấy tờ",
                                                            key="approval-x"))
    assert supplement.state == "approval"
    assert routing.note_supplement_round(code, "khai_sinh", "approval-x") == 1
    assert routing.note_supplement_round(code, "khai_sinh", "approval-x") == 1  # chosen once
    done = routing.decide(code, "khai_sinh", Decision("approve", "Trần Thị B", note="đã ký", key="approval-x-2"))
    assert done.state == "done" and "_approval" not in done.outputs
    record = routing.approval_record(code, "khai_sinh")
    assert [d["decision"] for d in record["decisions"]] == ["supplement", "approve"]
    assert record["decisions"][1]["officer"] == "Trần Thị B" and not record["decisions"][1]["automatic"]
    # The same answer replayed (a resumed run) is not recorded twice.
    routing.decide(code, "khai_sinh", Decision("approve", "Trần Thị B", key="approval-x-2"))
    assert len(routing.approval_record(code, "khai_sinh")["decisions"]) == 2
