from datetime import date, datetime, timedelta

import pytest

from lienthong.calendar import TimeLimit, Verdict, get_calendar
from lienthong.errors import CalendarError


def at(s: str) -> datetime:
    return datetime.fromisoformat(s + "+07:00")


@pytest.fixture
def cal():
    return get_calendar()


def test_dossier_received_before_1500_counts_from_the_day_of_receipt(cal):
    assert cal.day_zero(at("2026-03-10T14:59")) == date(2026, 3, 10)
    assert cal.due(at("2026-03-10T14:59"), 0) == at("2026-03-10T17:00")


def test_dossier_received_after_1500_starts_clock_next_working_day(cal):
    assert cal.day_zero(at("2026-03-10T15:00")) == date(2026, 3, 11)
    assert cal.due(at("2026-03-10T16:30"), 2) == at("2026-03-13T17:00")


def test_friday_afternoon_dossier_starts_on_monday(cal):
    assert cal.day_zero(at("2026-03-13T15:30")) == date(2026, 3, 16)


def test_weekend_reception_starts_next_working_day_whatever_the_hour(cal):
    assert cal.day_zero(at("2026-03-14T09:00")) == date(2026, 3, 16)


def test_deadline_skips_reunification_day_and_labour_day_2026(cal):
    # Received Wed 29/4 at 16:00: 30/4 and 1/5 are holidays, 2-3/5 the weekend: day 0 is Mon 4/5.
    assert cal.due(at("2026-04-29T16:00"), 3) == at("2026-05-07T17:00")


def test_tet_2026_is_off_from_14_to_22_february(cal):
    for d in range(14, 23):
        assert not cal.is_working_day(date(2026, 2, d))
    assert cal.is_working_day(date(2026, 2, 13)) and cal.is_working_day(date(2026, 2, 23))
    assert cal.due(at("2026-02-13T10:00"), 1) == at("2026-02-23T17:00")


def test_compensatory_day_off_for_hung_kings_2026_falling_on_sunday(cal):
    assert not cal.is_working_day(date(2026, 4, 27))


def test_make_up_saturday_is_a_working_day(cal):
    assert cal.is_working_day(date(2025, 4, 26))  # làm bù for Fri 2/5/2025
    assert not cal.is_working_day(date(2025, 5, 2))


def test_restart_after_supplement_counts_from_zero_at_the_complete_dossier(cal):
    first = cal.due(at("2026-03-02T09:00"), 5)
    restarted = cal.due(at("2026-03-05T10:00"), 5)
    assert first == at("2026-03-09T17:00")
    assert restarted == at("2026-03-12T17:00")


def test_a_year_without_a_holiday_table_is_refused_not_guessed(cal):
    with pytest.raises(CalendarError):
        cal.is_working_day(date(2031, 1, 2))


def test_times_are_returned_in_ho_chi_minh_with_offset(cal):
    due = cal.due(datetime.fromisoformat("2026-03-10T02:00:00+00:00"), 0)
    assert due.isoformat() == "2026-03-10T17:00:00+07:00"


def test_verdicts_early_on_time_and_late(cal):
    due = at("2026-03-12T17:00")
    assert cal.verdict(due, at("2026-03-11T16:00")) == Verdict.EARLY
    assert cal.verdict(due, at("2026-03-12T16:59")) == Verdict.ON_TIME
    assert cal.verdict(due, at("2026-03-12T17:01")) == Verdict.LATE


def test_working_seconds_count_office_hours_only(cal):
    # Mon 16:00 -> Tue 09:30: 1 h on Monday + 2 h on Tuesday (office opens 07:30).
    assert cal.working_seconds_between(at("2026-03-09T16:00"), at("2026-03-10T09:30")) == 3 * 3600


def test_add_working_seconds_jumps_over_holidays(cal):
    assert cal.add_working_seconds(at("2026-04-29T16:00"), 2 * 3600) == at("2026-05-04T08:30")


def test_share_left_falls_as_the_deadline_approaches(cal):
    start, due = at("2026-03-09T08:00"), at("2026-03-11T17:00")
    assert cal.share_left(start, due, start) == pytest.approx(1.0, abs=0.02)
    assert cal.share_left(start, due, at("2026-03-11T12:00")) < 0.25
    assert cal.share_left(start, due, due + timedelta(hours=1)) == 0.0


def test_latest_reappointment_is_close_of_the_working_day_before_the_deadline(cal):
    assert cal.latest_reappointment(at("2026-05-04T17:00")) == at("2026-04-29T17:00")


@pytest.mark.parametrize("raw,days", [("same_day", 0), ("same day", 0), (3, 3), ({"working_days": 5}, 5)])
def test_time_limits_parse_from_catalog_forms(raw, days):
    assert TimeLimit.parse(raw).working_days == days


@pytest.mark.parametrize("raw", ["three", -1, True, 2.5])
def test_bad_time_limits_are_refused(raw):
    with pytest.raises(CalendarError):
        TimeLimit.parse(raw)
