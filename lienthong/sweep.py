"""The deadline sweep (rà soát thời hạn) over open dossiers and steps.

One pass, safe to repeat every few minutes: it warns the responsible agency when little of its
working time is left, marks late steps and dossiers, attributes lateness to the agency whose step
overran (the Form 05 verdicts), and on the working day before a deadline (D-1) prepares the apology
and re-appointment letter (Form 04) as a draft for that agency to approve, at most once per dossier.
Each action is a :class:`SweepEvent` with a unique key, so a second pass does nothing twice.
Approval (:func:`approve_apology`) moves the appointment and tells the citizen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lienthong.calendar import WorkingCalendar, get_calendar
from lienthong.catalog import get_catalog
from lienthong.clock import get_clock, localize
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, HandOver, ReappointmentRow, StepRow, table_of
from lienthong.db.store import to_aggregate
from lienthong.errors import ExitCode, LienThongError, ReappointmentRefused
from lienthong.notify import (
    agency_apology_draft,
    agency_late,
    agency_warning,
    enqueue,
)
from lienthong.notify.citizen import emit as emit_citizen
from lienthong.notify.citizen import when
from lienthong.portal.ledger import LatenessRow, SweepEvent
from lienthong.settings import get_settings

OPEN_STEP_STATUSES = ("pending", "submitted")


class ApologyNotFound(LienThongError, LookupError):
    code = "apology_not_found"
    exit_code = ExitCode.NOT_FOUND


@dataclass(frozen=True)
class SweepConfig:
    warn_share: float
    apology_trigger: str
    extra_days: int
    reason_template: str
    notify_citizen: bool
    unattributed_agency: str
    skip_step_kinds: frozenset[str]
    open_statuses: tuple[int, ...]

    @classmethod
    def load(cls, config_dir: Path) -> SweepConfig:
        with (config_dir / "sweep.yaml").open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
        return cls(
            warn_share=float(raw["warning"]["share_left_below"]),
            apology_trigger=str(raw["apology"].get("trigger", "at_risk")),
            extra_days=int(raw["apology"]["propose_extra_working_days"]),
            reason_template=str(raw["apology"]["reason_template"]),
            notify_citizen=bool(raw["apology"].get("notify_citizen", True)),
            unattributed_agency=str(raw["lateness"]["unattributed_agency"]),
            skip_step_kinds=frozenset(raw["lateness"].get("skip_step_kinds", [])),
            open_statuses=tuple(int(s) for s in raw.get("open_statuses", [2, 4])),
        )


@lru_cache
def _cached_config(config_dir: str) -> SweepConfig:
    return SweepConfig.load(Path(config_dir))


def get_sweep_config() -> SweepConfig:
    return _cached_config(str(get_settings().config_dir))


@dataclass
class SweepReport:
    """What one pass did; codes only, no personal data (it becomes a Prefect artifact)."""

    at: datetime
    open_dossiers: int = 0
    open_steps: int = 0
    warnings: list[tuple[str, str, str]] = field(default_factory=list)  # (code, subject, agency)
    late_steps: list[tuple[str, str, str]] = field(default_factory=list)
    late_dossiers: list[str] = field(default_factory=list)
    apology_drafts: list[tuple[str, str]] = field(default_factory=list)  # (code, agency)
    attributions: dict[str, int] = field(default_factory=dict)  # agency -> late dossiers (primary)

    def as_rows(self) -> list[dict[str, Any]]:
        rows = [
            {"dossier": c, "subject": s, "agency": a, "action": "warning"}
            for c, s, a in self.warnings
        ]
        rows += [
            {"dossier": c, "subject": s, "agency": a, "action": "late"}
            for c, s, a in self.late_steps
        ]
        rows += [
            {"dossier": c, "subject": "dossier", "agency": "", "action": "late"}
            for c in self.late_dossiers
        ]
        rows += [
            {"dossier": c, "subject": "dossier", "agency": a, "action": "apology_draft"}
            for c, a in self.apology_drafts
        ]
        return rows


def _record(
    session: Session,
    *,
    dossier: DossierRow,
    subject: str,
    kind: str,
    agency: str,
    at: datetime,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Insert a sweep event unless it exists; True when this call recorded it (first time)."""
    table = table_of(SweepEvent)
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    stmt = (
        ins.values(
            dossier_id=dossier.id,
            dossier_code=dossier.code,
            subject=subject,
            kind=kind,
            agency=agency,
            at=at,
            detail=detail or {},
        )
        .on_conflict_do_nothing(index_elements=["dossier_id", "subject", "kind"])
        .returning(table.c.id)
    )
    return session.execute(stmt).first() is not None


def _overrun(cal: WorkingCalendar, due: datetime, end: datetime) -> float:
    return cal.working_seconds_between(due, end) if end > due else 0.0


def sweep(
    *,
    now: datetime | None = None,
    calendar: WorkingCalendar | None = None,
    config: SweepConfig | None = None,
    session: Session | None = None,
) -> SweepReport:
    """One pass over every open dossier and step, in one transaction."""
    if session is None:
        with session_scope() as s:
            return sweep(now=now, calendar=calendar, config=config, session=s)
    cal = calendar or get_calendar()
    cfg = config or get_sweep_config()
    now = localize(now or get_clock().now())
    report = SweepReport(at=now)

    dossiers = (
        session.execute(
            select(DossierRow)
            .where(
                DossierRow.status.in_(cfg.open_statuses),
                DossierRow.due_at.is_not(None),
                DossierRow.clock_paused_at.is_(None),
            )
            .order_by(DossierRow.id)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    report.open_dossiers = len(dossiers)
    ids = [d.id for d in dossiers]
    steps_by: dict[int, list[StepRow]] = {i: [] for i in ids}
    if ids:
        for st in session.execute(
            select(StepRow).where(StepRow.dossier_id.in_(ids)).order_by(StepRow.id)
        ).scalars():
            steps_by[st.dossier_id].append(st)
    drafted = (
        set(
            session.execute(
                select(ReappointmentRow.dossier_id).where(ReappointmentRow.dossier_id.in_(ids))
            ).scalars()
        )
        if ids
        else set()
    )

    for d in dossiers:
        assert d.due_at is not None
        steps = steps_by[d.id]
        open_steps = [
            s
            for s in steps
            if s.status in OPEN_STEP_STATUSES
            and s.due_at is not None
            and s.kind not in cfg.skip_step_kinds
        ]
        report.open_steps += len(open_steps)
        for st in open_steps:
            assert st.due_at is not None and st.started_at is not None
            subject = f"step:{st.step_key}"
            if now > st.due_at:
                st.late = True
                if _record(
                    session,
                    dossier=d,
                    subject=subject,
                    kind="late",
                    agency=st.agency,
                    at=now,
                    detail={"due_at": st.due_at.isoformat()},
                ):
                    report.late_steps.append((d.code, subject, st.agency))
                    enqueue(
                        session,
                        agency_late(st.agency, d.code, subject, st.due_at),
                        f"{d.code}:{subject}:late",
                    )
                continue
            share = cal.share_left(st.started_at, st.due_at, now)
            if share < cfg.warn_share and _record(
                session,
                dossier=d,
                subject=subject,
                kind="warning",
                agency=st.agency,
                at=now,
                detail={"share_left": round(share, 4), "due_at": st.due_at.isoformat()},
            ):
                st.warned_at = now
                report.warnings.append((d.code, subject, st.agency))
                enqueue(
                    session,
                    agency_warning(st.agency, d.code, subject, st.due_at, share),
                    f"{d.code}:{subject}:warning",
                )

        responsible, action = _responsible(d, steps, open_steps, now, cfg)
        if now > d.due_at:
            d.late = True
            if _record(
                session,
                dossier=d,
                subject="dossier",
                kind="late",
                agency=responsible,
                at=now,
                detail={"due_at": d.due_at.isoformat()},
            ):
                report.late_dossiers.append(d.code)
                enqueue(
                    session,
                    agency_late(responsible, d.code, "dossier", d.due_at),
                    f"{d.code}:dossier:late",
                )
            _attribute(session, d, steps, now, cal, cfg, report)
            continue
        start = d.clock_started_at or d.received_at
        share = cal.share_left(start, d.due_at, now)
        if share < cfg.warn_share and _record(
            session,
            dossier=d,
            subject="dossier",
            kind="warning",
            agency=responsible,
            at=now,
            detail={"share_left": round(share, 4), "due_at": d.due_at.isoformat()},
        ):
            report.warnings.append((d.code, "dossier", responsible))
            enqueue(
                session,
                agency_warning(responsible, d.code, "dossier", d.due_at, share),
                f"{d.code}:dossier:warning",
            )
        if (
            d.id not in drafted
            and _is_d_minus_1(cal, d.due_at, now)
            and (cfg.apology_trigger == "open" or _at_risk(d, steps, open_steps, now, cal, cfg))
            and _draft_apology(session, d, responsible, action, now, cal, cfg)
        ):
            report.apology_drafts.append((d.code, responsible))

    _attribute_finished(session, now, cal, cfg, report)
    return report


def _is_d_minus_1(cal: WorkingCalendar, due: datetime, now: datetime) -> bool:
    """True on the working day before the due day, up to the last moment Form 04 may be recorded."""
    latest = cal.latest_reappointment(due)
    return cal.local(now).date() == latest.date() and now <= latest


def _responsible(
    d: DossierRow, steps: list[StepRow], open_steps: list[StepRow], now: datetime, cfg: SweepConfig
) -> tuple[str, str]:
    """The agency holding the dossier: the open step most behind; else the next planned step's."""
    if open_steps:
        st = min(open_steps, key=lambda s: s.due_at or now)
        return st.agency, st.action
    nxt = _unstarted(d, steps)
    if nxt:
        return nxt[0].agency, nxt[0].action
    return cfg.unattributed_agency, "Tiếp nhận, chuyển hồ sơ"


def _unstarted(d: DossierRow, steps: list[StepRow]) -> list[Any]:
    try:
        plan = get_catalog().for_dossier(d).plan(d.options or {})
    except LienThongError:
        return []
    started = {s.step_key for s in steps}
    return [s for s in plan.steps if s.id not in started and s.counts_toward_limit]


def _at_risk(
    d: DossierRow,
    steps: list[StepRow],
    open_steps: list[StepRow],
    now: datetime,
    cal: WorkingCalendar,
    cfg: SweepConfig,
) -> bool:
    assert d.due_at is not None
    if any(s.due_at is not None and (s.due_at < now or s.due_at > d.due_at) for s in open_steps):
        return True
    days_left = cal.working_days_between(cal.local(now).date(), cal.local(d.due_at).date())
    return any(
        s.time_limit.working_days >= days_left
        for s in _unstarted(d, steps)
        if s.kind not in cfg.skip_step_kinds
    )


def proposed_new_due(cal: WorkingCalendar, due: datetime, extra_days: int) -> datetime:
    day: date = cal.add_working_days(cal.local(due).date(), extra_days)
    return datetime.combine(day, cal.closes, tzinfo=cal.tz)


def _draft_apology(
    session: Session,
    d: DossierRow,
    agency: str,
    action: str,
    now: datetime,
    cal: WorkingCalendar,
    cfg: SweepConfig,
) -> bool:
    """Validate with the aggregate's rule (once, by D-1), then store the unapproved draft."""
    assert d.due_at is not None
    agency_name = get_catalog().agencies.get(agency, {}).get("name", agency)
    reason = cfg.reason_template.format(agency_name=agency_name, action=action)
    new_due = proposed_new_due(cal, d.due_at, cfg.extra_days)
    try:
        to_aggregate(session, d).reappoint(new_due, reason, now, agency, cal)
    except ReappointmentRefused:
        return False
    if not _record(
        session,
        dossier=d,
        subject="dossier",
        kind="apology_draft",
        agency=agency,
        at=now,
        detail={"new_due": new_due.isoformat()},
    ):
        return False
    session.add(
        ReappointmentRow(
            dossier_id=d.id,
            original_due=d.due_at,
            new_due=new_due,
            reason=reason,
            recorded_at=now,
            agency=agency,
            approved_at=None,
        )
    )
    enqueue(
        session,
        agency_apology_draft(agency, d.code, d.due_at, new_due),
        f"{d.code}:dossier:apology_draft",
    )
    return True


# --- lateness attribution ---------------------------------------------------------------------


def _attribute(
    session: Session,
    d: DossierRow,
    steps: list[StepRow],
    now: datetime,
    cal: WorkingCalendar,
    cfg: SweepConfig,
    report: SweepReport,
) -> None:
    """Upsert who made a late dossier late: every step past its own limit, the largest primary."""
    assert d.due_at is not None
    end = d.finished_at or now
    found: list[tuple[str, str, float, datetime, str]] = []  # subject, agency, overrun, due, source
    for st in steps:
        if st.kind in cfg.skip_step_kinds or st.due_at is None:
            continue
        st_end = st.finished_at or (now if st.status in OPEN_STEP_STATUSES else None)
        if st_end is None:
            continue
        if st.verdict == "late" or st_end > st.due_at:
            found.append(
                (
                    f"step:{st.step_key}",
                    st.agency,
                    _overrun(cal, st.due_at, st_end),
                    st.due_at,
                    "step",
                )
            )
    covered = {a for _, a, *_ in found}
    # A giver's own verdict on the control slip counts even when its step row says nothing.
    for ho in session.execute(
        select(HandOver).where(HandOver.dossier_id == d.id, HandOver.verdict == "late")
    ).scalars():
        if ho.from_agency not in covered:
            found.append((f"form05:{ho.id}", ho.from_agency, 0.0, ho.at, "form05"))
            covered.add(ho.from_agency)
    if not found:
        found.append(
            ("dossier", cfg.unattributed_agency, _overrun(cal, d.due_at, end), d.due_at, "dossier")
        )
    primary = max(found, key=lambda f: f[2])
    existing = {
        r.subject: r
        for r in session.execute(
            select(LatenessRow).where(LatenessRow.dossier_id == d.id)
        ).scalars()
    }
    for subject, agency, overrun, due, source in found:
        row = existing.get(subject)
        if row is None:
            row = LatenessRow(
                dossier_id=d.id,
                dossier_code=d.code,
                procedure_code=d.procedure_code,
                subject=subject,
                agency=agency,
                source=source,
                due_at=due,
                overrun_seconds=overrun,
                recorded_at=now,
                primary=False,
            )
            session.add(row)
        row.overrun_seconds = overrun
        row.primary = subject == primary[0]
        row.recorded_at = now
    report.attributions[primary[1]] = report.attributions.get(primary[1], 0) + 1


def _attribute_finished(
    session: Session, now: datetime, cal: WorkingCalendar, cfg: SweepConfig, report: SweepReport
) -> None:
    """Dossiers that ended after their deadline and have no attribution yet."""
    attributed = select(LatenessRow.dossier_id)
    rows = (
        session.execute(
            select(DossierRow).where(
                DossierRow.finished_at.is_not(None),
                DossierRow.due_at.is_not(None),
                DossierRow.finished_at > DossierRow.due_at,
                DossierRow.id.not_in(attributed),
            )
        )
        .scalars()
        .all()
    )
    for d in rows:
        d.late = True
        steps = session.execute(select(StepRow).where(StepRow.dossier_id == d.id)).scalars().all()
        _attribute(session, d, list(steps), now, cal, cfg, report)


# --- approval of the Form 04 draft -------------------------------------------------------------


@dataclass(frozen=True)
class ApologyDraft:
    dossier_code: str
    agency: str
    original_due: datetime
    new_due: datetime
    reason: str
    recorded_at: datetime


@dataclass(frozen=True)
class ApologyDecision:
    dossier_code: str
    approved: bool
    new_due: datetime | None
    form_path: str | None
    within_legal_time: bool


def pending_apologies(session: Session | None = None) -> list[ApologyDraft]:
    """Drafts waiting for the agency's approval."""
    if session is None:
        with session_scope() as s:
            return pending_apologies(s)
    rows = session.execute(
        select(ReappointmentRow, DossierRow.code)
        .join(DossierRow, DossierRow.id == ReappointmentRow.dossier_id)
        .where(ReappointmentRow.approved_at.is_(None))
        .order_by(ReappointmentRow.recorded_at)
    ).all()
    return [
        ApologyDraft(code, r.agency, r.original_due, r.new_due, r.reason, r.recorded_at)
        for r, code in rows
    ]


def approve_apology(
    dossier_code: str,
    *,
    approved: bool,
    approver: str,
    new_due: datetime | None = None,
    reason: str | None = None,
    now: datetime | None = None,
    calendar: WorkingCalendar | None = None,
    render: Callable[[str], str] | None = None,
) -> ApologyDecision:
    """The agency's decision on its Form 04 draft.

    Approved: the appointment moves to the (possibly edited) new date, the citizen is notified,
    and ``render(code)`` (e.g. :func:`lienthong.forms.render_form` for Form 04) stores the letter.
    Rejected: the draft is dropped; the sweep will not draft again for this dossier.
    """
    cal = calendar or get_calendar()
    now = localize(now or get_clock().now())
    with session_scope() as session:
        d = session.execute(
            select(DossierRow).where(DossierRow.code == dossier_code).with_for_update()
        ).scalar_one_or_none()
        draft = session.execute(
            select(ReappointmentRow).where(ReappointmentRow.dossier_id == (d.id if d else -1))
        ).scalar_one_or_none()
        if d is None or draft is None or draft.approved_at is not None:
            raise ApologyNotFound(
                f"{dossier_code}: no apology draft waiting for approval",
                message_vi=f"Không có dự thảo phiếu xin lỗi nào của hồ sơ {dossier_code} "
                "chờ phê duyệt.",
            )
        within = draft.recorded_at <= cal.latest_reappointment(draft.original_due)
        if not approved:
            _record(
                session,
                dossier=d,
                subject="dossier",
                kind="apology_rejected",
                agency=draft.agency,
                at=now,
                detail={"by": approver},
            )
            session.delete(draft)
            return ApologyDecision(dossier_code, False, None, None, within)
        if new_due is not None:
            new_due = localize(new_due)
            if new_due <= draft.original_due:
                raise ReappointmentRefused(
                    f"{dossier_code}: the new appointment must be later than {draft.original_due}",
                    message_vi="Ngày hẹn mới phải sau ngày hẹn cũ.",
                )
            draft.new_due = new_due
        if reason:
            draft.reason = reason
        draft.approved_at = now
        d.due_at = draft.new_due
        d.late = False
        d.updated_at = now
        _record(
            session,
            dossier=d,
            subject="dossier",
            kind="apology_approved",
            agency=draft.agency,
            at=now,
            detail={
                "by": approver,
                "new_due": draft.new_due.isoformat(),
                "within_legal_time": within,
            },
        )
        if get_sweep_config().notify_citizen:
            emit_citizen(session, d, "reappointment",
                         extra={"hen_cu": when(draft.original_due), "hen_moi": when(draft.new_due)})
        result_due = draft.new_due
    path = render(dossier_code) if render else None
    return ApologyDecision(dossier_code, True, result_due, path, within)
