"""Atomic, idempotent publication of a result: prepare, write objects, commit the index row.

The index row is the commit point. Objects go first under content-addressed keys; the row (with its
seal and the chain event) last, in one database transaction. If anything fails in between, the
objects written are discarded (unless a committed row refers to them); a crash that skips even that
leaves orphans for ``vault-sweep``. Publishing the same address twice returns the first row.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lienthong.clock import get_clock
from lienthong.codes import parse_citizen_id, parse_result_code
from lienthong.db import session_scope
from lienthong.payloads import nfc
from lienthong.vault.address import VaultAddress
from lienthong.vault.chain import append_event
from lienthong.vault.errors import PublicationConflict, ResultNotFound, VaultError
from lienthong.vault.index import VaultLink, VaultResult
from lienthong.vault.render import render_result_pdf
from lienthong.vault.schemas import validate_result_data
from lienthong.vault.seal import Keyring, canonical_json, digest
from lienthong.vault.store import Vault, digest_of_key, object_key, sha256_hex

# Metadata fields that are both sealed and kept as index columns (verification compares them).
SEALED_COLUMNS = (
    "address",
    "issuer",
    "result_code",
    "local_id",
    "version",
    "owner_citizen_id",
    "name",
    "number",
    "issued_on",
    "issuing_body",
    "signer",
    "valid_until",
    "permanent",
    "scope",
    "summary",
    "procedure_code",
    "source_dossier_code",
    "source_step",
    "supersedes",
)


@dataclass(frozen=True)
class ResultDraft:
    """What an agency issued, before it is sealed: the data plus the metadata of Circular 01/2023."""

    issuer: str
    result_code: str
    name: str
    local_id: str
    data: dict[str, Any]
    owner_citizen_id: str
    procedure_code: str
    source_dossier_code: str
    issued_on: date
    issuing_body: str
    signer: str
    number: str
    source_step: str | None = None
    valid_until: date | None = None
    scope: str = "Toàn quốc"
    summary: str | None = None
    pdf: bytes | None = None
    inputs: tuple[str, ...] = ()
    version: int = 1
    supersedes: str | None = None


@dataclass(frozen=True)
class PreparedResult:
    address: VaultAddress
    metadata: dict[str, Any]
    pdf: bytes
    data_json: bytes
    inputs: tuple[str, ...] = ()

    def objects(self) -> list[tuple[bytes, str]]:
        return [(self.pdf, "application/pdf"), (self.data_json, "application/json")]

    @property
    def keys(self) -> list[str]:
        return [self.metadata["files"]["pdf"]["key"], self.metadata["files"]["data"]["key"]]


@dataclass(frozen=True)
class Committed:
    address: str
    created: bool
    flagged: list[str] = field(default_factory=list)


def _file_entry(data: bytes, content_type: str) -> dict[str, Any]:
    d = sha256_hex(data)
    return {"key": object_key(d), "sha256": d, "size": len(data), "content_type": content_type}


def prepare_result(draft: ResultDraft) -> PreparedResult:
    """Check the draft (codes, owner ID, data against its schema), render the PDF if none was
    supplied, and build the metadata document that will be sealed."""
    parse_result_code(draft.result_code)
    owner = str(parse_citizen_id(draft.owner_citizen_id))
    data = nfc(dict(draft.data))
    validate_result_data(draft.result_code, data)
    address = VaultAddress(draft.issuer, draft.result_code, draft.local_id, draft.version)
    meta: dict[str, Any] = nfc(
        {
            "address": str(address),
            "issuer": draft.issuer,
            "result_code": draft.result_code,
            "local_id": draft.local_id,
            "version": draft.version,
            "owner_citizen_id": owner,
            "name": draft.name,
            "number": draft.number,
            "issued_on": draft.issued_on.isoformat(),
            "issuing_body": draft.issuing_body,
            "signer": draft.signer,
            "valid_until": draft.valid_until.isoformat() if draft.valid_until else None,
            "permanent": draft.valid_until is None,
            "scope": draft.scope,
            "summary": draft.summary,
            "procedure_code": draft.procedure_code,
            "source_dossier_code": draft.source_dossier_code,
            "source_step": draft.source_step,
            "supersedes": draft.supersedes,
        }
    )
    pdf = draft.pdf if draft.pdf is not None else render_result_pdf(meta, data)
    if not pdf.startswith(b"%PDF"):
        raise VaultError(
            f"{address}: the supplied file is not a PDF",
            message_vi="Tệp kết quả gửi kèm không phải PDF.",
        )
    data_json = canonical_json(data)
    meta["files"] = {
        "pdf": _file_entry(pdf, "application/pdf"),
        "data": _file_entry(data_json, "application/json"),
    }
    return PreparedResult(address, meta, pdf, data_json, tuple(sorted(set(draft.inputs))))


def write_objects(
    store: Vault, prepared: PreparedResult, written: list[str] | None = None
) -> list[str]:
    """Put the result's objects; returns (and appends to ``written``) the keys this call created."""
    created = written if written is not None else []
    for data, content_type in prepared.objects():
        key, _digest, new = store.put_content(data, content_type=content_type)
        if new:
            created.append(key)
    return created


def lock_digests(session: Session, digests: list[str]) -> None:
    """Serialise writers and deleters of the same objects (PostgreSQL advisory locks, taken in order;
    SQLite has a single writer already)."""
    if session.get_bind().dialect.name != "postgresql" or not digests:
        return
    session.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(d, 0))) "
            "FROM (SELECT unnest(CAST(:ds AS text[])) AS d ORDER BY 1) AS sorted"
        ),
        {"ds": sorted(set(digests))},
    )


def _row_from(prepared: PreparedResult, signature: str, key_id: str) -> VaultResult:
    m = prepared.metadata
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
        sealed_sha256=digest(m),
        signature=signature,
        key_id=key_id,
        published_at=get_clock().now(),
        status="valid",
        needs_reissue=False,
    )


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
    A correction (``supersedes`` set) marks the old version superseded and flags what was issued from it.
    ``created``: keys this publication created itself; only the others (written earlier by someone
    whose rollback may delete them) are checked for existence under the lock."""
    address = str(prepared.address)
    try:
        with session_scope(session_url) as s:
            lock_digests(s, [f["sha256"] for f in prepared.metadata["files"].values()])
            if s.scalar(select(VaultResult.id).where(VaultResult.address == address)) is not None:
                return Committed(address, created=False)  # committed while we waited for the lock
            mine = set(created or ())
            missing = [k for k in prepared.keys if k not in mine and not store.exists(k)]
            if missing:
                raise PublicationConflict(
                    f"{address}: objects {missing} vanished before the index row was written",
                    message_vi="Tệp kết quả bị xóa đồng thời khi đang công bố; hãy công bố lại.",
                )
            signature, key_id = keyring.sign(
                prepared.address.issuer, canonical_json(prepared.metadata)
            )
            flagged: list[str] = []
            old: VaultResult | None = None
            if prepared.metadata["supersedes"]:
                old = s.execute(
                    select(VaultResult)
                    .where(VaultResult.address == prepared.metadata["supersedes"])
                    .with_for_update()
                ).scalar_one_or_none()
                if old is None:
                    raise ResultNotFound(
                        f"{prepared.metadata['supersedes']} is not in the vault",
                        message_vi="Không tìm thấy kết quả cần đính chính trong kho.",
                    )
                if old.status != "valid":
                    raise VaultError(
                        f"{old.address} is already {old.status}; correct {old.superseded_by}",
                        message_vi="Kết quả này đã được thay thế; hãy đính chính phiên bản mới nhất.",
                    )
            row = _row_from(prepared, signature, key_id)
            s.add(row)
            s.flush()
            for inp in prepared.inputs:
                s.add(VaultLink(result_id=row.id, input_address=inp))
            append_event(
                s,
                kind="publish",
                address=address,
                actor=actor or prepared.address.issuer,
                dossier_code=row.source_dossier_code,
                procedure_code=row.procedure_code,
                detail={
                    "sealed_sha256": row.sealed_sha256,
                    "key_id": key_id,
                    "files": {k: v["sha256"] for k, v in prepared.metadata["files"].items()},
                },
            )
            if old is not None:
                old.status, old.superseded_by = "superseded", address
                for d in downstream_of(s, old.address):
                    if d.status == "valid":
                        d.needs_reissue = True
                        d.reissue_reason = f"issued from {old.address}, superseded by {address}: {reason or ''}".strip()
                        flagged.append(d.address)
                append_event(
                    s,
                    kind="supersede",
                    address=old.address,
                    actor=actor or prepared.address.issuer,
                    dossier_code=row.source_dossier_code,
                    procedure_code=row.procedure_code,
                    detail={"superseded_by": address, "reason": reason or "", "flagged": flagged},
                )
            return Committed(address, created=True, flagged=flagged)
    except IntegrityError:
        # A concurrent publisher committed the same address first (unique constraint): theirs stands.
        with session_scope(session_url) as s:
            if s.scalar(select(VaultResult.id).where(VaultResult.address == address)) is not None:
                return Committed(address, created=False)
        raise


def discard_objects(store: Vault, keys: list[str], session_url: str | None = None) -> list[str]:
    """Delete objects written by a publication that did not commit, unless a committed row uses them
    (content-addressed keys are shared by identical files). Returns the keys deleted."""
    deleted: list[str] = []
    for key in keys:
        d = digest_of_key(key)
        if d is None:
            continue
        with session_scope(session_url) as s:
            lock_digests(s, [d])
            used = s.scalar(
                select(VaultResult.id)
                .where(or_(VaultResult.pdf_sha256 == d, VaultResult.json_sha256 == d))
                .limit(1)
            )
            if used is None:
                store.delete(key)
                deleted.append(key)
    return deleted


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
    benchmarks). The flow uses the same three steps inside a keyed Prefect transaction."""
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


def pdf_from(data: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """An agency may attach its own PDF to the data (``_pdf_base64`` or ``_pdf_path``): split it off."""
    data = dict(data)
    raw = data.pop("_pdf_base64", None)
    path = data.pop("_pdf_path", None)
    if raw:
        return data, base64.b64decode(raw)
    if path:
        from pathlib import Path

        return data, Path(path).read_bytes()
    return data, None
