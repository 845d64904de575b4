"""What the gateway does in the database: one transaction per accepted request.

The nonce, the inbox row (which holds the idempotency key) and, for a new dossier, the dossier
itself are written together; the answer is stored on the inbox row, so a redelivery gets it back
unchanged. A refused request still uses up its nonce: a replay of it is refused as a replay.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from lienthong.clock import get_clock
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, InboxRow, StepRow, SupplementRow
from lienthong.dossier import Status
from lienthong.gateway.errors import (
    Conflict,
    Forbidden,
    GatewayError,
    IdempotencyConflict,
    NotFound,
    ReplayedNonce,
)
from lienthong.gateway.models import GatewayNonce
from lienthong.gateway.schemas import (
    Accepted,
    DossierView,
    StepResultBody,
    StepView,
    SupplementBody,
    SupplementView,
)
from lienthong.gateway.settings import get_gateway_settings
from lienthong.payloads import Submission
from lienthong.privacy import mask_citizen_id, mask_ids_in_text, mask_name
from lienthong.reception import receive

log = logging.getLogger("lienthong.gateway")
# Without a gateway submission on record, these may still send a dossier's supplement.
DEFAULT_SENDERS = frozenset({"DVCQG", "MOT_CUA"})
CLOSED_STEP = ("done", "refused")


@dataclass(frozen=True)
class Delivery:
    """One authenticated request: who sent it, its one-time nonce and idempotency key."""

    agency: str
    nonce: str
    idempotency_key: str
    kind: str
    path: str
    digest: str


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def status_path(code: str) -> str:
    return f"/v1/dossiers/{code}"


def _insert(session: Session, table: Any, values: dict[str, Any], returning: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: None when the row exists. On PostgreSQL a
    concurrent insert of the same key waits for the other transaction, so two deliveries of one
    request never both get through."""
    conn = session.connection()  # Core on the session's connection: no ORM autoflush per statement
    ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)
    return conn.execute(ins.values(**values).on_conflict_do_nothing().returning(returning)).scalar()


class _Admission:
    """At most N transactions of this process in flight: threads fighting over the GIL slow
    down every transaction, and with it every lock holder."""

    def __init__(self) -> None:
        self._sem: threading.BoundedSemaphore | None = None
        self._lock = threading.Lock()

    def __call__(self) -> threading.BoundedSemaphore:
        if self._sem is None:
            with self._lock:
                if self._sem is None:
                    self._sem = threading.BoundedSemaphore(get_gateway_settings().db_concurrency)
        return self._sem


admission = _Admission()
Work = Callable[[Session], Answer]
Item = tuple[str, Delivery, Work, "Future[Answer]"]
DB_DOWN = (OperationalError, InterfaceError)
# Refusals decided before the request wrote anything but its nonce (which stays used).
CLEAN_REFUSALS = (Conflict, Forbidden, NotFound)


def _within(session: Session, delivery: Delivery, work: Work) -> Answer | GatewayError:
    """One request inside an open transaction: claim the nonce, then do the work. A clean
    refusal is returned (the transaction may go on); anything else propagates."""
    used = _insert(
        session,
        GatewayNonce.__table__,
        {"agency": delivery.agency, "nonce": delivery.nonce, "seen_at": datetime.now(UTC)},
        GatewayNonce.__table__.c.nonce,
    )
    if used is None:
        return ReplayedNonce(
            "this nonce was already used by the agency",
            message_vi="Yêu cầu bị gửi lại (nonce đã dùng); hãy ký lại với nonce mới.",
        )
    try:
        return work(session)
    except CLEAN_REFUSALS as exc:
        return exc


def _in_transaction(delivery: Delivery, work: Work) -> Answer:
    with admission(), session_scope() as s:
        outcome = _within(s, delivery, work)
        if isinstance(outcome, ReplayedNonce):
            raise outcome
    if isinstance(outcome, GatewayError):
        raise outcome
    return outcome


class DossierBatcher:
    """Group commit for new dossiers: every dossier takes its unit's daily numbering row lock
    (0001-9999 per day) and holds it until its commit is on disk, so one transaction per request
    caps intake at one fsync per dossier. A batch receives several dossiers in one transaction,
    one fsync for all; each request is still answered only after that commit. A batch that fails
    as a whole (a deadlock, an unexpected error) is redone one request per transaction."""

    def __init__(self, max_batch: int = 32, threads: int = 1) -> None:
        self.max_batch, self.threads = max_batch, threads
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()

    def submit(self, delivery: Delivery, work: Work, order: str = "") -> Future[Answer]:
        """Queue one request; ``order`` sorts a batch (the reception day: the numbering rows are
        then always locked in the same order, and two batches cannot deadlock on them)."""
        if not self._started:
            with self._lock:
                if not self._started:
                    for i in range(self.threads):
                        threading.Thread(target=self._loop, name=f"gateway-batch-{i}", daemon=True).start()
                    self._started = True
        future: Future[Answer] = Future()
        self._queue.put((order, delivery, work, future))
        return future

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch.sort(key=lambda item: item[0])
            self._run(batch)

    def _run(self, batch: list[Item]) -> None:
        outcomes: list[Answer | GatewayError] = []
        try:
            with session_scope() as s:
                for _, delivery, work, _ in batch:
                    outcomes.append(_within(s, delivery, work))
        except DB_DOWN as exc:  # nothing was stored: every sender is told to come back (503)
            for *_, future in batch:
                future.set_exception(exc)
            return
        except Exception as exc:  # e.g. a deadlock between two batches: one at a time instead
            log.info("batch of %d redone one by one: %s", len(batch), type(exc).__name__)
            for _, delivery, work, future in batch:
                try:
                    future.set_result(_in_transaction(delivery, work))
                except Exception as one:
                    future.set_exception(one)
            return
        for (*_, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, GatewayError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


def _existing(session: Session, d: Delivery) -> InboxRow | None:
    return session.execute(
        select(InboxRow).where(InboxRow.source == d.agency, InboxRow.idempotency_key == d.idempotency_key)
    ).scalar_one_or_none()


def _replay(row: InboxRow | None, d: Delivery) -> Answer:
    """The original answer for a redelivery; another request under the same key is a conflict."""
    assert row is not None
    if row.body_sha256 != d.digest or row.kind != d.kind or (row.payload or {}).get("path") != d.path:
        raise IdempotencyConflict(
            "this Idempotency-Key was used for a different request",
            message_vi="Khóa Idempotency-Key đã được dùng cho một yêu cầu khác.",
        )
    return Answer(202, dict(row.response or {}), replayed=True)


def _store_and_answer(session: Session, d: Delivery, payload: dict[str, Any], dossier_code: str,
                      accepted: Callable[[datetime], Accepted]) -> Answer:
    """Write the inbox row, then answer 202; a concurrent twin that won the insert is replayed."""
    now = get_clock().now()
    inbox_id = _new_inbox(session, d, payload, dossier_code, now)
    if inbox_id is None:
        return _replay(_existing(session, d), d)
    return _answer(session, inbox_id, accepted(now))


def _new_inbox(
    session: Session, d: Delivery, payload: dict[str, Any], dossier_code: str | None, now: datetime
) -> int | None:
    return _insert(
        session,
        InboxRow.__table__,
        {
            "source": d.agency,
            "idempotency_key": d.idempotency_key,
            "kind": d.kind,
            "body_sha256": d.digest,
            "payload": {"path": d.path, **payload},
            "dossier_code": dossier_code,
            "state": "pending",
            "attempts": 0,
            "received_at": now,
        },
        InboxRow.__table__.c.id,
    )


def _answer(session: Session, inbox_id: int, accepted: Accepted) -> Answer:
    body = accepted.model_dump(mode="json", exclude_none=True)
    inbox = InboxRow.__table__
    assert isinstance(inbox, Table)
    session.connection().execute(
        update(inbox).where(inbox.c.id == inbox_id).values(response=body, dossier_code=accepted.dossier_code)
    )
    return Answer(202, body)


def dossier_work(d: Delivery, submission: Submission, status_url: Callable[[str], str]) -> Work:
    """Store the submission and receive it as a dossier (code allocated) in one transaction."""

    def work(s: Session) -> Answer:
        now = get_clock().now()
        inbox_id = _new_inbox(s, d, {"body": submission.model_dump(mode="json")}, None, now)
        if inbox_id is None:
            return _replay(_existing(s, d), d)
        receipt = receive(submission, session=s, idempotency_key=f"{d.agency}:{d.idempotency_key}")
        return _answer(
            s,
            inbox_id,
            Accepted(
                kind="dossier",
                dossier_code=receipt.dossier_code,
                status_url=status_url(receipt.dossier_code),
                received_at=receipt.received_at,
                due_at=receipt.due_at,
            ),
        )

    return work


def accept_dossier(d: Delivery, submission: Submission, status_url: Callable[[str], str]) -> Answer:
    """Store the submission and receive it as a dossier (code allocated), in its own transaction."""
    return _in_transaction(d, dossier_work(d, submission, status_url))


def _dossier(session: Session, code: str) -> DossierRow:
    row = session.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one_or_none()
    if row is None:
        raise NotFound(
            f"no dossier {code}",
            code="dossier_not_found",
            message_vi=f"Không tìm thấy hồ sơ {code}.",
        )
    return row


def accept_supplement(d: Delivery, code: str, body: SupplementBody, status_url: Callable[[str], str]) -> Answer:
    """Store the citizen's supplement for the open request (round N); the relay resumes the run."""

    def work(s: Session) -> Answer:
        existing = _existing(s, d)
        if existing is not None:
            return _replay(existing, d)
        row = _dossier(s, code)
        senders = set(
            s.execute(
                select(InboxRow.source).where(InboxRow.kind == "dossier", InboxRow.dossier_code == code)
            ).scalars()
        ) or set(DEFAULT_SENDERS)
        if d.agency not in senders | {"MOT_CUA"}:
            raise Forbidden(
                f"{d.agency} did not send dossier {code}",
                code="not_dossier_sender",
                message_vi="Cơ quan gửi không phải nơi đã nộp hồ sơ này.",
            )
        if row.status != Status.SUPPLEMENT_REQUESTED:
            raise Conflict(
                f"dossier {code} is in status {row.status}, no supplement is requested",
                code="supplement_not_requested",
                message_vi="Hồ sơ không ở trạng thái yêu cầu bổ sung.",
            )
        round_no = int(
            s.execute(
                select(func.count()).select_from(SupplementRow).where(SupplementRow.dossier_id == row.id)
            ).scalar_one()
        )
        earlier = s.execute(
            select(InboxRow.payload).where(InboxRow.kind == "supplement", InboxRow.dossier_code == code)
        ).scalars()
        if any((p or {}).get("round") == round_no for p in earlier):
            raise Conflict(
                f"the supplement of round {round_no} was already received",
                code="supplement_already_received",
                message_vi="Hồ sơ bổ sung của lần yêu cầu này đã được tiếp nhận.",
            )
        payload = {"body": body.model_dump(mode="json", exclude_none=True), "round": round_no,
                   "run_input": body.run_input()}
        return _store_and_answer(s, d, payload, code, lambda now: Accepted(
            kind="supplement", dossier_code=code, status_url=status_url(code), received_at=now,
            round=round_no))

    return _in_transaction(d, work)


def accept_step_result(d: Delivery, step_ref: str, body: StepResultBody, status_url: Callable[[str], str]) -> Answer:
    """Store an agency's result for a step routed to it; only that step's agency may send it."""

    def work(s: Session) -> Answer:
        existing = _existing(s, d)
        if existing is not None:
            return _replay(existing, d)
        step = s.execute(select(StepRow).where(StepRow.ref == step_ref)).scalar_one_or_none()
        if step is None:
            raise NotFound(
                f"no step {step_ref}",
                code="step_not_found",
                message_vi="Không tìm thấy bước xử lý này.",
            )
        if step.agency != d.agency:
            raise Forbidden(
                f"{d.agency} is not the agency of step {step_ref}",
                code="agency_not_on_step",
                message_vi="Cơ quan gửi không tham gia bước xử lý này.",
            )
        if step.status in CLOSED_STEP:
            raise Conflict(
                f"step {step_ref} is already closed ({step.status})",
                code="step_closed",
                message_vi="Bước xử lý này đã kết thúc.",
            )
        code = s.execute(select(DossierRow.code).where(DossierRow.id == step.dossier_id)).scalar_one()
        if stored_step_result(step_ref, session=s) is not None:
            raise Conflict(
                f"a result for step {step_ref} was already received",
                code="step_result_already_received",
                message_vi="Kết quả của bước xử lý này đã được tiếp nhận.",
            )
        payload = {"body": body.model_dump(mode="json", exclude_none=True), "step_ref": step_ref,
                   "step_key": step.step_key}
        return _store_and_answer(s, d, payload, code, lambda now: Accepted(
            kind="step_result", dossier_code=code, status_url=status_url(code), received_at=now,
            step_id=step_ref))

    return _in_transaction(d, work)


def stored_step_result(step_ref: str, *, session: Session | None = None) -> dict[str, Any] | None:
    """The result an agency sent back for step ``step_ref`` (the StepRow's ``ref``), or None.

    The asynchronous agency path reads this before suspending, so a result that arrived first
    is never waited for."""
    if session is None:
        with session_scope() as s:
            return stored_step_result(step_ref, session=s)
    step = session.execute(select(StepRow.dossier_id).where(StepRow.ref == step_ref)).scalar()
    if step is None:
        return None
    code = session.execute(select(DossierRow.code).where(DossierRow.id == step)).scalar()
    for payload in session.execute(
        select(InboxRow.payload)
        .where(InboxRow.kind == "step_result", InboxRow.dossier_code == code)
        .order_by(InboxRow.id)
    ).scalars():
        if (payload or {}).get("step_ref") == step_ref:
            return dict(payload["body"])
    return None


def dossier_view(code: str) -> DossierView:
    """The sender's view of a dossier, with the open request for supplement (Form 02) if any."""
    with session_scope() as s:
        row = _dossier(s, code)
        steps = s.execute(select(StepRow).where(StepRow.dossier_id == row.id).order_by(StepRow.id)).scalars()
        supplements = (
            s.execute(select(SupplementRow).where(SupplementRow.dossier_id == row.id).order_by(SupplementRow.id))
            .scalars()
            .all()
        )
        status = Status(row.status)
        request = None
        if status == Status.SUPPLEMENT_REQUESTED and supplements:
            last = supplements[-1]
            request = SupplementView(
                round=len(supplements),
                phase=last.phase,
                requested_at=last.requested_at,
                completed_at=last.completed_at,
                lines=[mask_ids_in_text(str(i)) for i in last.items or []],
            )
        owner = Submission.model_validate(row.payload).owner() if row.payload else None
        return DossierView(
            dossier_code=row.code,
            procedure_id=row.procedure_id,
            procedure_code=row.procedure_code,
            status=int(status),
            status_label=status.label_vi,
            received_at=row.received_at,
            due_at=row.due_at,
            finished_at=row.finished_at,
            owner=mask_name(owner.full_name if owner else None),
            owner_citizen_id=mask_citizen_id(row.owner_citizen_id),
            run_started=row.flow_run_id is not None,
            steps=[
                StepView(
                    step=st.step_key,
                    agency=st.agency,
                    status=st.status,
                    due_at=st.due_at,
                    finished_at=st.finished_at,
                    verdict=st.verdict,
                )
                for st in steps
            ],
            supplement_request=request,
            reason=mask_ids_in_text(row.reason) if row.reason else None,
        )


def prune_nonces(older_than: timedelta) -> int:
    """Forget nonces older than ``older_than`` (at least twice the timestamp window)."""
    with session_scope() as s:
        cutoff = datetime.now(UTC) - older_than
        result = s.execute(delete(GatewayNonce).where(GatewayNonce.seen_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)
