"""Synchronisation runs: what changed goes to the portal; the ledger keeps what was acknowledged.

- :func:`catch_up` walks every dossier by id (keyset pagination) in batches and stores its
  position in ``portal_checkpoints`` after each batch, so a stopped run resumes where it stopped;
- :func:`sync_changed` (hourly) looks only at dossiers touched since the last run, plus those the
  portal has not acknowledged yet.

A dossier is sent only when the content hash of its payload differs from the acknowledged one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from lienthong.catalog import get_catalog
from lienthong.clock import get_clock
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, StatusHistory, StepRow
from lienthong.portal.client import PortalClient, PortalError, PortalRejected, PortalSettings
from lienthong.portal.ledger import PortalCheckpoint, PortalSyncRow
from lienthong.portal.payloads import (
    BuiltPayload,
    PortalPayloadError,
    build,
    get_portal_config,
    load_bundles,
)

HOURLY = "hourly"
OVERLAP = timedelta(minutes=5)


@dataclass
class SyncReport:
    name: str
    total: int = 0
    processed: int = 0
    sent: int = 0
    unchanged: int = 0
    rejected: int = 0
    last_id: int = 0
    finished: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _eligible() -> Any:
    return DossierRow.status.not_in(get_portal_config().skip_statuses)


def _send_one(
    client: PortalClient, p: BuiltPayload, need_hoso: bool, need_progress: bool
) -> tuple[str, str | None]:
    try:
        if need_hoso:
            client.push_dossier(p.hoso)
        if need_progress:
            client.push_progress(p.code, p.progress)
    except PortalRejected as exc:
        return "rejected", exc.message
    return "acked", None


def process_batch(
    session: Session,
    client: PortalClient,
    rows: Sequence[DossierRow],
    report: SyncReport,
    *,
    concurrency: int = 1,
) -> PortalError | None:
    """Send the changed dossiers of one batch; update the ledger; stop at the first outage.

    Returns the outage (if any) instead of raising, so the caller can commit what was done.
    ``report.last_id`` ends at the last dossier whose fate is recorded.
    """
    now = get_clock().now()
    catalog, cfg = get_catalog(), get_portal_config()
    ledger = {
        r.dossier_code: r
        for r in session.execute(
            select(PortalSyncRow).where(PortalSyncRow.dossier_code.in_([r.code for r in rows]))
        ).scalars()
    }
    work: list[tuple[DossierRow, BuiltPayload | None, str | None, bool, bool]] = []
    for b in load_bundles(session, rows):
        try:
            p = build(b, catalog=catalog, cfg=cfg)
        except PortalPayloadError as exc:
            work.append((b.row, None, exc.message, False, False))
            continue
        led = ledger.get(p.code)
        need_hoso = led is None or led.state != "acked" or led.hoso_hash != p.hoso_hash
        need_progress = (
            led is None
            or led.progress_hash != p.progress_hash
            or need_hoso
            and led.state != "acked"
        )
        work.append((b.row, p, None, need_hoso, need_progress))

    def send(
        item: tuple[DossierRow, BuiltPayload | None, str | None, bool, bool],
    ) -> tuple[str, str | None]:
        row, p, problem, need_hoso, need_progress = item
        if p is None:
            return "invalid", problem
        if not (need_hoso or need_progress):
            return "unchanged", None
        return _send_one(client, p, need_hoso, need_progress)

    outage: PortalError | None = None
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [pool.submit(send, item) for item in work]
        for item, fut in zip(work, futures, strict=True):
            row, built, _problem, _h, _p = item
            try:
                state, error = fut.result()
            except PortalError as exc:
                outage = outage or exc
                continue
            if outage is not None:
                continue  # keep the checkpoint contiguous: nothing after the first outage counts
            report.processed += 1
            report.last_id = row.id
            if state == "unchanged":
                report.unchanged += 1
                continue
            led = ledger.get(row.code)
            if led is None:
                led = PortalSyncRow(
                    dossier_code=row.code,
                    dossier_id=row.id,
                    progress_count=0,
                    attempts=0,
                    state="pending",
                )
                session.add(led)
                ledger[row.code] = led
            led.attempts += 1
            led.sent_at = now
            if state == "acked":
                assert built is not None
                led.state, led.acked_at, led.last_error = "acked", now, None
                led.hoso_hash, led.progress_hash = built.hoso_hash, built.progress_hash
                led.progress_count, led.portal_status = len(built.progress), built.status
                report.sent += 1
            else:
                led.state, led.last_error = state, error
                report.rejected += 1
    return outage


def _checkpoint(session: Session, name: str, *, reset: bool) -> PortalCheckpoint:
    now = get_clock().now()
    cp = session.get(PortalCheckpoint, name, with_for_update=True)
    if cp is None or reset:
        total = session.execute(
            select(func.count()).select_from(DossierRow).where(_eligible())
        ).scalar_one()
        if cp is None:
            cp = PortalCheckpoint(name=name)
            session.add(cp)
        cp.last_id, cp.total, cp.processed, cp.sent, cp.unchanged, cp.failed = (
            0,
            int(total),
            0,
            0,
            0,
            0,
        )
        cp.started_at, cp.updated_at, cp.finished_at = now, now, None
    return cp


def catch_up(
    *,
    name: str = "catch-up",
    batch_size: int | None = None,
    max_batches: int | None = None,
    reset: bool = False,
    client: PortalClient | None = None,
    on_batch: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """Sync the whole backlog in batches, resuming from the stored checkpoint.

    ``reset`` starts from the first dossier again (unchanged dossiers are skipped by hash anyway).
    Raises :class:`PortalError` after committing the progress made when the portal goes away.
    """
    settings = PortalSettings()
    size = batch_size or settings.batch_size
    own = client is None
    client = client or PortalClient(settings)
    try:
        with session_scope() as s:
            cp = _checkpoint(s, name, reset=reset)
            if cp.finished_at is not None and not reset:
                cp = _checkpoint(s, name, reset=True)
            report = SyncReport(
                name,
                total=cp.total,
                processed=cp.processed,
                sent=cp.sent,
                unchanged=cp.unchanged,
                rejected=cp.failed,
                last_id=cp.last_id,
            )
        batches = 0
        while max_batches is None or batches < max_batches:
            with session_scope() as s:
                rows = (
                    s.execute(
                        select(DossierRow)
                        .where(DossierRow.id > report.last_id, _eligible())
                        .order_by(DossierRow.id)
                        .limit(size)
                    )
                    .scalars()
                    .all()
                )
                batch_cp = s.get(PortalCheckpoint, name, with_for_update=True)
                assert batch_cp is not None
                cp = batch_cp
                outage = (
                    process_batch(s, client, rows, report, concurrency=settings.concurrency)
                    if rows
                    else None
                )
                cp.last_id, cp.processed, cp.sent = report.last_id, report.processed, report.sent
                cp.unchanged, cp.failed, cp.updated_at = (
                    report.unchanged,
                    report.rejected,
                    get_clock().now(),
                )
                if not rows:
                    cp.finished_at = get_clock().now()
                    report.finished = True
            batches += 1
            if on_batch is not None:
                on_batch(report)
            if outage is not None:
                report.error = outage.message
                raise outage
            if report.finished:
                break
        return report
    finally:
        if own:
            client.close()


def _changed_ids(session: Session, since: datetime | None) -> list[int]:
    if since is None:
        return list(
            session.execute(
                select(DossierRow.id).where(_eligible()).order_by(DossierRow.id)
            ).scalars()
        )
    touched = select(DossierRow.id).where(
        _eligible(),
        or_(
            DossierRow.updated_at >= since,
            DossierRow.id.in_(
                select(StepRow.dossier_id).where(
                    or_(StepRow.started_at >= since, StepRow.finished_at >= since)
                )
            ),
            DossierRow.id.in_(select(StatusHistory.dossier_id).where(StatusHistory.at >= since)),
            DossierRow.id.in_(
                select(PortalSyncRow.dossier_id).where(PortalSyncRow.state != "acked")
            ),
        ),
    )
    return sorted(set(session.execute(touched).scalars()))


def sync_changed(
    *,
    client: PortalClient | None = None,
    batch_size: int | None = None,
    on_batch: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """The hourly run: dossiers touched since the previous run (with a small overlap), and any
    the portal has not acknowledged; the watermark moves only when the run completes."""
    settings = PortalSettings()
    size = batch_size or settings.batch_size
    started = get_clock().now()
    own = client is None
    client = client or PortalClient(settings)
    report = SyncReport(HOURLY)
    try:
        with session_scope() as s:
            cp = s.get(PortalCheckpoint, HOURLY)
            since = cp.finished_at - OVERLAP if cp is not None and cp.finished_at else None
            ids = _changed_ids(s, since)
        report.total = len(ids)
        for chunk in _chunks(ids, size):
            with session_scope() as s:
                rows = (
                    s.execute(
                        select(DossierRow).where(DossierRow.id.in_(chunk)).order_by(DossierRow.id)
                    )
                    .scalars()
                    .all()
                )
                outage = process_batch(s, client, rows, report, concurrency=settings.concurrency)
            if on_batch is not None:
                on_batch(report)
            if outage is not None:
                report.error = outage.message
                raise outage
        with session_scope() as s:
            cp = s.get(PortalCheckpoint, HOURLY, with_for_update=True)
            if cp is None:
                cp = PortalCheckpoint(
                    name=HOURLY,
                    last_id=0,
                    total=0,
                    processed=0,
                    sent=0,
                    unchanged=0,
                    failed=0,
                    started_at=started,
                    updated_at=started,
                )
                s.add(cp)
            cp.total, cp.processed, cp.sent = report.total, report.processed, report.sent
            cp.unchanged, cp.failed = report.unchanged, report.rejected
            cp.started_at, cp.updated_at, cp.finished_at = started, get_clock().now(), started
        report.finished = True
        return report
    finally:
        if own:
            client.close()


def _chunks(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield list(ids[i : i + size])


def sync_rate(session: Session, start: datetime, end: datetime) -> tuple[int, int]:
    """Indicator 1.4's numerator and denominator: acknowledged dossiers received in [start, end)."""
    received = select(DossierRow.id).where(
        DossierRow.received_at >= start, DossierRow.received_at < end, _eligible()
    )
    total = session.execute(select(func.count()).select_from(received.subquery())).scalar_one()
    synced = session.execute(
        select(func.count())
        .select_from(PortalSyncRow)
        .where(PortalSyncRow.state == "acked", PortalSyncRow.dossier_id.in_(received))
    ).scalar_one()
    return int(synced), int(total)
