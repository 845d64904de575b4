"""Verification: re-hash objects, check seals against the index columns and agency keys, walk the
event chain, and compare each result's life-cycle state with the chain; report what was tampered."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienthong.db import session_scope
from lienthong.vault.address import parse_address
from lienthong.vault.chain import utc, verify_chain
from lienthong.vault.errors import ObjectMissing, ResultNotFound
from lienthong.vault.index import VaultEvent, VaultResult
from lienthong.vault.prepare import SEALED_COLUMNS
from lienthong.vault.seal import Keyring, seal_bytes, seal_digest
from lienthong.vault.store import Vault, object_key, sha256_hex


@dataclass(frozen=True)
class Problem:
    address: str | None
    kind: str  # object | row | seal | chain | state
    detail: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.address or '-'}: {self.detail}"


@dataclass
class Report:
    results_checked: int = 0
    events_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _column_value(row: VaultResult, name: str) -> object:
    value = getattr(row, name)
    return value.isoformat() if isinstance(value, date) else value


def verify_row(
    row: VaultResult,
    events: list[VaultEvent],
    *,
    store: Vault,
    keyring: Keyring,
    check_objects: bool = True,
) -> list[Problem]:
    problems: list[Problem] = []
    a = row.address
    sealed = row.sealed or {}
    if seal_digest(sealed) != row.sealed_sha256:
        problems.append(Problem(a, "seal", "sealed metadata differs from its recorded hash"))
    recorded = sealed.get("seal")
    if isinstance(recorded, dict) and recorded.get("key_id") != row.key_id:
        problems.append(Problem(a, "row", "key id differs from the one in the seal"))
    published = [e for e in events if e.kind == "publish"]
    event = next((e for e in published if e.detail.get("sealed_sha256") == row.sealed_sha256), None)
    # When it was sealed, as the chain (not the editable row) says: the key must have been valid then.
    at = utc(event.at) if event is not None else None
    why = keyring.verify(row.issuer, seal_bytes(sealed), row.signature, row.key_id, at=at)
    if why:
        problems.append(Problem(a, "seal", why))
    for name in SEALED_COLUMNS:
        if _column_value(row, name) != sealed.get(name):
            problems.append(Problem(a, "row", f"column {name} differs from the sealed metadata"))
    files = sealed.get("files", {})
    for role, key_col, sha_col in (
        ("pdf", "pdf_key", "pdf_sha256"),
        ("data", "json_key", "json_sha256"),
    ):
        entry = files.get(role, {})
        key, sha = getattr(row, key_col), getattr(row, sha_col)
        if entry.get("sha256") != sha or entry.get("key") != key or key != object_key(sha):
            problems.append(
                Problem(a, "row", f"{role} file reference differs from the sealed metadata")
            )
        if check_objects:
            try:
                actual = sha256_hex(store.get(key))
            except ObjectMissing:
                problems.append(Problem(a, "object", f"{role} object {key} is missing"))
                continue
            if actual != entry.get("sha256"):
                problems.append(
                    Problem(a, "object", f"{role} object {key} was altered (sha256 {actual[:12]}…)")
                )
    if event is None:
        problems.append(
            Problem(a, "chain", "no publish event in the chain matches this result's seal")
        )
    superseded = [e for e in events if e.kind == "supersede"]
    if superseded:
        by = superseded[-1].detail.get("superseded_by")
        if row.status != "superseded" or row.superseded_by != by:
            problems.append(
                Problem(
                    a, "state", f"the chain says superseded by {by}, the index says {row.status}"
                )
            )
    elif row.status != "valid":
        problems.append(
            Problem(a, "state", f"the index says {row.status}, the chain has no supersede event")
        )
    return problems


def events_by_address(
    session: Session, addresses: list[str] | None = None
) -> dict[str, list[VaultEvent]]:
    q = select(VaultEvent).order_by(VaultEvent.seq)
    if addresses is not None:
        q = q.where(VaultEvent.address.in_(addresses))
    out: dict[str, list[VaultEvent]] = defaultdict(list)
    for e in session.execute(q).scalars():
        out[e.address].append(e)
    return out


def verify_vault(
    address: str | None = None,
    *,
    store: Vault,
    keyring: Keyring,
    session_url: str | None = None,
    check_objects: bool = True,
) -> Report:
    """Verify one result (``address``) or every result, and the whole event chain either way."""
    report = Report()
    with session_scope(session_url) as s:
        chain_problems, events = verify_chain(s)
        report.events_checked = len(events)
        report.problems += [Problem(None, "chain", p.detail) for p in chain_problems]
        by_address: dict[str, list[VaultEvent]] = defaultdict(list)
        for e in events:
            by_address[e.address].append(e)
        if address is not None:
            parse_address(address)
            rows = list(
                s.execute(select(VaultResult).where(VaultResult.address == address)).scalars()
            )
            if not rows:
                raise ResultNotFound(
                    f"{address} is not in the vault index",
                    message_vi="Không tìm thấy kết quả trong kho.",
                )
        else:
            rows = list(s.execute(select(VaultResult).order_by(VaultResult.id)).scalars())
            indexed = {r.address for r in rows}
            for a, evs in by_address.items():
                if a not in indexed and any(e.kind == "publish" for e in evs):
                    report.problems.append(
                        Problem(a, "row", "published in the chain, missing from the index")
                    )
        for row in rows:
            report.problems += verify_row(
                row,
                by_address.get(row.address, []),
                store=store,
                keyring=keyring,
                check_objects=check_objects,
            )
        report.results_checked = len(rows)
    return report
