"""Corrections (đính chính): a corrected result is a new version that supersedes the old one, which
stays readable. Results issued from the old version are flagged for re-issue."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import select

from lienthong.db import session_scope
from lienthong.vault.errors import VaultError
from lienthong.vault.index import VaultLink, VaultResult
from lienthong.vault.prepare import ResultDraft
from lienthong.vault.publish import Committed, publish
from lienthong.vault.reads import result_row
from lienthong.vault.seal import Keyring
from lienthong.vault.store import Vault

# Metadata an operator may correct besides the data itself.
CORRECTABLE = (
    "name",
    "number",
    "issued_on",
    "signer",
    "valid_until",
    "scope",
    "summary",
    "owner_citizen_id",
)


def correct_result(
    address: str,
    *,
    reason: str,
    actor: str,
    store: Vault,
    keyring: Keyring,
    data: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
    pdf: bytes | None = None,
    session_url: str | None = None,
) -> Committed:
    """Publish version n+1 of ``address`` with corrected data/metadata; returns the new address and
    the downstream results flagged for re-issue."""
    if not reason.strip():
        raise VaultError("a correction needs a reason", message_vi="Đính chính phải ghi rõ lý do.")
    with session_scope(session_url) as s:
        old = result_row(s, address)
        inputs = tuple(
            s.execute(
                select(VaultLink.input_address).where(VaultLink.result_id == old.id)
            ).scalars()
        )
    if old.status != "valid":
        raise VaultError(
            f"{address} is {old.status}; correct {old.superseded_by} instead",
            message_vi="Kết quả này đã được thay thế; hãy đính chính phiên bản mới nhất.",
        )
    m = old.sealed
    if data is None:
        data = json.loads(store.get(old.json_key))
    draft = ResultDraft(
        issuer=old.issuer,
        result_code=old.result_code,
        name=m["name"],
        local_id=old.local_id,
        data=data,
        owner_citizen_id=m["owner_citizen_id"],
        procedure_code=m["procedure_code"],
        source_dossier_code=m["source_dossier_code"],
        source_step=m["source_step"],
        issued_on=date.fromisoformat(m["issued_on"]),
        issuing_body=m["issuing_body"],
        signer=m["signer"],
        number=m["number"],
        valid_until=date.fromisoformat(m["valid_until"]) if m["valid_until"] else None,
        scope=m["scope"],
        summary=m["summary"],
        pdf=pdf,
        inputs=inputs,
        version=old.version + 1,
        supersedes=old.address,
    )
    unknown = set(changes or {}) - set(CORRECTABLE)
    if unknown:
        raise VaultError(
            f"cannot correct {sorted(unknown)}; correctable: {CORRECTABLE}",
            message_vi="Trường này không được đính chính.",
        )
    for k, v in (changes or {}).items():
        if k in ("issued_on", "valid_until") and isinstance(v, str):
            v = date.fromisoformat(v)
        draft = replace(draft, **{k: v})
    return publish(
        draft, store=store, keyring=keyring, actor=actor, reason=reason, session_url=session_url
    )


def flagged_for_reissue(*, session_url: str | None = None) -> list[VaultResult]:
    with session_scope(session_url) as s:
        return list(
            s.execute(
                select(VaultResult)
                .where(VaultResult.needs_reissue.is_(True))
                .order_by(VaultResult.id)
            ).scalars()
        )
