"""New dossiers through the inbox: each submission stored and received as a dossier (code
allocated, appointment set) in the transaction of its request, alone or with others (group commit).

Every dossier takes its unit's daily numbering row lock and holds it until its commit is on disk,
so one transaction per request caps intake at one fsync per dossier; the batcher receives several
in one transaction instead, each request still answered only after that commit.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import bindparam, update
from sqlalchemy.orm import Session

from lienthong.clock import get_clock
from lienthong.db import session_scope
from lienthong.db.models import InboxRow, table_of
from lienthong.gateway.errors import (
    GatewayError,
    IdempotencyConflict,
)
from lienthong.gateway.inbox import (
    CLEAN_REFUSALS,
    DB_DOWN,
    Answer,
    Delivery,
    Work,
    claim_nonces,
    existing,
    in_transaction,
    replay,
    replayed_nonce,
)
from lienthong.gateway.models import GatewayNonce
from lienthong.gateway.schemas import (
    Accepted,
)
from lienthong.payloads import Submission
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


Item = tuple[str, Delivery, Work, "Future[Answer]"]


def within_all(session: Session, items: list[tuple[Delivery, Work]]) -> list[Answer | GatewayError]:
    """Several requests inside one open transaction: their nonces claimed together, then new
    dossiers received together (a fixed number of statements for the lot) and any other work one
    by one. Clean refusals are returned per request; anything else propagates."""
    if session.connection().dialect.name == "postgresql" and all(isinstance(w, DossierWork) for _, w in items):
        return _dossiers_pg(session, [(d, w) for d, w in items if isinstance(w, DossierWork)])
    outcomes: list[Answer | GatewayError | None] = [None] * len(items)
    claimed = claim_nonces(session, [d for d, _ in items])
    dossiers: list[tuple[int, DossierWork]] = []
    for i, ((_, work), ok) in enumerate(zip(items, claimed, strict=True)):
        if not ok:
            outcomes[i] = replayed_nonce()
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
                outcomes = within_all(s, [(delivery, work) for _, delivery, work, _ in batch])
        except DB_DOWN as exc:  # nothing was stored: every sender is told to come back (503)
            for *_, future in batch:
                future.set_exception(exc)
            return
        except Exception as exc:  # e.g. a deadlock between two batches: one at a time instead
            log.info("batch of %d redone one by one: %s", len(batch), type(exc).__name__)
            for _, delivery, work, future in batch:
                try:
                    future.set_result(in_transaction(delivery, work))
                except Exception as one:
                    future.set_exception(one)
            return
        for (*_, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, GatewayError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


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
            outcomes[i] = replayed_nonce()  # the same nonce twice in one batch
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
            outcomes[i] = replayed_nonce()
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
    received = existing_receipts(session, keys) if on_record is None or on_record & set(keys) else {}
    planned = plan_receptions(items, received, payloads=[dumps[i] for i in new])
    number(session, planned)
    answers: dict[str, list[Any]] = {"id": [], "response": [], "code": []}
    for i, receipt in zip(new, receipts_of(items, planned, received), strict=True):
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
                outcomes[i] = replay(existing(session, w.delivery), w.delivery)
            except IdempotencyConflict as exc:
                outcomes[i] = exc
    return [o for o in outcomes if o is not None]


def accept_dossier(d: Delivery, submission: Submission, status_url: Callable[[str], str]) -> Answer:
    """Store the submission and receive it as a dossier (code allocated), in its own transaction."""
    return in_transaction(d, dossier_work(d, submission, status_url))
