"""Working days (ngày làm việc), the 15:00 cut-off, deadlines, clock stops and verdicts.

The convention (``config/calendar.yaml``, every number configurable): a dossier received before the
cut-off counts from its day of receipt as day 0, at or after the cut-off from the next working day;
a limit of N working days is due at close of business of the N-th working day after day 0; a
same-day limit is due at close of business of day 0.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from lienthong.errors import CalendarError
from lienthong.localtime import localize

_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class Verdict(enum.StrEnum):
    """A step's result against its own limit (Form 05): trước hạn / đúng hạn / quá hạn."""

    EARLY = "early"
    ON_TIME = "on_time"
    LATE = "late"

    @property
    def vi(self) -> str:
        return {"early": "Trước hạn", "on_time": "Đúng hạn", "late": "Quá hạn"}[self.value]


@dataclass(frozen=True)
class TimeLimit:
    """A statutory limit: ``working_days`` whole working days, or 0 for "same day" (trong ngày)."""

    working_days: int

    def __post_init__(self) -> None:
        if self.working_days < 0:
            raise CalendarError(f"a time limit cannot be negative ({self.working_days})")

    @property
    def same_day(self) -> bool:
        return self.working_days == 0

    @classmethod
    def parse(cls, value: object) -> TimeLimit:
        """``"same_day"`` / ``"same day"`` / ``0`` / ``3`` / ``{"working_days": 3}``."""
        if isinstance(value, TimeLimit):
            return value
        if isinstance(value, str) and value.strip().replace(" ", "_").lower() in ("same_day",):
            return cls(0)
        if isinstance(value, dict) and "working_days" in value:
            value = value["working_days"]
        if isinstance(value, bool) or not isinstance(value, int):
            raise CalendarError(
                f"time limit {value!r} is neither a number of working days nor 'same_day'"
            )
        return cls(value)

    def __str__(self) -> str:
        return "same day" if self.same_day else f"{self.working_days} working days"


@dataclass(frozen=True)
class Notice:
    """A government notice that moves days for civil servants in one year (a swap, a make-up
    Saturday): data on top of the statutory holidays, each traceable to its number."""

    year: int
    number: str | None
    issued: date | None
    title: str
    days_off: dict[date, str]
    working_days: dict[date, str]
    confirmed: bool = True
    reason: str = ""


@dataclass(frozen=True)
class YearCalendar:
    """One year's days off and make-up working days, and where they come from."""

    year: int
    holidays: dict[date, str]
    working_days: dict[date, str]
    notices: tuple[Notice, ...] = ()
    provisional: bool = True
    note: str = ""

    @property
    def warning(self) -> str | None:
        """One line (Vietnamese, then English) when the year has no government notice recorded."""
        if not self.provisional:
            return None
        return (f"Lịch năm {self.year} là tạm tính: chỉ có ngày nghỉ lễ theo Bộ luật Lao động, chưa có "
                f"thông báo hoán đổi ngày làm việc của Chính phủ. / The {self.year} calendar is "
                f"provisional: statutory holidays only, no government notice recorded yet.")


def statutory_holidays(year: int) -> dict[date, str]:
    """Statutory public holidays of Vietnam (Labour Code 2012 Art. 115, 2019 Art. 112, with the
    compensatory days of Art. 111(3)) as the ``holidays`` package computes them, in Vietnamese.

    The package also carries a few government swap days (its "special" holidays); those are left
    out here: swaps are data in ``config/holidays``, each with the notice that made it."""
    import holidays as holidays_pkg

    table = holidays_pkg.country_holidays("VN", years=year, language="vi")
    swap_label = "Ngày nghỉ (thay cho ngày"  # the package's label of a swap day
    out: dict[date, str] = {}
    for d, name in sorted(table.items()):
        kept = [n for n in name.split("; ") if not n.startswith(swap_label)]
        if kept:
            out[d] = "; ".join(kept)
    return out


@dataclass
class WorkingCalendar:
    """Working days for any year: statutory holidays, then the yearly notices on top.

    ``holidays`` and ``extra_working_days`` are explicit overrides (tests, a province's own days);
    every other year is built on demand from :func:`statutory_holidays` and ``notices``."""

    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Ho_Chi_Minh"))
    weekend: frozenset[int] = frozenset({5, 6})
    holidays: dict[date, str] = field(default_factory=dict)
    extra_working_days: dict[date, str] = field(default_factory=dict)
    cutoff: time = time(15, 0)
    opens: time = time(7, 30)
    closes: time = time(17, 0)
    reappointment_min_days_before: int = 1
    notices: list[Notice] = field(default_factory=list)
    # Years whose government plan is recorded (notices, or a plan with no swap): not provisional.
    planned_years: dict[int, str] = field(default_factory=dict)
    statutory: bool = True
    _years: dict[int, YearCalendar] = field(default_factory=dict, repr=False, compare=False)

    # --- years -------------------------------------------------------------------------------

    def year(self, year: int) -> YearCalendar:
        """The calendar of one year (built once, then cached)."""
        cached = self._years.get(year)
        if cached is not None:
            return cached
        days_off = statutory_holidays(year) if self.statutory else {}
        working: dict[date, str] = {}
        # A notice may move a day of the next year (31/12/2018 off, Saturday 05/01/2019 worked).
        notices = tuple(n for n in self.notices
                        if n.year == year or any(d.year == year for d in (*n.days_off, *n.working_days)))
        for n in notices:
            for d, name in n.working_days.items():
                if d.year == year:
                    days_off.pop(d, None)
                    working[d] = name
            days_off.update({d: name for d, name in n.days_off.items() if d.year == year})
        built = YearCalendar(year, days_off, working, notices,
                             provisional=year not in self.planned_years and not any(n.year == year for n in notices),
                             note=self.planned_years.get(year, ""))
        self._years[year] = built
        return built

    def warnings(self, first: date, last: date) -> list[str]:
        """The provisional-year warnings of every year from ``first`` to ``last``."""
        out = []
        for y in range(min(first.year, last.year), max(first.year, last.year) + 1):
            w = self.year(y).warning
            if w:
                out.append(w)
        return out

    def holiday_name(self, d: date) -> str | None:
        if d in self.holidays:
            return self.holidays[d]
        return self.year(d.year).holidays.get(d)

    # --- days --------------------------------------------------------------------------------

    def is_working_day(self, d: date) -> bool:
        if d in self.holidays:
            return False
        if d in self.extra_working_days:
            return True
        table = self.year(d.year)
        if d in table.holidays:
            return False
        return d in table.working_days or d.weekday() not in self.weekend

    def next_working_day(self, d: date) -> date:
        d += timedelta(days=1)
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d

    def previous_working_day(self, d: date) -> date:
        d -= timedelta(days=1)
        while not self.is_working_day(d):
            d -= timedelta(days=1)
        return d

    def add_working_days(self, d: date, n: int) -> date:
        """The n-th working day after ``d`` (``d`` itself when n is 0)."""
        for _ in range(n):
            d = self.next_working_day(d)
        return d

    def working_days_between(self, a: date, b: date) -> int:
        """Working days in (a, b]: how many working days after a the day b is."""
        if b < a:
            return -self.working_days_between(b, a)
        count, d = 0, a
        while d < b:
            d += timedelta(days=1)
            if self.is_working_day(d):
                count += 1
        return count

    def end_of_period(self, last_day: date) -> date:
        """The day a period counted in calendar days really ends: when its last day is a day off
        (weekend or holiday), the next working day (Civil Code 2015 Art. 148(5))."""
        return last_day if self.is_working_day(last_day) else self.next_working_day(last_day)

    # --- deadlines ---------------------------------------------------------------------------

    def day_zero(self, received_at: datetime) -> date:
        """The day counting starts from: the day of receipt before the cut-off, else the next working day."""
        local = self.local(received_at)
        d = local.date()
        if self.is_working_day(d) and local.time() < self.cutoff:
            return d
        return self.next_working_day(d)

    def due(self, received_at: datetime, limit: TimeLimit | int | str) -> datetime:
        """Due time of a limit counted from ``received_at`` (or from a restart after supplement)."""
        limit = TimeLimit.parse(limit)
        day = self.add_working_days(self.day_zero(received_at), limit.working_days)
        return datetime.combine(day, self.closes, tzinfo=self.tz)

    def local(self, at: datetime) -> datetime:
        if at.tzinfo is None:
            return at.replace(tzinfo=self.tz)
        return at.astimezone(self.tz)

    # --- working time ------------------------------------------------------------------------

    def _office_seconds(self) -> float:
        return (
            datetime.combine(date.min, self.closes) - datetime.combine(date.min, self.opens)
        ).total_seconds()

    def working_seconds_between(self, a: datetime, b: datetime) -> float:
        """Office-hours seconds between two instants (0 when b <= a)."""
        a, b = self.local(a), self.local(b)
        if b <= a:
            return 0.0
        total, d = 0.0, a.date()
        while d <= b.date():
            if self.is_working_day(d):
                start = max(a, datetime.combine(d, self.opens, tzinfo=self.tz))
                end = min(b, datetime.combine(d, self.closes, tzinfo=self.tz))
                if end > start:
                    total += (end - start).total_seconds()
            d += timedelta(days=1)
        return total

    def add_working_seconds(self, at: datetime, seconds: float) -> datetime:
        """The instant ``seconds`` of office time after ``at`` (used to shift a paused deadline)."""
        cur = self.local(at)
        remaining = seconds
        while True:
            d = cur.date()
            if self.is_working_day(d):
                start = max(cur, datetime.combine(d, self.opens, tzinfo=self.tz))
                end = datetime.combine(d, self.closes, tzinfo=self.tz)
                if end > start:
                    available = (end - start).total_seconds()
                    if remaining <= available:
                        return start + timedelta(seconds=remaining)
                    remaining -= available
            cur = datetime.combine(d + timedelta(days=1), time(0), tzinfo=self.tz)

    def share_left(self, started_at: datetime, due_at: datetime, now: datetime) -> float:
        """Share of the working time between start and due that is still left at ``now`` (0..1)."""
        whole = self.working_seconds_between(started_at, due_at)
        if whole <= 0:
            return 0.0 if now >= due_at else 1.0
        return max(0.0, min(1.0, self.working_seconds_between(now, due_at) / whole))

    def verdict(self, due_at: datetime, finished_at: datetime) -> Verdict:
        finished = self.local(finished_at)
        if finished > self.local(due_at):
            return Verdict.LATE
        if finished.date() < self.local(due_at).date():
            return Verdict.EARLY
        return Verdict.ON_TIME

    def latest_reappointment(self, due_at: datetime) -> datetime:
        """The last moment a re-appointment (Form 04) may be recorded: close of the working day(s) before."""
        day = self.local(due_at).date()
        for _ in range(self.reappointment_min_days_before):
            day = self.previous_working_day(day)
        return datetime.combine(day, self.closes, tzinfo=self.tz)


def _parse_time(value: str) -> time:
    h, m = value.split(":")
    return time(int(h), int(m))


def _expand(entry: dict[str, Any]) -> list[date]:
    if "date" in entry:
        return [entry["date"]]
    start, end = entry["from"], entry["to"]
    if end < start:
        raise CalendarError(f"holiday range {start}..{end} ends before it starts")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _days(entries: list[dict[str, Any]] | None, year: int, where: str) -> dict[date, str]:
    out: dict[date, str] = {}
    for entry in entries or []:
        for d in _expand(entry):
            if not isinstance(d, date):
                raise CalendarError(f"{where}: {d!r} is not a date (write YYYY-MM-DD)")
            out[d] = str(entry["name"])
    return out


def load_notices(path: Path) -> tuple[list[Notice], dict[int, str]]:
    """The government's yearly notices (swaps, make-up Saturdays) and the years whose plan is
    recorded. Each notice names its number; an unconfirmed one says why."""
    with path.open(encoding="utf-8") as fh:
        table = yaml.safe_load(fh) or {}
    notices: list[Notice] = []
    planned: dict[int, str] = {}
    for year, spec in (table.get("years") or {}).items():
        year = int(year)
        spec = spec or {}
        where = f"{path.name} {year}"
        if spec.get("plan"):
            planned[year] = str(spec["plan"])
        for raw in spec.get("notices") or []:
            n = Notice(
                year=year,
                number=raw.get("number"),
                issued=raw.get("issued"),
                title=str(raw.get("title", "")),
                days_off=_days(raw.get("days_off"), year, where),
                working_days=_days(raw.get("working_days"), year, where),
                confirmed=bool(raw.get("confirmed", True)),
                reason=str(raw.get("reason", "")),
            )
            if not n.confirmed and not n.reason:
                raise CalendarError(f"{where}: notice {n.number or n.title!r} is unconfirmed "
                                    "without a reason (add `reason:`)")
            notices.append(n)
    return notices, planned


def calendar_from_config(config_dir: Path) -> WorkingCalendar:
    with (config_dir / "calendar.yaml").open(encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    notices: list[Notice] = []
    planned: dict[int, str] = {}
    for rel in cfg.get("notice_files", []):
        more, plans = load_notices(config_dir / rel)
        notices.extend(more)
        planned.update(plans)
    return WorkingCalendar(
        tz=ZoneInfo(cfg.get("timezone", "Asia/Ho_Chi_Minh")),
        weekend=frozenset(_WEEKDAYS.index(w) for w in cfg.get("weekend", ["saturday", "sunday"])),
        cutoff=_parse_time(cfg.get("cutoff", "15:00")),
        opens=_parse_time(cfg.get("opens", "07:30")),
        closes=_parse_time(cfg.get("closes", "17:00")),
        reappointment_min_days_before=int(
            cfg.get("reappointment", {}).get("min_working_days_before_deadline", 1)
        ),
        notices=notices,
        planned_years=planned,
    )


@lru_cache
def _cached(config_dir: str) -> WorkingCalendar:
    return calendar_from_config(Path(config_dir))


def get_calendar() -> WorkingCalendar:
    from lienthong.settings import get_settings

    return _cached(str(get_settings().config_dir))


__all__ = [
    "Notice",
    "TimeLimit",
    "Verdict",
    "WorkingCalendar",
    "YearCalendar",
    "calendar_from_config",
    "get_calendar",
    "localize",
    "statutory_holidays",
]
