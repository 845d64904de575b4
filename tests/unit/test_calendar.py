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


def test_a_year_without_a_notice_gets_the_statutory_holidays_marked_provisional(cal):
    # No plan for 2031 is recorded: New Year's Day is still off, the year is provisional, and the
    # warning says so in both languages; nothing is refused.
    assert not cal.is_working_day(date(2031, 1, 1))
    assert cal.is_working_day(date(2031, 1, 2))
    year = cal.year(2031)
    assert year.provisional and not year.notices
    (warning,) = cal.warnings(date(2031, 3, 1), date(2031, 4, 1))
    assert "tạm tính" in warning and "provisional" in warning
    assert cal.year(2026).warning is None


def test_vietnam_culture_day_moves_a_three_day_deadline_to_27_november_2026(cal):
    assert not cal.is_working_day(date(2026, 11, 24))
    assert cal.due(at("2026-11-23T10:00"), 3) == at("2026-11-27T17:00")


def test_new_year_2026_swap_friday_2_january_off_saturday_10_january_worked(cal):
    assert not cal.is_working_day(date(2026, 1, 2))
    assert cal.is_working_day(date(2026, 1, 10))
    notice = next(n for n in cal.year(2026).notices if date(2026, 1, 2) in n.days_off)
    assert notice.number == "12729/VPCP-KGVX"
    assert cal.due(at("2025-12-31T10:00"), 1) == at("2026-01-05T17:00")


def test_national_day_2026_swap_monday_31_august_off_saturday_22_august_worked(cal):
    assert not cal.is_working_day(date(2026, 8, 31))
    assert cal.is_working_day(date(2026, 8, 22))
    for d in (1, 2):
        assert not cal.is_working_day(date(2026, 9, d))
    # Received Fri 28/8 at 10:00: 31/8-2/9 are off, so one working day is Thu 3/9.
    assert cal.due(at("2026-08-28T10:00"), 1) == at("2026-09-03T17:00")


def test_tet_2027_gives_at_least_five_weekdays_off_and_is_provisional(cal):
    tet = [date(2027, 2, d) for d in range(1, 15)]
    off_weekdays = [d for d in tet if d.weekday() < 5 and not cal.is_working_day(d)]
    assert len(off_weekdays) >= 5
    assert cal.year(2027).provisional


@pytest.mark.parametrize("year", range(2018, 2027))
def test_every_year_from_2018_has_its_statutory_holidays_and_a_recorded_plan(cal, year):
    assert not cal.is_working_day(date(year, 1, 1)) or date(year, 1, 1).weekday() >= 5
    assert cal.holiday_name(date(year, 4, 30)) is not None
    assert cal.holiday_name(date(year, 9, 2)) is not None
    assert not cal.year(year).provisional


def test_a_notice_can_move_a_day_of_the_next_year(cal):
    # 6519/VPCP-KGVX: 31/12/2018 off, Saturday 05/01/2019 worked.
    assert not cal.is_working_day(date(2018, 12, 31))
    assert cal.is_working_day(date(2019, 1, 5))


def test_civil_code_period_ending_on_a_day_off_ends_on_the_next_working_day(cal):
    assert cal.end_of_period(date(2026, 11, 24)) == date(2026, 11, 25)
    assert cal.end_of_period(date(2026, 11, 28)) == date(2026, 11, 30)
    assert cal.end_of_period(date(2026, 11, 27)) == date(2026, 11, 27)


def test_an_unconfirmed_notice_without_a_reason_is_refused(tmp_path):
    from lienthong.calendar import load_notices

    f = tmp_path / "n.yaml"
    f.write_text("years:\n  2030:\n    notices:\n      - {number: X, confirmed: false,"
                 " days_off: [{date: 2030-01-02, name: x}]}\n", encoding="utf-8")
    with pytest.raises(CalendarError, match="reason"):
        load_notices(f)


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
