"""Decision 766's index and the operator figures, computed from :class:`IndexRecord` facts.

Pure functions: the same records give the same figures, so the index can be checked by hand.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from lienthong.calendar import WorkingCalendar
from lienthong.clock import localize
from lienthong.index.config import IndexConfig, IndicatorSpec
from lienthong.index.records import IndexRecord

Verdict = Literal["early", "on_time", "late", "pending"]


@dataclass(frozen=True)
class Evaluation:
    verdict: Verdict
    ended: bool
    end: datetime | None
    wait: timedelta


def supplement_wait(rec: IndexRecord, until: datetime) -> timedelta:
    """Time waiting for the citizen's supplements after the clock (re)started: time before a
    restart is already outside the deadline (Decree 61 Art. 19(4)); it is not subtracted twice."""
    total = timedelta()
    for requested, completed in rec.supplements:
        a = max(requested, rec.clock_started_at)
        b = min(completed or until, until)
        if b > a:
            total += b - a
    return total


def evaluate(
    rec: IndexRecord, as_of: datetime, cal: WorkingCalendar, rule: dict[str, Any]
) -> Evaluation:
    """The 2.1 on-time rule for one dossier, at the end of the period ``as_of``."""
    end = rec.end_at if rec.end_at is not None and rec.end_at <= as_of else None
    ended = end is not None
    if (
        end is None
        and rec.status == 5
        and rec.supplement_count == 1
        and rec.supplements
        and rec.supplements[-1][1] is None
    ):
        end = rec.supplements[-1][0]  # the only event is one supplement request: it is the end
    wait = (
        supplement_wait(rec, end or as_of)
        if rule.get("subtract_supplement_wait", True)
        else timedelta()
    )
    if rec.supplement_count > int(rule.get("max_supplement_requests", 1)):
        return Evaluation("late", ended, end, wait)
    due = rec.original_due if rule.get("appointment") == "original" else rec.due_at
    if end is None:
        if not rule.get("open_measured_at_period_end", True):
            return Evaluation("pending", False, None, wait)
        if due is not None and as_of - wait > due:
            return Evaluation("late", False, None, wait)
        if (
            due is None
            and rec.time_limit_days is not None
            and _elapsed_days(cal, rec, as_of, wait) > rec.time_limit_days
        ):
            return Evaluation("late", False, None, wait)
        return Evaluation("pending", False, None, wait)
    effective = end - wait
    if due is None:
        if rec.time_limit_days is None:
            return Evaluation("pending", ended, end, wait)
        late = _elapsed_days(cal, rec, end, wait) > max(rec.time_limit_days, 1)
        return Evaluation("late" if late else "on_time", ended, end, wait)
    verdict = cal.verdict(due, effective).value
    return Evaluation(verdict, ended, end, wait)  # type: ignore[arg-type]


def _office_day(cal: WorkingCalendar) -> float:
    return (
        datetime.combine(datetime.min, cal.closes) - datetime.combine(datetime.min, cal.opens)
    ).total_seconds()


def _elapsed_days(cal: WorkingCalendar, rec: IndexRecord, end: datetime, wait: timedelta) -> float:
    secs = cal.working_seconds_between(rec.clock_started_at, end) - wait.total_seconds()
    return max(0.0, secs) / _office_day(cal)


# --- operator figures --------------------------------------------------------------------------


def operator_summary(
    records: Iterable[IndexRecord],
    start: datetime,
    end: datetime,
    as_of: datetime,
    cal: WorkingCalendar,
    rule: dict[str, Any],
) -> dict[str, Any]:
    """Figures for dossiers received in ``[start, end)``, as they stand at ``as_of``."""
    start, end = localize(start), localize(end)
    c: Counter[str] = Counter()
    for rec in records:
        if not start <= rec.received_at < end:
            continue
        ev = evaluate(rec, as_of, cal, rule)
        c["received"] += 1
        if ev.ended:
            c["resolved"] += 1
            if ev.verdict in ("early", "on_time"):
                c["resolved_on_time"] += 1
                c["resolved_early"] += ev.verdict == "early"
            else:
                c["late"] += 1
        else:
            c["in_progress"] += 1
            c["overdue_in_progress"] += ev.verdict == "late"
    resolved = c["resolved"]
    return {
        "received": c["received"],
        "resolved": resolved,
        "resolved_on_time": c["resolved_on_time"],
        "resolved_early": c["resolved_early"],
        "late": c["late"],
        "in_progress": c["in_progress"],
        "overdue_in_progress": c["overdue_in_progress"],
        "on_time_rate": round(100.0 * c["resolved_on_time"] / resolved, 2) if resolved else None,
    }


# --- the index ---------------------------------------------------------------------------------


@dataclass
class IndicatorResult:
    id: str
    group: str
    name: str
    numerator: float | None
    denominator: float | None
    value: float | None
    points: float | None
    max_points: float
    confirmed: bool = True

    @property
    def has_data(self) -> bool:
        return self.value is not None


@dataclass
class GroupResult:
    key: str
    no: int
    name: str
    max_points: float
    points: float
    available_points: float


@dataclass
class IndexResult:
    scope_kind: str
    scope: str
    start: datetime
    end: datetime
    dossiers: int
    indicators: list[IndicatorResult] = field(default_factory=list)
    groups: list[GroupResult] = field(default_factory=list)

    @property
    def points(self) -> float:
        return round(sum(g.points for g in self.groups), 2)

    @property
    def available_points(self) -> float:
        return round(sum(g.available_points for g in self.groups), 2)

    def indicator(self, ind_id: str) -> IndicatorResult:
        return next(i for i in self.indicators if i.id == ind_id)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"], d["end"] = self.start.isoformat(), self.end.isoformat()
        d["points"], d["available_points"] = self.points, self.available_points
        return d


def _ratio(num: int, den: int) -> tuple[float | None, float | None, float | None]:
    return (num, den, num / den) if den else (num, den, None)


def _indicator(
    spec: IndicatorSpec,
    recs: list[IndexRecord],
    evals: dict[str, Evaluation],
    start: datetime,
    end: datetime,
    cal: WorkingCalendar,
) -> IndicatorResult:
    received = [r for r in recs if start <= r.received_at < end]
    detailed = [r for r in received if r.detail_known]
    num = den = value = None
    if spec.kind == "sync_rate":
        num, den, value = _ratio(sum(bool(r.synced) for r in detailed), len(detailed))
    elif spec.kind == "on_time_rate":
        judged = [evals[r.code] for r in recs if evals[r.code].verdict != "pending"]
        num, den, value = _ratio(
            sum(e.verdict in ("early", "on_time") for e in judged), len(judged)
        )
    elif spec.kind == "mean_processing_days":
        done = [
            (r, e.end, e.wait)
            for r in recs
            if (e := evals[r.code]).ended and e.end is not None and start <= e.end < end
        ]
        if done:
            total = sum(_elapsed_days(cal, r, at, wait) for r, at, wait in done)
            num, den, value = round(total, 2), len(done), round(total / len(done), 2)
    elif spec.kind == "digitized_rate":
        ok = sum(
            r.components > 0 and r.components_with_file == r.components and r.result_attached
            for r in detailed
        )
        num, den, value = _ratio(ok, len(detailed))
    elif spec.kind == "reuse_rate":
        num, den, value = _ratio(sum(r.reused for r in detailed), len(detailed))
    elif spec.kind == "vault_rate":
        num, den, value = _ratio(
            sum(r.from_vault or (r.result_attached and bool(r.synced)) for r in detailed),
            len(detailed),
        )
    elif spec.kind == "online_rate":
        num, den, value = _ratio(sum(r.channel == "online" for r in detailed), len(detailed))
    elif spec.kind == "payment_rate":
        fee = [r for r in detailed if r.fee_bearing]
        num, den, value = _ratio(sum(r.paid_online for r in fee), len(fee))
    elif spec.kind == "satisfaction_rate":
        # 5.4: 100% - (late rate + share with a dislike) over the dossiers judged for 2.1; only
        # where citizens rated, or the indicator would score full marks on no answer at all.
        scope = [r for r in recs if evals[r.code].verdict != "pending"]
        if any(r.rating is not None for r in scope):
            late = sum(evals[r.code].verdict == "late" for r in scope)
            disliked = sum(r.disliked for r in scope)
            num, den = len(scope) - late - disliked, len(scope)
            value = max(0.0, num / den)
    elif spec.kind == "rating_coverage":
        delivered = [r for r in recs if r.status == 10]
        num, den, value = _ratio(sum(r.rating is not None for r in delivered), len(delivered))
    points = None
    if value is not None and spec.max_points and spec.kind != "mean_processing_days":
        # Below the threshold the score is rate x max / threshold; at or above it, full marks.
        points = round(spec.max_points * min(1.0, value / spec.threshold), 2)
    return IndicatorResult(
        spec.id,
        spec.group,
        spec.name,
        num,
        den,
        None if value is None else round(value, 6),
        points,
        spec.max_points,
        spec.confirmed,
    )


def compute_index(
    records: list[IndexRecord],
    start: datetime,
    end: datetime,
    as_of: datetime,
    cal: WorkingCalendar,
    cfg: IndexConfig,
    *,
    scope_kind: str = "province",
    scope: str = "",
) -> IndexResult:
    start, end = localize(start), localize(end)
    evals = {r.code: evaluate(r, as_of, cal, cfg.rule) for r in records}
    result = IndexResult(scope_kind, scope, start, end, len(records))
    result.indicators = [_indicator(s, records, evals, start, end, cal) for s in cfg.indicators]
    for key, g in sorted(cfg.groups.items(), key=lambda kv: kv[1]["number"]):
        inds = [i for i in result.indicators if i.group == key and i.points is not None]
        result.groups.append(
            GroupResult(
                key,
                int(g["number"]),
                g["name"],
                float(g["max_points"]),
                round(sum(i.points or 0 for i in inds), 2),
                float(sum(i.max_points for i in inds)),
            )
        )
    return result


def by_scope(records: list[IndexRecord], kind: str) -> dict[str, list[IndexRecord]]:
    out: dict[str, list[IndexRecord]] = defaultdict(list)
    for r in records:
        if kind == "agency":
            for a in r.agencies:
                out[a].append(r)
        else:
            out[r.procedure_code].append(r)
    return dict(sorted(out.items()))


def lateness_by_agency(
    records: list[IndexRecord], as_of: datetime, cal: WorkingCalendar, rule: dict[str, Any]
) -> dict[str, int]:
    """Late dossiers per agency held responsible (sweep attribution, else the overrunning step)."""
    c: Counter[str] = Counter()
    for r in records:
        if evaluate(r, as_of, cal, rule).verdict != "late":
            continue
        agency = r.late_agency
        if agency is None:
            over = [
                (s.finished_at or as_of) - s.due_at
                for s in r.steps
                if s.due_at is not None
                and s.kind != "payment"
                and (s.finished_at or as_of) > s.due_at
            ]
            late_steps = [
                s
                for s in r.steps
                if s.due_at is not None
                and s.kind != "payment"
                and (s.finished_at or as_of) > s.due_at
            ]
            agency = late_steps[over.index(max(over))].agency if late_steps else "MOT_CUA"
        c[agency] += 1
    return dict(c.most_common())


def step_times(records: list[IndexRecord], cal: WorkingCalendar) -> list[dict[str, Any]]:
    """Mean office hours spent per step (agency and step), with its Form 05 verdict counts."""
    acc: dict[tuple[str, str], list[float]] = defaultdict(list)
    verdicts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for r in records:
        for s in r.steps:
            if s.started_at and s.finished_at and s.kind != "payment":
                key = (s.agency, s.key)
                acc[key].append(cal.working_seconds_between(s.started_at, s.finished_at) / 3600)
                verdicts[key][s.verdict or "?"] += 1
    return [
        {
            "agency": a,
            "step": k,
            "steps": len(v),
            "mean_hours": round(sum(v) / len(v), 2),
            "early": verdicts[(a, k)]["early"],
            "on_time": verdicts[(a, k)]["on_time"],
            "late": verdicts[(a, k)]["late"],
        }
        for (a, k), v in sorted(acc.items())
    ]


def monthly_on_time(
    records: list[IndexRecord], as_of: datetime, cal: WorkingCalendar, rule: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """agency -> {YYYY-MM: on-time rate %} over dossiers ended in each month."""
    num: dict[tuple[str, str], int] = Counter()
    den: dict[tuple[str, str], int] = Counter()
    for r in records:
        ev = evaluate(r, as_of, cal, rule)
        if not ev.ended or ev.end is None:
            continue
        month = localize(ev.end).strftime("%Y-%m")
        for a in r.agencies:
            den[(a, month)] += 1
            num[(a, month)] += ev.verdict in ("early", "on_time")
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (a, m), n in sorted(den.items()):
        out[a][m] = round(100.0 * num[(a, m)] / n, 2)
    return dict(out)
