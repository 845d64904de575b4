"""Validate a stored dossier, and apply a citizen's supplement to its payload.

Neither changes the dossier's status: moving to status 5 (supplement requested, clock stopped)
and back is the procedure flow's job through the dossier state machine.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lienthong.clock import get_clock
from lienthong.db import session_scope
from lienthong.db.models import ComponentRow, DossierRow, SupplementRow
from lienthong.errors import ExitCode, LienThongError
from lienthong.payloads import Submission
from lienthong.quality.validator import EngineName, validate_submission


class DossierNotFound(LienThongError, LookupError):
    code = "dossier_not_found"
    exit_code = ExitCode.NOT_FOUND


class SupplementRejected(LienThongError):
    """The supplement does not make a readable payload (wrong field path or type)."""

    code = "supplement_rejected"


def _row(session: Session, dossier_code: str) -> DossierRow:
    row = session.execute(
        select(DossierRow).where(DossierRow.code == dossier_code)
    ).scalar_one_or_none()
    if row is None:
        raise DossierNotFound(f"no dossier {dossier_code}",
                              message_vi=f"Không tìm thấy hồ sơ {dossier_code}.")
    return row


def validation_round(session: Session, row: DossierRow) -> int:
    """1 before any request for supplement, 2 after the first one, and so on."""
    asked = session.execute(
        select(func.count()).select_from(SupplementRow).where(SupplementRow.dossier_id == row.id)
    ).scalar_one()
    return 1 + int(asked)


def validate_stored_dossier(dossier_code: str, *, engine: EngineName = "gx") -> dict[str, Any]:
    """``{"ok", "lines_vi", "flags", "round", "failed_rules", "flags_vi"}`` for a stored dossier.

    ``round`` > 1 means the dossier already had a request for supplement: failures now are a
    second round (reported as such; they count against the agency in the service index)."""
    with session_scope() as session:
        row = _row(session, dossier_code)
        payload, due = with_held_components(session, row), row.due_at
        round_no = validation_round(session, row)
    submission = Submission.model_validate(payload)
    outcome = validate_submission(submission, dossier_code=dossier_code, appointment_at=due,
                                  engine=engine)
    result = outcome.as_dict()
    result["round"] = round_no
    result["second_round"] = round_no > 1 and not outcome.ok
    return result


def with_held_components(session: Session, row: DossierRow) -> dict[str, Any]:
    """The payload with the components the dossier actually holds: those the vault attached at
    intake (once-only reuse) count as submitted, so the citizen is not asked for them."""
    payload = copy.deepcopy(dict(row.payload))
    listed = {c.get("code") for c in payload.get("components", [])}
    held = session.execute(select(ComponentRow).where(ComponentRow.dossier_id == row.id,
                                                      ComponentRow.vault_address.is_not(None))).scalars()
    for c in held:
        if c.code not in listed:
            payload.setdefault("components", []).append(
                {"code": c.code, "name": c.name, "vault_address": c.vault_address})
    return payload


def _set_path(target: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = target
    for p in parts[:-1]:
        child = node.get(p)
        if child is None:
            child = node[p] = {}
        if not isinstance(child, dict):
            raise SupplementRejected(f"{path}: {p} is not an object",
                                     message_vi=f"Trường {path} không hợp lệ.")
        node = child
    node[parts[-1]] = value


def merge_supplement(payload: Mapping[str, Any], *, fields: Mapping[str, Any] | None = None,
                     new_payload: Mapping[str, Any] | None = None,
                     components: list[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The payload after a supplement: a full new payload, or corrected fields by dotted path
    (``{"child.sex": "female"}``), plus components added or replaced by code."""
    merged: dict[str, Any] = (copy.deepcopy(dict(new_payload)) if new_payload is not None
                              else copy.deepcopy(dict(payload)))
    for path, value in (fields or {}).items():
        _set_path(merged, path, value)
    if components:
        by_code = {c["code"]: dict(c) for c in merged.get("components", [])}
        for c in components:
            by_code[c["code"]] = dict(c)
        merged["components"] = list(by_code.values())
    try:
        return Submission.model_validate(merged).model_dump(mode="json")
    except ValidationError as exc:
        where = "; ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise SupplementRejected(f"supplement makes an unreadable payload at {where}",
                                 message_vi=f"Nội dung bổ sung không hợp lệ tại: {where}.") from exc


def apply_supplement(dossier_code: str, *, fields: Mapping[str, Any] | None = None,
                     new_payload: Mapping[str, Any] | None = None,
                     components: list[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Store the supplemented payload and its components; returns the new payload.

    A component of a new code gets a row. A component the citizen hands in again under a known
    code with another file (a legible scan instead of a blurred one) replaces the row's file: the
    row is received again, so that the next digitization reads the new file, and what was read
    from the old one is kept under ``meta["replaced"]``."""
    with session_scope() as session:
        row = _row(session, dossier_code)
        merged = merge_supplement(row.payload, fields=fields, new_payload=new_payload,
                                  components=components)
        now = get_clock().now()
        row.payload = merged
        row.updated_at = now
        known = {c.code: c for c in session.execute(
            select(ComponentRow).where(ComponentRow.dossier_id == row.id)).scalars()}
        for c in merged.get("components", []):
            old = known.get(c["code"])
            if old is None:
                session.add(ComponentRow(
                    dossier_id=row.id, code=c["code"], name=c["name"], file_ref=c.get("file"),
                    vault_address=c.get("vault_address"), paper=bool(c.get("paper")), meta={}))
            elif c.get("file") and c["file"] != old.file_ref:
                _replace_file(old, c, now.isoformat())
        return merged


def _replace_file(row: ComponentRow, given: Mapping[str, Any], at: str) -> None:
    meta = dict(row.meta or {})
    earlier = {k: meta.pop(k) for k in ("digitize", "supplement_reason") if k in meta}
    meta["replaced"] = [*meta.get("replaced", []), {
        "file_ref": row.file_ref, "status": row.status, "confidence": row.confidence, "at": at,
        **earlier}]
    row.file_ref, row.name = str(given["file"]), str(given.get("name") or row.name)
    row.paper = row.paper or bool(given.get("paper"))  # a paper component's new scan is paper too
    row.vault_address, row.reused, row.from_national_vault = None, False, False
    row.digitized, row.status, row.confidence, row.meta = False, "received", None, meta
