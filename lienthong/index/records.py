"""The facts the index and the reports read, one :class:`IndexRecord` per dossier (live or history).

Loaded in a handful of set-based queries filtered by the period (no per-dossier round trips), so
the same code serves a monthly report and a province's backlog.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, and_, cast, column, func, inspect, or_, select, table
from sqlalchemy.orm import Session

from lienthong.catalog import get_catalog
from lienthong.clock import localize
from lienthong.db.models import (
    ComponentRow,
    DossierRow,
    ReappointmentRow,
    StatusHistory,
    StepRow,
    SupplementRow,
)
from lienthong.errors import LienThongError
from lienthong.portal.ledger import HistoryDossier, LatenessRow, PortalSyncRow

OPEN = (1, 2, 4, 5, 6)


@dataclass(frozen=True)
class StepFact:
    agency: str
    key: str
    kind: str
    started_at: datetime | None
    finished_at: datetime | None
    due_at: datetime | None
    verdict: str | None


@dataclass
class IndexRecord:
    code: str
    procedure_code: str
    procedure_id: str | None
    agencies: tuple[str, ...]
    history: bool
    received_at: datetime
    clock_started_at: datetime
    due_at: datetime | None
    original_due: datetime | None
    time_limit_days: int | None
    status: int
    end_at: datetime | None
    supplement_count: int
    supplements: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    channel: str | None = None
    components: int = 0
    components_with_file: int = 0
    reused: bool = False
    from_vault: bool = False
    result_attached: bool = False
    paid_online: bool = False
    fee_bearing: bool | None = None
    synced: bool | None = None
    steps: list[StepFact] = field(default_factory=list)
    late_agency: str | None = None
    # The citizen's satisfaction rating (lienthong.citizen.ratings): overall level, and whether any
    # answer was a dislike. None: not rated.
    rating: int | None = None
    disliked: bool = False

    @property
    def detail_known(self) -> bool:
        """History rows carry no components, channel or payment: they count only for timeliness."""
        return not self.history


def _end_at(
    firsts: dict[int, datetime], priority: list[list[int]], accepted: bool, withdrawal_counts: bool
) -> datetime | None:
    for group in priority:
        times = [firsts[s] for s in group if s in firsts]
        if times:
            return min(times)
    if withdrawal_counts and accepted and 7 in firsts:
        return firsts[7]
    return None


def _in_period(
    col_received: Any, col_end: Any, col_due: Any, col_status: Any, start: datetime, end: datetime
) -> Any:
    return or_(
        and_(col_received >= start, col_received < end),
        and_(col_end >= start, col_end < end),
        and_(col_end.is_(None), col_status.in_(OPEN), col_due >= start, col_due < end),
    )


def load_records(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    rule: dict[str, Any],
    result_keys: list[str],
    include_history: bool = True,
) -> list[IndexRecord]:
    """Dossiers received, ended, or falling due while open, in ``[start, end)``."""
    start, end = localize(start), localize(end)
    catalog = get_catalog()
    fee_bearing: dict[str, bool] = {}
    for proc in catalog:
        fee_bearing[proc.code] = any(f.amount_vnd is None or f.amount_vnd > 0 for f in proc.fees)
    d = DossierRow
    where = _in_period(d.received_at, d.finished_at, d.due_at, d.status, start, end)
    ids = select(d.id).where(where).scalar_subquery()
    rows = session.execute(
        select(
            d.id,
            d.code,
            d.procedure_code,
            d.procedure_id,
            d.received_at,
            d.clock_started_at,
            d.due_at,
            d.time_limit_days,
            d.status,
            d.finished_at,
            d.channel,
            d.deliveries,
        ).where(where)
    ).all()
    recs: dict[int, IndexRecord] = {}
    for r in rows:
        recs[r.id] = IndexRecord(
            code=r.code,
            procedure_code=r.procedure_code,
            procedure_id=r.procedure_id,
            agencies=(),
            history=False,
            received_at=r.received_at,
            clock_started_at=r.clock_started_at or r.received_at,
            due_at=r.due_at,
            original_due=r.due_at,
            time_limit_days=r.time_limit_days,
            status=r.status,
            end_at=r.finished_at,
            supplement_count=0,
            channel=r.channel,
            result_attached=any(k in (r.deliveries or {}) for k in result_keys),
            fee_bearing=fee_bearing.get(r.procedure_code, False),
            synced=False,
        )
    if recs:
        from lienthong.citizen.ratings import CitizenRating

        by_code = {rec.code: rec for rec in recs.values()}
        for code, overall, disliked in session.execute(
            select(CitizenRating.dossier_code, CitizenRating.overall, CitizenRating.disliked)
            .where(CitizenRating.dossier_code.in_(select(d.code).where(where).scalar_subquery()))
        ):
            by_code[code].rating, by_code[code].disliked = overall, bool(disliked)
        firsts: dict[int, dict[int, datetime]] = defaultdict(dict)
        for dossier_id, status, at in session.execute(
            select(StatusHistory.dossier_id, StatusHistory.to_status, func.min(StatusHistory.at))
            .where(StatusHistory.dossier_id.in_(ids))
            .group_by(StatusHistory.dossier_id, StatusHistory.to_status)
        ):
            firsts[dossier_id][status] = at
        priority = [list(g) for g in rule["end_priority"]]
        for dossier_id, f in firsts.items():
            rec = recs[dossier_id]
            rec.end_at = _end_at(
                f,
                priority,
                accepted=2 in f,
                withdrawal_counts=rule.get("withdrawal_counts_if_accepted", True),
            )
        for dossier_id, n, with_file, reused, vault in session.execute(
            select(
                ComponentRow.dossier_id,
                func.count(),
                func.sum(
                    cast(
                        or_(
                            ComponentRow.file_ref.is_not(None),
                            ComponentRow.vault_address.is_not(None),
                        ),
                        Integer,
                    )
                ),
                func.max(cast(ComponentRow.reused, Integer)),
                func.max(cast(ComponentRow.from_national_vault, Integer)),
            )
            .where(ComponentRow.dossier_id.in_(ids))
            .group_by(ComponentRow.dossier_id)
        ):
            rec = recs[dossier_id]
            rec.components, rec.components_with_file = int(n), int(with_file or 0)
            rec.reused, rec.from_vault = bool(reused), bool(vault)
        for s in session.execute(
            select(
                StepRow.dossier_id,
                StepRow.agency,
                StepRow.step_key,
                StepRow.kind,
                StepRow.started_at,
                StepRow.finished_at,
                StepRow.due_at,
                StepRow.verdict,
                StepRow.status,
            )
            .where(StepRow.dossier_id.in_(ids))
            .order_by(StepRow.id)
        ):
            recs[s.dossier_id].steps.append(
                StepFact(
                    s.agency, s.step_key, s.kind, s.started_at, s.finished_at, s.due_at, s.verdict
                )
            )
        for dossier_id, outputs in session.execute(
            select(StepRow.dossier_id, StepRow.outputs).where(
                StepRow.dossier_id.in_(ids), StepRow.kind == "payment", StepRow.status == "done"
            )
        ):
            receipt = (outputs or {}).get("payment_receipt") or {}
            if isinstance(receipt, dict) and str(receipt.get("channel", "")).lower() in (
                "online",
                "portal",
                "gateway",
            ):
                recs[dossier_id].paid_online = True
        for sp in session.execute(
            select(SupplementRow.dossier_id, SupplementRow.requested_at, SupplementRow.completed_at)
            .where(SupplementRow.dossier_id.in_(ids))
            .order_by(SupplementRow.id)
        ):
            recs[sp.dossier_id].supplements.append((sp.requested_at, sp.completed_at))
        for rid, original in session.execute(
            select(ReappointmentRow.dossier_id, ReappointmentRow.original_due).where(
                ReappointmentRow.dossier_id.in_(ids), ReappointmentRow.approved_at.is_not(None)
            )
        ):
            recs[rid].original_due = original
        for (dossier_id,) in session.execute(
            select(PortalSyncRow.dossier_id).where(
                PortalSyncRow.dossier_id.in_(ids), PortalSyncRow.state == "acked"
            )
        ):
            if dossier_id in recs:
                recs[dossier_id].synced = True
        for dossier_id, agency in session.execute(
            select(LatenessRow.dossier_id, LatenessRow.agency).where(
                LatenessRow.dossier_id.in_(ids), LatenessRow.primary.is_(True)
            )
        ):
            recs[dossier_id].late_agency = agency
        if inspect(session.get_bind()).has_table("vault_results"):
            vr = table("vault_results", column("source_dossier_code"))
            codes = select(d.code).where(where).scalar_subquery()
            published = set(
                session.execute(
                    select(vr.c.source_dossier_code)
                    .distinct()
                    .where(vr.c.source_dossier_code.in_(codes))
                ).scalars()
            )
            for rec in recs.values():
                rec.result_attached = rec.result_attached or rec.code in published
        for rec in recs.values():
            rec.supplement_count = len(rec.supplements)
            rec.agencies = tuple(
                dict.fromkeys(s.agency for s in rec.steps if s.kind != "payment")
            ) or ("MOT_CUA",)
            if rec.fee_bearing is False:
                rec.paid_online = False
    out = list(recs.values())
    if include_history:
        h = HistoryDossier
        hwhere = _in_period(h.received_at, h.finished_at, h.due_at, h.status, start, end)
        for hr in session.execute(select(h).where(hwhere)).scalars():
            end_at = hr.finished_at if hr.status in (3, 7, 8, 9, 10) else None
            out.append(
                IndexRecord(
                    code=hr.code,
                    procedure_code=hr.procedure_code,
                    procedure_id=_proc_id(hr.procedure_code),
                    agencies=(hr.agency,),
                    history=True,
                    received_at=hr.received_at,
                    clock_started_at=hr.received_at,
                    due_at=hr.due_at,
                    original_due=hr.due_at,
                    time_limit_days=None,
                    status=hr.status,
                    end_at=end_at,
                    supplement_count=hr.supplement_requests,
                    late_agency=hr.agency,
                )
            )
    return out


def _proc_id(code: str) -> str | None:
    try:
        return get_catalog().get(code).id
    except LienThongError:
        return None
