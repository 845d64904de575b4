"""The gateway's inbox: one transaction per accepted request.

The nonce, the inbox row (which holds the idempotency key) and what the request does are written
together; the answer is stored on the inbox row, so a redelivery gets it back unchanged. A refused
request still uses up its nonce: a replay of it is refused as a replay.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from lienthong.clock import get_clock
from lienthong.db import session_scope
from lienthong.db.models import InboxRow, table_of
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
)
from lienthong.gateway.settings import get_gateway_settings
from lienthong.reception import (
    insert_rows,
)

log = logging.getLogger("lienthong.gateway")


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


def _insert(session: Session, table: Any, values: dict[str, Any], returning: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: None when the row exists. On PostgreSQL a
    concurrent insert of the same key waits for the other transaction, so two deliveries of one
    request never both get through."""
    rows = insert_rows(session.connection(), table, [values], returning=(returning,), skip_conflicts=True)
    return getattr(rows[0], returning) if rows else None


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
DB_DOWN = (OperationalError, InterfaceError)
# Refusals decided before the request wrote anything but its nonce (which stays used).
CLEAN_REFUSALS = (Conflict, Forbidden, NotFound)


def replayed_nonce() -> ReplayedNonce:
    return ReplayedNonce(
        "this nonce was already used by the agency",
        message_vi="Yêu cầu bị gửi lại (nonce đã dùng); hãy ký lại với nonce mới.",
    )


def claim_nonces(session: Session, deliveries: list[Delivery]) -> list[bool]:
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


def in_transaction(delivery: Delivery, work: Work) -> Answer:
    """``work`` in its own transaction, after the delivery's nonce is claimed. A clean refusal
    commits the nonce (it stays used) and is raised; anything else rolls back."""
    with admission(), session_scope() as s:
        (fresh,) = claim_nonces(s, [delivery])
        if not fresh:
            raise replayed_nonce()
        try:
            outcome: Answer | GatewayError = work(s)
        except CLEAN_REFUSALS as exc:
            outcome = exc
    if isinstance(outcome, GatewayError):
        raise outcome
    return outcome


def existing(session: Session, d: Delivery) -> InboxRow | None:
    return session.execute(
        select(InboxRow).where(InboxRow.source == d.agency, InboxRow.idempotency_key == d.idempotency_key)
    ).scalar_one_or_none()


def replay(row: InboxRow | None, d: Delivery) -> Answer:
    """The original answer for a redelivery; another request under the same key is a conflict."""
    assert row is not None
    if row.body_sha256 != d.digest or row.kind != d.kind or (row.payload or {}).get("path") != d.path:
        raise IdempotencyConflict(
            "this Idempotency-Key was used for a different request",
            message_vi="Khóa Idempotency-Key đã được dùng cho một yêu cầu khác.",
        )
    return Answer(202, dict(row.response or {}), replayed=True)


def store_and_answer(session: Session, d: Delivery, payload: dict[str, Any], dossier_code: str,
                      accepted: Callable[[datetime], Accepted]) -> Answer:
    """Write the inbox row, then answer 202; a concurrent twin that won the insert is replayed."""
    now = get_clock().now()
    inbox_id = new_inbox(session, d, payload, dossier_code, now)
    if inbox_id is None:
        return replay(existing(session, d), d)
    return answer(session, inbox_id, accepted(now))


def new_inbox(
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
        "id",
    )


def answer(session: Session, inbox_id: int, accepted: Accepted) -> Answer:
    body = accepted.model_dump(mode="json", exclude_none=True)
    inbox = table_of(InboxRow)
    session.connection().execute(
        update(inbox).where(inbox.c.id == inbox_id).values(response=body, dossier_code=accepted.dossier_code)
    )
    return Answer(202, body)


def prune_nonces(older_than: timedelta) -> int:
    """Forget nonces older than ``older_than`` (at least twice the timestamp window)."""
    with session_scope() as s:
        cutoff = datetime.now(UTC) - older_than
        result = s.execute(delete(GatewayNonce).where(GatewayNonce.seen_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)
