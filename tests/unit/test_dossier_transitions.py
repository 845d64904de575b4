from datetime import datetime, timedelta

import pytest

from lienthong.calendar import TimeLimit, get_calendar
from lienthong.dossier import TRANSITIONS, Dossier, Status
from lienthong.errors import ReappointmentRefused, SupplementAlreadyRequested, TransitionRefused

T0 = datetime.fromisoformat("2026-03-09T09:00:00+07:00")  # a Monday
CAL = get_calendar()
EVENTS = sorted({e for e, _ in TRANSITIONS})


def dossier(status: Status = Status.SUBMITTED, days: int = 3) -> Dossier:
    d = Dossier("000.00.06.H56-260309-0001", "p", "1", TimeLimit(days), T0)
    d.status = status
    return d


def walk(*events: str) -> Dossier:
    d = dossier()
    for i, ev in enumerate(events):
        d.apply(ev, T0 + timedelta(hours=i), CAL, reason="lý do", items=["Giấy chứng sinh"])  # type: ignore[arg-type]
    return d


@pytest.mark.parametrize("event,source", sorted(TRANSITIONS))
def test_every_allowed_transition_is_applied(event, source):
    d = dossier(source)
    if event in ("supplement_received", "supplement_expired"):
        d.supplements.append(__import__("lienthong.dossier", fromlist=["x"]).SupplementRequest(
            "processing", T0, ["x"]))
    change = d.apply(event, T0, CAL, reason="lý do")
    assert change.from_status == source and d.status == change.to_status
    assert d.history[-1] is change


REFUSED = [(e, s) for e in EVENTS for s in Status if (e, s) not in TRANSITIONS]


@pytest.mark.parametrize("event,source", REFUSED)
def test_every_other_transition_is_refused_with_a_typed_error(event, source):
    d = dossier(source)
    with pytest.raises(TransitionRefused) as exc:
        d.apply(event, T0, CAL, reason="lý do")
    assert d.status == source and not d.history
    assert exc.value.message_vi


def test_terminal_states_allow_nothing():
    for s in (Status.REFUSED_AT_RECEPTION, Status.WITHDRAWN, Status.STOPPED, Status.RETURNED):
        assert dossier(s).allowed_events() == []


def test_reception_starts_the_clock_and_sets_the_appointment():
    d = walk("receive")
    assert d.status == Status.ACCEPTED and d.due_at == CAL.due(T0, 3)


def test_only_one_supplement_request_per_phase():
    d = walk("receive", "request_supplement")
    assert d.status == Status.SUPPLEMENT_REQUESTED and d.clock_paused_at is not None
    d.apply("supplement_received", T0 + timedelta(days=1), CAL)
    assert d.status == Status.ACCEPTED
    with pytest.raises(SupplementAlreadyRequested):
        d.apply("request_supplement", T0 + timedelta(days=1, hours=1), CAL, reason="thiếu giấy tờ")


def test_a_supplement_during_processing_is_a_new_phase_and_returns_to_processing():
    d = walk("receive", "request_supplement", "supplement_received", "start_processing",
             "request_supplement")
    assert [s.phase for s in d.supplements] == ["reception", "processing"]
    d.apply("supplement_received", T0 + timedelta(days=2), CAL)
    assert d.status == Status.PROCESSING
    with pytest.raises(SupplementAlreadyRequested):
        d.apply("request_supplement", T0 + timedelta(days=3), CAL, reason="x")


def test_supplement_restarts_the_clock_from_zero_when_complete():
    d = walk("receive", "start_processing", "request_supplement")
    back = datetime.fromisoformat("2026-03-16T10:00:00+07:00")
    d.apply("supplement_received", back, CAL)
    assert d.clock_started_at == back and d.due_at == CAL.due(back, 3)


def test_expired_supplement_in_processing_stops_the_dossier():
    d = walk("receive", "start_processing", "request_supplement", "supplement_expired")
    assert d.status == Status.STOPPED and d.finished_at is not None


def test_refusal_withdrawal_and_supplement_need_a_reason():
    d = walk("receive", "start_processing")
    for ev in ("stop", "withdraw", "request_supplement"):
        with pytest.raises(TransitionRefused, match="reason"):
            d.apply(ev, T0, CAL)  # type: ignore[arg-type]


def test_refusal_records_its_reason_and_ends_processing():
    d = walk("receive", "start_processing")
    d.apply("stop", T0 + timedelta(hours=5), CAL, reason="Không đủ điều kiện")
    assert d.status == Status.STOPPED and d.reason == "Không đủ điều kiện" and d.finished_at


def test_result_issued_and_result_delivered_are_distinct():
    d = walk("receive", "start_processing", "resolve")
    assert d.status == Status.RESOLVED and d.finished_at and d.delivered_at is None
    d.apply("deliver", T0 + timedelta(days=1), CAL)
    assert d.status == Status.RETURNED and d.delivered_at == T0 + timedelta(days=1)


def test_payment_wait_does_not_count_against_the_deadline():
    d = walk("receive", "start_processing")
    due = d.due_at
    paused = datetime.fromisoformat("2026-03-10T09:00:00+07:00")
    d.apply("request_payment", paused, CAL)
    d.apply("payment_received", paused + timedelta(days=1), CAL)  # one whole working day later
    assert d.due_at == CAL.add_working_seconds(paused + timedelta(days=1),
                                               CAL.working_seconds_between(paused, due))
    assert d.due_at > due


def test_withdrawal_from_any_open_state():
    for s in (Status.SUBMITTED, Status.ACCEPTED, Status.PROCESSING, Status.SUPPLEMENT_REQUESTED,
              Status.AWAITING_PAYMENT):
        d = dossier(s)
        d.apply("withdraw", T0, CAL, reason="Công dân rút hồ sơ")
        assert d.status == Status.WITHDRAWN


def test_one_reappointment_at_least_one_working_day_before_the_deadline():
    d = walk("receive", "start_processing")  # due Thu 12/3 17:00
    late_by = datetime.fromisoformat("2026-03-11T17:00:00+07:00")
    new_due = d.due_at + timedelta(days=2)
    with pytest.raises(ReappointmentRefused, match="at least one working day"):
        d.reappoint(new_due, "chờ xác minh", late_by + timedelta(minutes=1), "UBND_XA", CAL)
    d.reappoint(new_due, "chờ xác minh", late_by, "UBND_XA", CAL)
    assert d.due_at == new_due and d.reappointment.original_due < new_due
    with pytest.raises(ReappointmentRefused, match="once"):
        d.reappoint(new_due + timedelta(days=1), "lần hai", late_by, "UBND_XA", CAL)


def test_supplement_wait_is_measured_for_the_service_index():
    d = walk("receive", "start_processing", "request_supplement")
    d.apply("supplement_received", T0 + timedelta(hours=27), CAL)
    assert d.supplement_wait(T0 + timedelta(days=5)) == timedelta(hours=25)
