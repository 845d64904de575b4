"""Reading the vault: look-ups by owner and result code, reads under the access rules, short-lived
URLs, and once-only reuse at intake. Every read is written to the access log; a reuse read also goes
into the event chain with its legal basis."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from lienthong.catalog import Procedure
from lienthong.clock import get_clock
from lienthong.db import session_scope
from lienthong.privacy import mask_citizen_id
from lienthong.vault.access import may_read
from lienthong.vault.address import parse_address
from lienthong.vault.chain import append_event
from lienthong.vault.errors import AccessDenied, ResultNotFound, VaultError
from lienthong.vault.index import VaultAccess, VaultResult
from lienthong.vault.seal import Keyring
from lienthong.vault.store import Vault, sha256_hex
from lienthong.vault.verify import events_by_address, verify_row


@dataclass(frozen=True)
class StoredResult:
    address: str
    metadata: dict[str, Any]
    status: str
    superseded_by: str | None
    needs_reissue: bool
    data: dict[str, Any] | None = None
    pdf: bytes | None = None


def result_row(session: Session, address: str) -> VaultResult:
    """The index row of ``address``; :class:`ResultNotFound` when the vault has no such result."""
    row = session.scalar(select(VaultResult).where(VaultResult.address == address))
    if row is None:
        raise ResultNotFound(f"{address} is not in the vault", message_vi="Không tìm thấy kết quả trong kho.")
    return row


def summary(row: VaultResult, *, mask: bool = True) -> dict[str, Any]:
    """One line of an operator listing (owner ID masked unless asked otherwise)."""
    return {
        "address": row.address,
        "result_code": row.result_code,
        "name": row.name,
        "owner": mask_citizen_id(row.owner_citizen_id) if mask else row.owner_citizen_id,
        "number": row.number,
        "issued_on": row.issued_on.isoformat(),
        "issuer": row.issuer,
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
        "status": row.status,
        "needs_reissue": row.needs_reissue,
        "source_dossier_code": row.source_dossier_code,
    }


def _log(
    session: Session,
    *,
    agency: str,
    address: str,
    purpose: str,
    granted: bool,
    reason: str | None,
    procedure_code: str | None = None,
    dossier_code: str | None = None,
    legal_basis: str | None = None,
) -> None:
    session.add(
        VaultAccess(
            at=get_clock().now(),
            agency=agency,
            address=address,
            purpose=purpose,
            granted=granted,
            reason=reason,
            procedure_code=procedure_code,
            dossier_code=dossier_code,
            legal_basis=legal_basis,
        )
    )


def _check_access(
    agency: str,
    row: VaultResult,
    purpose: str,
    *,
    procedure_code: str | None,
    dossier_code: str | None,
    legal_basis: str | None,
    session_url: str | None,
) -> str:
    allowed, why = may_read(agency, row.issuer, row.result_code)
    if not allowed:
        # The refusal is logged in its own transaction, so it survives the error raised below.
        with session_scope(session_url) as s:
            _log(
                s,
                agency=agency,
                address=row.address,
                purpose=purpose,
                granted=False,
                reason=why,
                procedure_code=procedure_code,
                dossier_code=dossier_code,
                legal_basis=legal_basis,
            )
        raise AccessDenied(
            f"{agency} may not read {row.address}: {why}",
            message_vi=f"Cơ quan {agency} không có quyền khai thác kết quả {row.result_code}.",
        )
    return why


def find_results(
    owner_citizen_id: str,
    result_code: str | None = None,
    *,
    valid_only: bool = False,
    on: date | None = None,
    session_url: str | None = None,
    session: Session | None = None,
) -> list[VaultResult]:
    """The owner's results (of one code), newest first; ``valid_only`` keeps reusable ones: current
    version, not flagged for re-issue, not expired on ``on``."""
    q = select(VaultResult).where(VaultResult.owner_citizen_id == owner_citizen_id)
    if result_code:
        q = q.where(VaultResult.result_code == result_code)
    if valid_only:
        day = on or get_clock().now().date()
        q = q.where(
            VaultResult.status == "valid",
            VaultResult.needs_reissue.is_(False),
            or_(VaultResult.valid_until.is_(None), VaultResult.valid_until >= day),
        )
    q = q.order_by(VaultResult.issued_on.desc(), VaultResult.id.desc())
    if session is not None:  # a long-lived caller (a service, the benchmark) brings its session
        return list(session.execute(q).scalars())
    with session_scope(session_url) as s:
        return list(s.execute(q).scalars())


@cache
def _reusable_query() -> Any:
    """The look-up statement, built once with bound parameters: building a select per call cost
    about as much as PostgreSQL's answer to it."""
    return (
        select(VaultResult.address)
        .where(
            VaultResult.owner_citizen_id == bindparam("owner"),
            VaultResult.result_code == bindparam("code"),
            VaultResult.status == "valid",
            VaultResult.needs_reissue.is_(False),
            or_(VaultResult.valid_until.is_(None), VaultResult.valid_until >= bindparam("day")),
        )
        .order_by(VaultResult.issued_on.desc(), VaultResult.id.desc())
    )


def reusable_addresses(
    owner_citizen_id: str,
    result_code: str,
    *,
    on: date | None = None,
    session: Session | None = None,
    session_url: str | None = None,
) -> list[str]:
    """The index look-up of once-only reuse: addresses of the owner's reusable results of a code,
    newest first (only the address column, served by the owner/code/status index)."""
    params = {
        "owner": owner_citizen_id,
        "code": result_code,
        "day": on or get_clock().now().date(),
    }
    if session is not None:
        return list(session.execute(_reusable_query(), params).scalars())
    with session_scope(session_url) as s:
        return list(s.execute(_reusable_query(), params).scalars())


def get_result(
    address: str,
    *,
    agency: str,
    store: Vault,
    with_data: bool = True,
    with_pdf: bool = False,
    purpose: str = "read",
    procedure_code: str | None = None,
    dossier_code: str | None = None,
    legal_basis: str | None = None,
    session_url: str | None = None,
) -> StoredResult:
    """Read a result under the access rules; the files are re-hashed against the seal on the way."""
    parse_address(address)
    with session_scope(session_url) as s:
        row = result_row(s, address)
    why = _check_access(
        agency,
        row,
        purpose,
        procedure_code=procedure_code,
        dossier_code=dossier_code,
        legal_basis=legal_basis,
        session_url=session_url,
    )
    data = pdf = None
    if with_data:
        raw = store.get(row.json_key)
        if sha256_hex(raw) != row.json_sha256:
            raise VaultError(
                f"{address}: data object altered",
                message_vi="Dữ liệu kết quả trong kho bị thay đổi.",
            )
        data = json.loads(raw)
    if with_pdf:
        pdf = store.get(row.pdf_key)
        if sha256_hex(pdf) != row.pdf_sha256:
            raise VaultError(
                f"{address}: PDF object altered",
                message_vi="Tệp PDF kết quả trong kho bị thay đổi.",
            )
    with session_scope(session_url) as s:
        _log(
            s,
            agency=agency,
            address=address,
            purpose=purpose,
            granted=True,
            reason=why,
            procedure_code=procedure_code,
            dossier_code=dossier_code,
            legal_basis=legal_basis,
        )
    return StoredResult(
        row.address, dict(row.sealed), row.status, row.superseded_by, row.needs_reissue, data, pdf
    )


def presigned_urls(
    address: str, *, agency: str, store: Vault, expires_seconds: int, session_url: str | None = None
) -> dict[str, str]:
    """Short-lived URLs of the result's PDF and data for an agency allowed to read it."""
    with session_scope(session_url) as s:
        row = result_row(s, address)
    why = _check_access(
        agency,
        row,
        "url",
        procedure_code=None,
        dossier_code=None,
        legal_basis=None,
        session_url=session_url,
    )
    urls = {
        "pdf": store.presigned_url(row.pdf_key, expires_seconds),
        "data": store.presigned_url(row.json_key, expires_seconds),
    }
    with session_scope(session_url) as s:
        _log(s, agency=agency, address=address, purpose="url", granted=True, reason=why)
    return urls


@dataclass(frozen=True)
class Reuse:
    address: str
    result_code: str
    legal_basis: str


def _try_reuse(
    row: VaultResult,
    *,
    agency: str,
    procedure: Procedure,
    dossier_code: str,
    legal_basis: str,
    store: Vault,
    keyring: Keyring,
    session_url: str | None,
) -> Reuse | None:
    _check_access(
        agency,
        row,
        "reuse",
        procedure_code=procedure.code,
        dossier_code=dossier_code,
        legal_basis=legal_basis,
        session_url=session_url,
    )
    with session_scope(session_url) as s:
        events = events_by_address(s, [row.address]).get(row.address, [])
    problems = verify_row(row, events, store=store, keyring=keyring)
    with session_scope(session_url) as s:
        if problems:
            # A result that fails verification is never reused: the citizen is asked instead.
            _log(
                s,
                agency=agency,
                address=row.address,
                purpose="reuse",
                granted=False,
                reason=("integrity: " + "; ".join(p.detail for p in problems))[:500],
                procedure_code=procedure.code,
                dossier_code=dossier_code,
                legal_basis=legal_basis,
            )
            return None
        _log(
            s,
            agency=agency,
            address=row.address,
            purpose="reuse",
            granted=True,
            reason="once-only reuse",
            procedure_code=procedure.code,
            dossier_code=dossier_code,
            legal_basis=legal_basis,
        )
        append_event(
            s,
            kind="reuse",
            address=row.address,
            actor=agency,
            dossier_code=dossier_code,
            procedure_code=procedure.code,
            legal_basis=legal_basis,
            detail={"result_code": row.result_code},
        )
    return Reuse(row.address, row.result_code, legal_basis)


def reuse_result(
    owner_citizen_id: str,
    result_code: str,
    *,
    agency: str,
    procedure: Procedure,
    dossier_code: str,
    legal_basis: str,
    store: Vault,
    keyring: Keyring,
    session_url: str | None = None,
) -> Reuse | None:
    """Once-only (chỉ cung cấp thông tin một lần): the owner's newest valid result of this code, if
    it verifies; the read is logged and chained with its legal basis. None: ask the citizen."""
    for address in reusable_addresses(owner_citizen_id, result_code, session_url=session_url):
        with session_scope(session_url) as s:
            row = s.scalar(select(VaultResult).where(VaultResult.address == address))
        if row is None:
            continue
        found = _try_reuse(
            row,
            agency=agency,
            procedure=procedure,
            dossier_code=dossier_code,
            legal_basis=legal_basis,
            store=store,
            keyring=keyring,
            session_url=session_url,
        )
        if found is not None:
            return found
    return None


def reuse_address(
    address: str,
    *,
    owner_citizen_id: str | None,
    agency: str,
    procedure: Procedure,
    dossier_code: str,
    legal_basis: str,
    store: Vault,
    keyring: Keyring,
    session_url: str | None = None,
) -> tuple[Reuse | None, str]:
    """A component the citizen pointed at in the vault: reused when it exists, is the current valid
    version, belongs to the dossier's subject and verifies. ``(reuse or None, why not)``."""
    parse_address(address)
    with session_scope(session_url) as s:
        row = s.scalar(select(VaultResult).where(VaultResult.address == address))
    if row is None:
        return None, "not in the vault"
    if row.status != "valid" or row.needs_reissue:
        return None, f"{row.status}{' (flagged for re-issue)' if row.needs_reissue else ''}"
    if row.valid_until is not None and row.valid_until < get_clock().now().date():
        return None, "expired"
    if owner_citizen_id and row.owner_citizen_id != owner_citizen_id:
        return None, "belongs to another person"
    found = _try_reuse(
        row,
        agency=agency,
        procedure=procedure,
        dossier_code=dossier_code,
        legal_basis=legal_basis,
        store=store,
        keyring=keyring,
        session_url=session_url,
    )
    return found, "" if found else "failed verification"
