"""Atomic, idempotent publication of a result: write its objects, then commit its index row.

The index row is the commit point. Objects go first under content-addressed keys and are durable
before the row (with its seal, its derivation links and its chain event) is written, in one database
transaction. If anything fails in between, the objects written are discarded (unless a committed
row refers to them); a crash that skips even that leaves orphans for ``vault-sweep``. Publishing
the same address twice returns the first row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lienthong.clock import get_clock
from lienthong.db import session_scope
from lienthong.vault.chain import append_event
from lienthong.vault.errors import PublicationConflict
from lienthong.vault.index import VaultResult
from lienthong.vault.lineage import correctable, link_inputs, supersede
from lienthong.vault.prepare import PreparedResult, ResultDraft, prepare_result
from lienthong.vault.references import discard_objects, lock_digests
from lienthong.vault.seal import Keyring, Seal
from lienthong.vault.store import Vault, sha256_hex


@dataclass(frozen=True)
class Committed:
    address: str
    created: bool
    flagged: list[str] = field(default_factory=list)


def write_objects(
    store: Vault, prepared: PreparedResult, written: list[str] | None = None
) -> list[str]:
    """Put the result's objects durably; returns (and appends to ``written``, as each is created)
    the keys this call created."""
    created = written if written is not None else []
    store.put_contents(prepared.objects(), digests=prepared.digests, created=created)
    return created


def _row_from(prepared: PreparedResult, seal: Seal) -> VaultResult:
    m = seal.document
    return VaultResult(
        address=m["address"],
        lineage=prepared.address.lineage,
        issuer=m["issuer"],
        result_code=m["result_code"],
        local_id=m["local_id"],
        version=m["version"],
        owner_citizen_id=m["owner_citizen_id"],
        name=m["name"],
        number=m["number"],
        issued_on=date.fromisoformat(m["issued_on"]),
        issuing_body=m["issuing_body"],
        signer=m["signer"],
        valid_until=date.fromisoformat(m["valid_until"]) if m["valid_until"] else None,
        permanent=m["permanent"],
        scope=m["scope"],
        summary=m["summary"],
        procedure_code=m["procedure_code"],
        source_dossier_code=m["source_dossier_code"],
        source_step=m["source_step"],
        supersedes=m["supersedes"],
        pdf_key=m["files"]["pdf"]["key"],
        pdf_sha256=m["files"]["pdf"]["sha256"],
        json_key=m["files"]["data"]["key"],
        json_sha256=m["files"]["data"]["sha256"],
        sealed=m,
        sealed_sha256=sha256_hex(seal.payload),
        signature=seal.signature,
        key_id=seal.key_id,
        published_at=get_clock().now(),
        status="valid",
        needs_reissue=False,
    )


def _check_objects(store: Vault, prepared: PreparedResult, created: list[str] | None) -> None:
    """Objects this publication did not create itself (written earlier by someone whose rollback
    may delete them) must still be there: checked under the digest locks, before the commit."""
    mine = set(created or ())
    missing = [k for k in prepared.keys if k not in mine and not store.exists(k)]
    if missing:
        raise PublicationConflict(
            f"{prepared.address}: objects {missing} vanished before the index row was written",
            message_vi="Tệp kết quả bị xóa đồng thời khi đang công bố; hãy công bố lại.",
        )


def commit_result(
    prepared: PreparedResult,
    *,
    store: Vault,
    keyring: Keyring,
    actor: str | None = None,
    reason: str | None = None,
    created: list[str] | None = None,
    session_url: str | None = None,
) -> Committed:
    """Seal the metadata and insert the index row, its links and its chain event(s) in one database
    transaction. An existing row at the same address wins: nothing is written and it is returned.
    A correction (``supersedes`` set) marks the old version superseded and flags what was issued
    from it. ``created``: keys this publication created itself; only the others are checked for
    existence under the lock."""
    seal = keyring.seal(prepared.address.issuer, prepared.metadata)
    address = str(prepared.address)
    actor = actor or prepared.address.issuer
    try:
        with session_scope(session_url) as s:
            lock_digests(s, prepared.digests)
            if s.scalar(select(VaultResult.id).where(VaultResult.address == address)) is not None:
                return Committed(address, created=False)  # committed while we waited for the lock
            _check_objects(store, prepared, created)
            supersedes = prepared.metadata["supersedes"]
            old = correctable(s, supersedes) if supersedes else None
            row = _row_from(prepared, seal)
            s.add(row)
            s.flush()
            link_inputs(s, row, prepared.inputs)
            append_event(
                s,
                kind="publish",
                address=address,
                actor=actor,
                dossier_code=row.source_dossier_code,
                procedure_code=row.procedure_code,
                detail={
                    "sealed_sha256": row.sealed_sha256,
                    "key_id": seal.key_id,
                    "files": {k: v["sha256"] for k, v in prepared.metadata["files"].items()},
                },
            )
            flagged = supersede(s, old, row, actor=actor, reason=reason) if old else []
            return Committed(address, created=True, flagged=flagged)
    except IntegrityError:
        # A concurrent publisher committed the same address first (unique constraint): theirs stands.
        with session_scope(session_url) as s:
            if s.scalar(select(VaultResult.id).where(VaultResult.address == address)) is not None:
                return Committed(address, created=False)
        raise


def publish(
    draft: ResultDraft,
    *,
    store: Vault,
    keyring: Keyring,
    actor: str | None = None,
    reason: str | None = None,
    session_url: str | None = None,
) -> Committed:
    """Prepare, write and commit in one call with compensation (outside Prefect: CLI, corrections,
    benchmarks). The flow runs the same steps inside a keyed Prefect transaction."""
    prepared = prepare_result(draft)
    written: list[str] = []
    try:
        write_objects(store, prepared, written)
        outcome = commit_result(
            prepared,
            store=store,
            keyring=keyring,
            actor=actor,
            reason=reason,
            created=written,
            session_url=session_url,
        )
    except BaseException:
        discard_objects(store, written, session_url)
        raise
    if not outcome.created and written:
        discard_objects(store, written, session_url)
    return outcome
