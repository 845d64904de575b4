"""The append-only hash chain of vault events (publish, supersede, reuse).

Each event's hash is ``sha256(prev_hash || canonical(event))``; the single-row chain head holds the
newest hash, so removing, editing or reordering any entry, or cutting the tail, breaks verification.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from lienthong.clock import get_clock
from lienthong.db.models import table_of
from lienthong.vault.errors import VaultError
from lienthong.vault.index import GENESIS_HASH, VaultChainHead, VaultEvent
from lienthong.vault.seal import canonical_json

EVENT_KINDS = ("publish", "supersede", "reuse")


def utc(at: datetime) -> datetime:
    """UTC, microseconds kept; a naive value read back from SQLite is already UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def event_body(
    *,
    at: datetime,
    kind: str,
    address: str,
    actor: str,
    dossier_code: str | None,
    procedure_code: str | None,
    legal_basis: str | None,
    detail: dict[str, Any],
) -> dict[str, Any]:
    return {
        "at": utc(at).isoformat(),
        "kind": kind,
        "address": address,
        "actor": actor,
        "dossier_code": dossier_code,
        "procedure_code": procedure_code,
        "legal_basis": legal_basis,
        "detail": detail,
    }


def body_of(ev: VaultEvent) -> dict[str, Any]:
    """What a stored event's hash covers (see :func:`event_body`)."""
    return event_body(at=ev.at, kind=ev.kind, address=ev.address, actor=ev.actor,
                      dossier_code=ev.dossier_code, procedure_code=ev.procedure_code,
                      legal_basis=ev.legal_basis, detail=ev.detail)


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(body)).hexdigest()


def _take_head(session: Session) -> tuple[str, int]:
    """Lock the chain head for this transaction: ``(last hash, length)``. An UPDATE takes the row's
    lock on PostgreSQL and the database's write lock on SQLite, so this one statement serialises
    appenders on both. The head row is written by the migrations (at the genesis hash)."""
    head = table_of(VaultChainHead)
    taken = session.execute(
        update(head)
        .where(head.c.id == 1)
        .values(length=head.c.length)
        .returning(head.c.last_hash, head.c.length)
    ).one_or_none()
    if taken is None:
        raise VaultError(
            "the vault chain has no head row: run `lienthong db upgrade`",
            message_vi="Cơ sở dữ liệu kho kết quả chưa được nâng cấp.",
        )
    return str(taken.last_hash), int(taken.length)


def append_event(
    session: Session,
    *,
    kind: str,
    address: str,
    actor: str,
    dossier_code: str | None = None,
    procedure_code: str | None = None,
    legal_basis: str | None = None,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> VaultEvent:
    """Append one event inside the caller's transaction (it commits with the caller's rows)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown vault event kind {kind!r}")
    last_hash, length = _take_head(session)
    at = utc(at or get_clock().now())
    detail = detail or {}
    body = event_body(
        at=at,
        kind=kind,
        address=address,
        actor=actor,
        dossier_code=dossier_code,
        procedure_code=procedure_code,
        legal_basis=legal_basis,
        detail=detail,
    )
    new_hash = chain_hash(last_hash, body)
    event = VaultEvent(
        at=at,
        kind=kind,
        address=address,
        actor=actor,
        dossier_code=dossier_code,
        procedure_code=procedure_code,
        legal_basis=legal_basis,
        detail=detail,
        prev_hash=last_hash,
        hash=new_hash,
    )
    session.add(event)
    session.flush()
    head = table_of(VaultChainHead)
    session.execute(
        update(head).where(head.c.id == 1).values(last_hash=new_hash, length=length + 1)
    )
    return event


@dataclass(frozen=True)
class ChainProblem:
    seq: int | None
    detail: str


def verify_chain(session: Session) -> tuple[list[ChainProblem], list[VaultEvent]]:
    """Walk the chain from the genesis hash; return the problems found and the events read."""
    problems: list[ChainProblem] = []
    events = list(session.execute(select(VaultEvent).order_by(VaultEvent.seq)).scalars())
    prev = GENESIS_HASH
    for ev in events:
        body = body_of(ev)
        if ev.prev_hash != prev:
            problems.append(
                ChainProblem(
                    ev.seq,
                    f"event {ev.seq} does not follow the event before it "
                    "(an entry was removed, inserted or reordered)",
                )
            )
        if chain_hash(ev.prev_hash, body) != ev.hash:
            problems.append(
                ChainProblem(ev.seq, f"event {ev.seq} ({ev.kind} {ev.address}) was altered")
            )
        prev = ev.hash
    head = session.get(VaultChainHead, 1)
    if head is None:
        if events:
            problems.append(ChainProblem(None, "the chain head is missing"))
    else:
        if head.last_hash != prev:
            problems.append(
                ChainProblem(
                    None,
                    "the chain head does not match the last event (events were cut from the end)",
                )
            )
        if head.length != len(events):
            problems.append(
                ChainProblem(
                    None, f"the chain head counts {head.length} events, the log holds {len(events)}"
                )
            )
    return problems, events
