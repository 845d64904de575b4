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

import orjson
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from lienthong.clock import get_clock
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, InboxRow, StepRow, SupplementRow, table_of
from lienthong.dossier import Status
from lienthong.gateway.errors import (
    Conflict,
    Forbidden,
    GatewayError,
    IdempotencyConflict,
    InvalidPayload,
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
from lienthong.reception import (
    existing_receipts,
    insert_rows,
    number,
    plan_receptions,
    receipts_of,
    unnest,
    write_new,
)

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
    return _within_all(session, [(delivery, work)])[0]


def _replayed_nonce() -> ReplayedNonce:
    return ReplayedNonce(
        "this nonce was already used by the agency",
        message_vi="Yêu cầu bị gửi lại (nonce đã dùng); hãy ký lại với nonce mới.",
    )


def _claim_nonces(session: Session, deliveries: list[Delivery]) -> list[bool]:
    """Claim every delivery's nonce in one statement; False for a nonce already used (before, by
    another transaction, or earlier in this list). On PostgreSQL a nonce being claimed by a
    concurrent transaction waits for it, so a replay racing its original never gets through."""
    table = table_of(GatewayNonce)
    seen_at = datetime.now(UTC)
    wanted = sorted({(d.agency, d.nonce) for d in deliveries})  # one lock order for every batch
    rows = [{"agency": a, "nonce": n, "seen_at": seen_at} for a, n in wanted]
    written = insert_rows(session.connection(), table, rows, returning=("agency", "nonce"), skip_conflicts=True)
    fresh = {(r.agency, r.nonce) for r in written}
    out = []
    for d in deliveries:
        out.append((d.agency, d.nonce) in fresh)
        fresh.discard((d.agency, d.nonce))  # a second use within the batch is a replay too
    return out


def _within_all(session: Session, items: list[tuple[Delivery, Work]]) -> list[Answer | GatewayError]:
    """Several requests inside one open transaction: their nonces claimed together, then new
    dossiers received together (a fixed number of statements for the lot) and any other work one
    by one. Clean refusals are returned per request; anything else propagates."""
    if session.connection().dialect.name == "postgresql" and all(isinstance(w, DossierWork) for _, w in items):
        return _dossiers_pg(session, [(d, w) for d, w in items if isinstance(w, DossierWork)])
    outcomes: list[Answer | GatewayError | None] = [None] * len(items)
    claimed = _claim_nonces(session, [d for d, _ in items])
    dossiers: list[tuple[int, DossierWork]] = []
    for i, ((_, work), ok) in enumerate(zip(items, claimed, strict=True)):
        if not ok:
            outcomes[i] = _replayed_nonce()
        elif isinstance(work, DossierWork):
            dossiers.append((i, work))
        else:
            try:
                outcomes[i] = work(session)
            except CLEAN_REFUSALS as exc:
                outcomes[i] = exc
    if dossiers:
        for (i, _), outcome in zip(dossiers, _receive_dossiers(session, [w for _, w in dossiers]), strict=True):
            outcomes[i] = outcome
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


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
                outcomes = _within_all(s, [(delivery, work) for _, delivery, work, _ in batch])
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
    inbox = table_of(InboxRow)
    session.connection().execute(
        update(inbox).where(inbox.c.id == inbox_id).values(response=body, dossier_code=accepted.dossier_code)
    )
    return Answer(202, body)


class DossierWork:
    """Store a submission and receive it as a dossier (code allocated), within the transaction.

    Called alone it does one dossier; the batcher gives all the dossiers of a batch to
    :func:`_receive_dossiers` at once instead, so a batch costs a fixed number of statements."""

    def __init__(self, d: Delivery, submission: Submission, status_url: Callable[[str], str]) -> None:
        self.delivery, self.submission, self.status_url = d, submission, status_url

    def __call__(self, session: Session) -> Answer:
        outcome = _receive_dossiers(session, [self])[0]
        if isinstance(outcome, GatewayError):
            raise outcome
        return outcome


def dossier_work(d: Delivery, submission: Submission, status_url: Callable[[str], str]) -> Work:
    """Store the submission and receive it as a dossier (code allocated) in one transaction."""
    return DossierWork(d, submission, status_url)


def _inbox_row(w: DossierWork, dump: dict[str, Any], now: datetime) -> dict[str, Any]:
    d = w.delivery
    return {
        "source": d.agency, "idempotency_key": d.idempotency_key, "kind": d.kind, "body_sha256": d.digest,
        "payload": {"path": d.path, "body": dump}, "dossier_code": None, "state": "pending", "attempts": 0,
        "received_at": now,
    }


def _receive_dossiers(session: Session, works: list[DossierWork]) -> list[Answer | GatewayError]:
    """New dossiers, nonces already claimed: their inbox rows in one statement; a key already on
    record (or twice in the batch) gets the original answer, the others become dossiers together."""
    inbox = table_of(InboxRow)
    now = get_clock().now()
    dumps = [w.submission.model_dump(mode="json") for w in works]
    first: dict[tuple[str, str], int] = {}
    for i, w in enumerate(works):
        first.setdefault((w.delivery.agency, w.delivery.idempotency_key), i)
    order = sorted(first.values(), key=lambda i: (works[i].delivery.agency, works[i].delivery.idempotency_key))
    written = insert_rows(session.connection(), inbox, [_inbox_row(works[i], dumps[i], now) for i in order],
                          returning=("id", "source", "idempotency_key"), skip_conflicts=True)
    inserted = {(r.source, r.idempotency_key): r.id for r in written}
    fresh = {i: inserted[(w.delivery.agency, w.delivery.idempotency_key)] for i, w in enumerate(works)
             if first[(w.delivery.agency, w.delivery.idempotency_key)] == i
             and (w.delivery.agency, w.delivery.idempotency_key) in inserted}
    return _receive_fresh(session, works, dumps, fresh, None)


def _dossiers_pg(session: Session, items: list[tuple[Delivery, DossierWork]]) -> list[Answer | GatewayError]:
    """New dossiers on PostgreSQL in four round trips for the whole batch: (1) the nonces, the
    inbox rows of the requests whose nonce was fresh, and a look for dossiers already under their
    keys, in one statement; (2) the numbering; (3) dossiers, history, components and the stored
    answers in one statement; (4) the commit. Each round trip of the batch thread also waits to
    get the GIL back from the event loop, so their number, not the SQL, set the batch's time."""
    conn = session.connection()
    works = [w for _, w in items]
    outcomes: list[Answer | GatewayError | None] = [None] * len(works)
    now, seen_at = get_clock().now(), datetime.now(UTC)
    dumps = [w.submission.model_dump(mode="json") for w in works]
    nonce_first: dict[tuple[str, str], int] = {}
    for i, w in enumerate(works):
        if nonce_first.setdefault((w.delivery.agency, w.delivery.nonce), i) != i:
            outcomes[i] = _replayed_nonce()  # the same nonce twice in one batch
    candidates = sorted(nonce_first.values(),
                        key=lambda i: (works[i].delivery.agency, works[i].delivery.idempotency_key, i))
    nonce_rows = [{"agency": a, "nonce": n, "seen_at": seen_at} for a, n in sorted(nonce_first)]
    inbox_rows = [{"_nonce": works[i].delivery.nonce, "_ord": i, **_inbox_row(works[i], dumps[i], now)}
                  for i in candidates]
    n_cols, n_unnest, params = unnest(table_of(GatewayNonce), nonce_rows, "n", conn.dialect)
    i_cols, i_unnest, i_params = unnest(table_of(InboxRow), inbox_rows, "i", conn.dialect,
                                        {"_nonce": "VARCHAR(128)", "_ord": "INTEGER"})
    params.update(i_params)
    params["keys"] = [f"{w.delivery.agency}:{w.delivery.idempotency_key}" for w in works]
    own = [c for c in i_cols if not c.startswith("_")]
    result = conn.exec_driver_sql(
        f"WITH n AS (INSERT INTO gateway_nonces ({', '.join(n_cols)}) SELECT * FROM {n_unnest} "
        f"ON CONFLICT DO NOTHING RETURNING agency, nonce), "
        f"i AS (INSERT INTO inbox ({', '.join(own)}) SELECT {', '.join('u.' + c for c in own)} "
        f"FROM {i_unnest} AS u({', '.join(i_cols)}) JOIN n ON n.agency = u.source AND n.nonce = u._nonce "
        f"ORDER BY u.source, u.idempotency_key, u._ord ON CONFLICT DO NOTHING "
        f"RETURNING id, source, idempotency_key) "
        f"SELECT 'n' AS k, agency AS a, nonce AS b, 0 AS id FROM n "
        f"UNION ALL SELECT 'i', source, idempotency_key, id FROM i "
        f"UNION ALL SELECT 'd', idempotency_key, '', 0 FROM dossiers "
        f"WHERE idempotency_key = ANY(%(keys)b::VARCHAR(200)[])",
        params,
    )
    claimed: set[tuple[str, str]] = set()
    inserted: dict[tuple[str, str], int] = {}
    on_record: set[str] = set()
    for k, a, b, row_id in result:
        if k == "n":
            claimed.add((a, b))
        elif k == "i":
            inserted[(a, b)] = row_id
        else:
            on_record.add(a)
    fresh: dict[int, int] = {}
    for i in sorted(candidates):
        d = works[i].delivery
        if (d.agency, d.nonce) not in claimed:
            outcomes[i] = _replayed_nonce()
        elif (d.agency, d.idempotency_key) in inserted:
            fresh[i] = inserted.pop((d.agency, d.idempotency_key))  # the first of its key: its row
    return _receive_fresh(session, works, dumps, fresh, on_record, outcomes)


def _receive_fresh(
    session: Session,
    works: list[DossierWork],
    dumps: list[dict[str, Any]],
    fresh: dict[int, int],
    on_record: set[str] | None,
    outcomes: list[Answer | GatewayError | None] | None = None,
) -> list[Answer | GatewayError]:
    """Receive the works with a fresh inbox row (``fresh``: index -> inbox id) as dossiers, store
    their answers on those rows, and answer every other work with its key's original answer (a
    redelivery) or a conflict. ``on_record``: the keys already on a dossier, when known."""
    conn = session.connection()
    outcomes = outcomes if outcomes is not None else [None] * len(works)
    new = sorted(fresh)
    items: list[tuple[Submission, str | None]] = [
        (works[i].submission, f"{works[i].delivery.agency}:{works[i].delivery.idempotency_key}") for i in new
    ]
    keys = [k for _, k in items if k]
    existing = existing_receipts(session, keys) if on_record is None or on_record & set(keys) else {}
    planned = plan_receptions(items, existing, payloads=[dumps[i] for i in new])
    number(session, planned)
    answers: dict[str, list[Any]] = {"id": [], "response": [], "code": []}
    for i, receipt in zip(new, receipts_of(items, planned, existing), strict=True):
        body = Accepted(
            kind="dossier", dossier_code=receipt.dossier_code, status_url=works[i].status_url(receipt.dossier_code),
            received_at=receipt.received_at, due_at=receipt.due_at,
        ).model_dump(mode="json", exclude_none=True)
        outcomes[i] = Answer(202, body)
        answers["id"].append(fresh[i])
        answers["response"].append(orjson.dumps(body).decode())
        answers["code"].append(receipt.dossier_code)
    if conn.dialect.name == "postgresql":  # the answers go in the same statement as the dossiers
        update_sql = ("UPDATE inbox SET response = v.response::json, dossier_code = v.code FROM unnest("
                      "%(a_id)b::INTEGER[], %(a_response)b::text[], %(a_code)b::VARCHAR(40)[]) "
                      "AS v(id, response, code) WHERE inbox.id = v.id")
        params = {f"a_{k}": v for k, v in answers.items()}
        if planned:
            write_new(conn, planned, also=(f"a AS ({update_sql})", params))
        elif answers["id"]:
            conn.exec_driver_sql(update_sql, params)
    else:
        write_new(conn, planned)
        inbox = table_of(InboxRow)
        if answers["id"]:
            conn.execute(
                update(inbox).where(inbox.c.id == bindparam("b_id"))
                .values(response=bindparam("b_response", type_=inbox.c.response.type),
                        dossier_code=bindparam("b_code")),
                [{"b_id": a, "b_response": orjson.loads(r), "b_code": c}
                 for a, r, c in zip(answers["id"], answers["response"], answers["code"], strict=True)],
            )
    for i, w in enumerate(works):  # redeliveries: after the answers above, so a twin in this batch sees its own
        if outcomes[i] is None:
            try:
                outcomes[i] = _replay(_existing(session, w.delivery), w.delivery)
            except IdempotencyConflict as exc:
                outcomes[i] = exc
    return [o for o in outcomes if o is not None]


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
        code, procedure_id, version, options = s.execute(
            select(DossierRow.code, DossierRow.procedure_id, DossierRow.procedure_version, DossierRow.options)
            .where(DossierRow.id == step.dossier_id)).one()
        _check_step_result(procedure_id, version, options, step.step_key, body)
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


def _check_step_result(procedure_id: str, version: str, options: Any, step_key: str,
                       body: StepResultBody) -> None:
    """A result the catalog cannot use is refused here (422), so the agency can correct and resend
    it, rather than stored and found unusable by the flow after the key has been spent."""
    from lienthong.catalog import get_catalog
    from lienthong.routing import result_problems, result_problems_vi

    plan = get_catalog().get(procedure_id, version=version).plan(options)
    spec = next((x for x in plan.steps if x.id == step_key), None)
    if spec is None:  # a step the catalog no longer has (changed since it opened): the flow decides
        return
    problems = result_problems(spec, body.model_dump(mode="json"))
    if problems:
        raise InvalidPayload(
            f"result for step {step_key} unusable: {'; '.join(problems)}", code="agency_result_invalid",
            message_vi=result_problems_vi(spec, problems), details=[{"msg": p} for p in problems],
        )


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
