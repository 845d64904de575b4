"""Clocks. Every deadline computation asks a clock, so tests fix time and the demo compresses it.

``LIENTHONG_CLOCK`` selects one: ``system`` (the default), ``fixed:<ISO>`` (tests), or
``sim:<ISO start>@<unix anchor>x<speed>``: simulated time that was ``start`` at the real Unix time
``anchor`` and runs ``speed`` times faster; with a trailing ``w`` only office hours of working days
pass (nights, weekends and holidays are skipped), so compressed days spend no real time idle.
Every process given the same string (flow runs, the agency simulator) sees the same time.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from lienthong.localtime import VN_TZ as VN_TZ
from lienthong.localtime import localize as localize


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
    """Simulated time ``start + (real now - anchor - paused) * speed``, in office time when
    ``working_hours``. With a ``pause_file``, every process sharing the clock stops together while
    the file says so (the demo stops time while dossiers are still in intake, which takes real
    seconds that compressed time would turn into days)."""

    def __init__(self, start: datetime, anchor: float, speed: float, *, working_hours: bool = False,
                 pause_file: Path | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start, self.anchor, self.speed = localize(start), anchor, speed
        self.working_hours, self.pause_file = working_hours, pause_file
        self._pause_cache: tuple[float, float, float | None] = (0.0, 0.0, None)

    def _paused(self, real_now: float) -> float:
        if self.pause_file is None:
            return 0.0
        read_at, total, since = self._pause_cache
        if real_now - read_at > 0.1:
            try:
                state = json.loads(self.pause_file.read_text())
                total, since = float(state.get("total", 0.0)), state.get("since")
            except (OSError, ValueError):
                total, since = 0.0, None
            self._pause_cache = (real_now, total, since)
        return total + (real_now - float(since) if since is not None else 0.0)

    def now(self) -> datetime:
        real_now = time.time()
        # Before the anchor the clock stands still at its start: time never runs backwards.
        elapsed = max(0.0, (real_now - self.anchor - self._paused(real_now)) * self.speed)
        if self.working_hours:
            from lienthong.calendar import get_calendar

            return get_calendar().add_working_seconds(self.start, elapsed)
        return self.start + timedelta(seconds=elapsed)

    def wait_for_start(self) -> None:
        time.sleep(max(0.0, self.anchor - time.time()))

    def real_seconds(self, simulated: timedelta) -> float:
        return simulated.total_seconds() / self.speed

    def real_seconds_until(self, at: datetime) -> float:
        """Real seconds until the clock shows ``at`` (0 when it already has), if it is not paused."""
        now = self.now()
        if at <= now:
            return 0.0
        if self.working_hours:
            from lienthong.calendar import get_calendar

            return get_calendar().working_seconds_between(now, at) / self.speed
        return (at - now).total_seconds() / self.speed

    def set_paused(self, paused: bool) -> None:
        """Stop or restart time for every process sharing this clock (needs a ``pause_file``)."""
        if self.pause_file is None:
            raise ValueError("this clock has no pause file")
        real_now = time.time()
        try:
            state = json.loads(self.pause_file.read_text())
        except (OSError, ValueError):
            state = {"total": 0.0, "since": None}
        if paused and state.get("since") is None:
            state["since"] = real_now
        elif not paused and state.get("since") is not None:
            state["total"] = float(state.get("total", 0.0)) + real_now - float(state["since"])
            state["since"] = None
        else:
            return
        tmp = self.pause_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.pause_file)  # atomic: readers see the old or the new state
        self._pause_cache = (0.0, 0.0, None)

    def spec(self) -> str:
        spec = f"sim:{self.start.isoformat()}@{self.anchor:.6f}x{self.speed:g}" + ("w" if self.working_hours else "")
        return spec + (f"|{self.pause_file}" if self.pause_file else "")


def clock_from_spec(spec: str) -> Clock:
    if spec in ("", "system"):
        return SystemClock()
    if spec.startswith("fixed:"):  # a time that never moves, shared by every process (tests)
        return FixedClock(datetime.fromisoformat(spec[6:]))
    if spec.startswith("sim:"):
        body, _, pause = spec[4:].partition("|")
        start_s, _, rest = body.rpartition("@")
        anchor_s, _, speed_s = rest.partition("x")
        working = speed_s.endswith("w")
        return SimulatedClock(datetime.fromisoformat(start_s), float(anchor_s),
                              float(speed_s.rstrip("w")), working_hours=working,
                              pause_file=Path(pause) if pause else None)
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
