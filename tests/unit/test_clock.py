import time
from datetime import datetime, timedelta

import pytest

from lienthong.clock import FixedClock, SimulatedClock, SystemClock, clock_from_spec

START = datetime.fromisoformat("2026-04-29T16:00:00+07:00")


def test_simulated_clock_runs_speed_times_faster():
    clock = SimulatedClock(START, time.time() - 10, 3600)
    assert timedelta(hours=9, minutes=59) <= clock.now() - START <= timedelta(hours=10, minutes=5)


def test_office_hours_clock_skips_nights_weekends_and_holidays():
    # 10 office hours after Wed 29/4 16:00: 1 h that day, then 30/4-3/5 are off, 9 h on Mon 4/5.
    clock = SimulatedClock(START, time.time() - 10, 3600, working_hours=True)
    now = clock.now()
    assert now.date().isoformat() == "2026-05-04" and 16 <= now.hour <= 17


def test_before_its_anchor_the_clock_stands_at_its_start():
    assert SimulatedClock(START, time.time() + 60, 3600).now() == START
    assert SimulatedClock(START, time.time() + 60, 3600, working_hours=True).now() == START


def test_every_process_given_the_spec_sees_the_same_time():
    clock = SimulatedClock(START, time.time() - 5, 1000, working_hours=True)
    twin = clock_from_spec(clock.spec())
    assert isinstance(twin, SimulatedClock) and twin.working_hours
    assert abs((twin.now() - clock.now()).total_seconds()) < 60  # both read the real clock


def test_real_seconds_until_counts_only_office_time():
    clock = SimulatedClock(START, time.time() + 3600, 3600, working_hours=True)  # frozen at START
    # From Wed 16:00 to Mon 4/5 08:30: 1 h + 1 h of office time = 2 real seconds.
    assert clock.real_seconds_until(datetime.fromisoformat("2026-05-04T08:30:00+07:00")) == pytest.approx(2.0)


def test_fixed_clock_moves_only_when_told():
    clock = FixedClock(START)
    assert clock.now() == START
    assert clock.advance(timedelta(hours=2)) == START + timedelta(hours=2)


def test_system_clock_is_in_ho_chi_minh_time():
    assert SystemClock().now().utcoffset() == timedelta(hours=7)


def test_unknown_clock_spec_is_refused():
    with pytest.raises(ValueError):
        clock_from_spec("tomorrow")


def test_a_paused_clock_stops_for_every_process_sharing_it(tmp_path):
    clock = SimulatedClock(START, time.time() - 1, 3600, pause_file=tmp_path / "clock.json")
    twin = clock_from_spec(clock.spec())
    clock.set_paused(True)
    frozen = twin.now()
    time.sleep(0.3)
    # Frozen (to float precision of the shared anchor) while 0.3 s = 18 simulated minutes pass.
    assert abs((twin.now() - frozen).total_seconds()) < 1
    assert abs((clock.now() - frozen).total_seconds()) < 1
    clock.set_paused(False)
    time.sleep(0.3)
    assert (twin.now() - frozen).total_seconds() > 600
