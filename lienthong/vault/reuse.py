"""Once-only reuse at intake: components the catalog marks reusable (``reusable_result``), and
components the submitter pointed at in the vault, are attached by address instead of asked for."""

from __future__ import annotations

from typing import Any

from lienthong.catalog import get_catalog
from lienthong.db import session_scope
from lienthong.db.models import ComponentRow
from lienthong.errors import LienThongError
from lienthong.vault.access import legal_basis_text
from lienthong.vault.drafts import load_dossier, owner_of
from lienthong.vault.reads import Reuse, reuse_address, reuse_result
from lienthong.vault.seal import Keyring
from lienthong.vault.store import Vault


def _mark(row: ComponentRow, found: Reuse) -> None:
    row.vault_address = found.address
    row.reused = True  # DuocTaiSuDung
    row.from_national_vault = True  # DuocLayTuKhoDMQG: taken from the data vault, not uploaded
    row.status = "reused"
    row.meta = {**(row.meta or {}), "reused_from": found.address, "legal_basis": found.legal_basis}


def reuse_components(
    dossier_code: str, *, store: Vault, keyring: Keyring, session_url: str | None = None
) -> dict[str, Any]:
    """Attach reusable results to the dossier's components. Returns what was reused, what the
    citizen must still provide, and what was refused (with why)."""
    catalog = get_catalog()
    with session_scope(session_url) as s:
        dossier = load_dossier(s, dossier_code)
        proc = catalog.for_dossier(dossier)
        plan = proc.plan(dict(dossier.options or {}))
        # The reading agency is the first agency of the procedure that will use the component.
        agency = plan.steps[0].agency if plan.steps else proc.steps[0].agency
        owner = owner_of(dossier, None, {})
        rows = {c.code: c for c in dossier.components}
        pointed = [
            (c.code, c.vault_address)
            for c in dossier.components
            if c.vault_address and not c.reused
        ]
        component_names = {c.code: c.name for c in proc.components}
    basis = legal_basis_text(proc)
    outcome: dict[str, Any] = {"reused": [], "not_found": [], "refused": [], "agency": agency}
    done: dict[str, Reuse] = {}
    for code, address in pointed:
        try:
            found, why = reuse_address(
                address,
                owner_citizen_id=owner,
                agency=agency,
                procedure=proc,
                dossier_code=dossier_code,
                legal_basis=basis,
                store=store,
                keyring=keyring,
                session_url=session_url,
            )
        except LienThongError as exc:
            found, why = None, exc.message
        if found:
            done[code] = found
        else:
            outcome["refused"].append({"code": code, "address": address, "why": why})
    for spec in proc.components:
        if not spec.reusable_result or spec.code in done:
            continue
        existing = rows.get(spec.code)
        if existing is not None and (existing.file_ref or existing.vault_address):
            continue  # the citizen supplied it already
        found = None
        if owner:
            try:
                found = reuse_result(
                    owner,
                    spec.reusable_result,
                    agency=agency,
                    procedure=proc,
                    dossier_code=dossier_code,
                    legal_basis=basis,
                    store=store,
                    keyring=keyring,
                    session_url=session_url,
                )
            except LienThongError as exc:
                outcome["refused"].append({"code": spec.code, "address": None, "why": exc.message})
                continue
        if found:
            done[spec.code] = found
        else:
            outcome["not_found"].append(
                {"code": spec.code, "result_code": spec.reusable_result, "required": spec.required}
            )
    with session_scope(session_url) as s:
        dossier = load_dossier(s, dossier_code)
        rows = {c.code: c for c in dossier.components}
        for code, found in done.items():
            row = rows.get(code)
            if row is None:
                row = ComponentRow(
                    dossier_id=dossier.id,
                    code=code,
                    name=component_names.get(code, code),
                    paper=False,
                    digitized=False,
                    meta={},
                )
                s.add(row)
            _mark(row, found)
            outcome["reused"].append(
                {
                    "code": code,
                    "address": found.address,
                    "result_code": found.result_code,
                    "legal_basis": found.legal_basis,
                }
            )
    return outcome
