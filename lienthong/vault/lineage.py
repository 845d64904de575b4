"""The derivation graph of results: what was issued from what (the links a publication records),
and what a correction does to it: the old version is superseded and every valid result issued from
it, directly or transitively, is flagged for re-issue."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienthong.vault.chain import append_event
from lienthong.vault.errors import ResultNotFound, VaultError
from lienthong.vault.index import VaultLink, VaultResult


def downstream_of(session: Session, address: str) -> list[VaultResult]:
    """Results issued (directly or transitively) from ``address``, through the derivation links."""
    seen: dict[str, VaultResult] = {}
    frontier = [address]
    while frontier:
        rows = (
            session.execute(
                select(VaultResult)
                .join(VaultLink, VaultLink.result_id == VaultResult.id)
                .where(VaultLink.input_address.in_(frontier))
            )
            .scalars()
            .all()
        )
        frontier = []
        for r in rows:
            if r.address not in seen and r.address != address:
                seen[r.address] = r
                frontier.append(r.address)
    return sorted(seen.values(), key=lambda r: r.id)


def link_inputs(session: Session, row: VaultResult, inputs: tuple[str, ...]) -> None:
    """Record the results ``row`` was issued from."""
    for inp in inputs:
        session.add(VaultLink(result_id=row.id, input_address=inp))


def correctable(session: Session, address: str) -> VaultResult:
    """The result a correction supersedes, locked for the transaction: it must exist and still be
    the valid version."""
    old = session.execute(
        select(VaultResult).where(VaultResult.address == address).with_for_update()
    ).scalar_one_or_none()
    if old is None:
        raise ResultNotFound(
            f"{address} is not in the vault",
            message_vi="Không tìm thấy kết quả cần đính chính trong kho.",
        )
    if old.status != "valid":
        raise VaultError(
            f"{old.address} is already {old.status}; correct {old.superseded_by}",
            message_vi="Kết quả này đã được thay thế; hãy đính chính phiên bản mới nhất.",
        )
    return old


def supersede(
    session: Session, old: VaultResult, new: VaultResult, *, actor: str, reason: str | None
) -> list[str]:
    """Mark ``old`` superseded by ``new``, flag what was issued from it, and record the supersede
    event in the chain; returns the addresses flagged for re-issue."""
    old.status, old.superseded_by = "superseded", new.address
    flagged: list[str] = []
    for d in downstream_of(session, old.address):
        if d.status == "valid":
            d.needs_reissue = True
            d.reissue_reason = (
                f"issued from {old.address}, superseded by {new.address}: {reason or ''}".strip()
            )
            flagged.append(d.address)
    append_event(
        session,
        kind="supersede",
        address=old.address,
        actor=actor,
        dossier_code=new.source_dossier_code,
        procedure_code=new.procedure_code,
        detail={"superseded_by": new.address, "reason": reason or "", "flagged": flagged},
    )
    return flagged
