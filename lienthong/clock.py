"""Clocks. Every deadline computation asks a clock, so tests fix time and the demo compresses it.

``LIENTHONG_CLOCK`` selects one: ``system`` (the default), ``fixed:<ISO>`` (tests), or
``sim:<ISO start>@<unix anchor>x<speed>``: simulated time that was ``start`` at the real Unix time
``anchor`` and runs ``speed`` times faster; with a trailing ``w`` only office hours of working days
pass (nights, weekends and holidays are skipped), so compressed days spend no real time idle.
Every process given the same string (flow runs, the agency simulator) sees the same time.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


class Clock(Protocol):
    def now(self) -> datetime: ...

    def real_seconds(self, simulated: timedelta) -> float:
        """How many real seconds a simulated duration takes on this clock."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(VN_TZ)

    def real_seconds(self, simulated: timedelta) -> float:
        return simulated.total_seconds()


class FixedClock:
    """A clock that moves only when told to (tests)."""

    def __init__(self, at: datetime) -> None:
        self._at = localize(at)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def set(self, at: datetime) -> None:
        with self._lock:
            self._at = localize(at)

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._at += delta
            return self._at

    def real_seconds(self, simulated: timedelta) -> float:
        return 0.0


class SimulatedClock:
    """Simulated time ``start + (real now - anchor) * speed``, in office time when ``working_hours``."""

    def __init__(self, start: datetime, anchor: float, speed: float, *, working_hours: bool = False) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start, self.anchor, self.speed = localize(start), anchor, speed
        self.working_hours = working_hours

    def now(self) -> datetime:
        # Before the anchor the clock stands still at its start: time never runs backwards.
        elapsed = max(0.0, (time.time() - self.anchor) * self.speed)
        if self.working_hours:
            from lienthong.calendar import get_calendar

            return get_calendar().add_working_seconds(self.start, elapsed)
        return self.start + timedelta(seconds=elapsed)

    def wait_for_start(self) -> None:
        time.sleep(max(0.0, self.anchor - time.time()))

    def real_seconds(self, simulated: timedelta) -> float:
        return simulated.total_seconds() / self.speed

    def real_seconds_until(self, at: datetime) -> float:
        """Real seconds until the clock shows ``at`` (0 when it already has)."""
        now = self.now()
        if at <= now:
            return 0.0
        if self.working_hours:
            from lienthong.calendar import get_calendar

            return get_calendar().working_seconds_between(now, at) / self.speed
        return (at - now).total_seconds() / self.speed

    def spec(self) -> str:
        return f"sim:{self.start.isoformat()}@{self.anchor:.3f}x{self.speed:g}" + ("w" if self.working_hours else "")


def localize(at: datetime) -> datetime:
    """Aware datetime in Asia/Ho_Chi_Minh; a naive one is taken to be local time already."""
    return at.replace(tzinfo=VN_TZ) if at.tzinfo is None else at.astimezone(VN_TZ)


def clock_from_spec(spec: str) -> Clock:
    if spec in ("", "system"):
        return SystemClock()
    if spec.startswith("fixed:"):  # a time that never moves, shared by every process (tests)
        return FixedClock(datetime.fromisoformat(spec[6:]))
    if spec.startswith("sim:"):
        body = spec[4:]
        start_s, _, rest = body.rpartition("@")
        anchor_s, _, speed_s = rest.partition("x")
        working = speed_s.endswith("w")
        return SimulatedClock(datetime.fromisoformat(start_s), float(anchor_s),
                              float(speed_s.rstrip("w")), working_hours=working)
    raise ValueError(f"unknown clock {spec!r}: use 'system' or 'sim:<ISO>@<anchor>x<speed>'")


_override: Clock | None = None


def get_clock() -> Clock:
    """The process's clock: an override set by tests, else the one the settings name."""
    if _override is not None:
        return _override
    from lienthong.settings import get_settings

    return clock_from_spec(get_settings().clock)


def set_clock(clock: Clock | None) -> None:
    global _override
    _override = clock
