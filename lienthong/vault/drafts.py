"""Drafts of the results a finished step issued, built from the dossier, its step and the catalog.

The step's ``outputs`` hold the agency's data keyed by the catalog's output names; each catalog
``ResultSpec`` of the step names which output is a published result. Metadata the agency did not
send is derived: the issuing body from ``config/agencies.yaml``, the issue date from the step's end.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienthong.catalog import Procedure, get_catalog
from lienthong.clock import get_clock, localize
from lienthong.db.models import DossierRow, StepRow
from lienthong.errors import LienThongError
from lienthong.payloads import Submission
from lienthong.vault.address import local_id_for
from lienthong.vault.errors import VaultError
from lienthong.vault.index import VaultResult
from lienthong.vault.prepare import ResultDraft, pdf_from

# Where the metadata of Circular 01/2023 is found in an agency's data (portal names first).
_NUMBER_KEYS = (
    "so_ky_hieu",
    "so_dang_ky",
    "so_trich_luc",
    "so_thong_bao",
    "so_quyet_dinh",
    "ma_the",
    "so",
    "number",
)
_ISSUED_KEYS = ("ngay_ban_hanh", "ngay_dang_ky", "ngay", "issued_on")
_VALID_KEYS = ("thoi_han_hieu_luc", "gia_tri_den", "valid_until")
_OWNER_KEYS = ("so_dinh_danh", "personal_id", "owner_citizen_id")


def _first(data: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((data[k] for k in keys if data.get(k)), None)


def _as_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def load_dossier(session: Session, dossier_code: str) -> DossierRow:
    row = session.scalar(select(DossierRow).where(DossierRow.code == dossier_code))
    if row is None:
        raise VaultError(
            f"no dossier {dossier_code}", message_vi=f"Không tìm thấy hồ sơ {dossier_code}."
        )
    return row


def owner_of(dossier: DossierRow, step: StepRow | None, data: dict[str, Any]) -> str | None:
    """The person a result is about: the data's own ID, else an ID the dossier's steps produced
    (the child's new personal ID), else the dossier's subject (the deceased, the transferee)."""
    if _first(data, _OWNER_KEYS):
        return str(_first(data, _OWNER_KEYS))
    candidates = [step] if step is not None else []
    candidates += [s for s in dossier.steps if s is not step]
    for s in candidates:
        if s is not None and (s.outputs or {}).get("personal_id"):
            return str(s.outputs["personal_id"])
    try:
        owner = Submission.model_validate(dossier.payload).owner()
        if owner.citizen_id:
            return owner.citizen_id
    except (ValueError, LienThongError):
        pass
    return dossier.owner_citizen_id


def _upstream_steps(proc: Procedure, options: dict[str, Any], step_key: str) -> set[str]:
    plan = proc.plan(options)
    seen: set[str] = set()
    frontier = list(plan.upstream.get(step_key, []))
    while frontier:
        s = frontier.pop()
        if s not in seen:
            seen.add(s)
            frontier += plan.upstream.get(s, [])
    return seen


def inputs_of(session: Session, dossier: DossierRow, proc: Procedure, step_key: str) -> list[str]:
    """Vault results a step's result is issued from: the components the dossier reused from the
    vault, and the current results of the steps upstream of it in the same dossier."""
    addresses = {c.vault_address for c in dossier.components if c.vault_address}
    upstream = _upstream_steps(proc, dict(dossier.options or {}), step_key)
    if upstream:
        rows = session.execute(
            select(VaultResult.address).where(
                VaultResult.source_dossier_code == dossier.code,
                VaultResult.source_step.in_(upstream),
                VaultResult.status == "valid",
            )
        ).scalars()
        addresses |= set(rows)
    return sorted(addresses)


def step_drafts(session: Session, dossier_code: str, step_key: str) -> list[ResultDraft]:
    """One draft per catalog result of the step (skipping results the step did not output, e.g. a
    refused step)."""
    dossier = load_dossier(session, dossier_code)
    step = next((s for s in dossier.steps if s.step_key == step_key), None)
    if step is None:
        raise VaultError(
            f"{dossier_code}: no step {step_key}",
            message_vi=f"Hồ sơ {dossier_code} không có bước {step_key}.",
        )
    if step.status in ("refused", "failed"):
        return []  # a refused or failed step issued no result
    if step.status != "done":
        raise VaultError(
            f"{dossier_code}: step {step_key} is {step.status}, not done",
            message_vi="Bước xử lý chưa hoàn thành nên chưa có kết quả để công bố.",
        )
    catalog = get_catalog()
    proc = catalog.for_dossier(dossier)
    spec = proc.step(step_key)
    agency = catalog.agencies.get(step.agency, {})
    outputs = step.outputs or {}
    inputs = inputs_of(session, dossier, proc, step_key)
    drafts = []
    for result in spec.results:
        raw = outputs.get(result.data)
        if raw is None:
            continue
        if not isinstance(raw, dict):
            raise VaultError(
                f"{dossier_code}/{step_key}: output {result.data} is not an object",
                message_vi=f"Dữ liệu kết quả {result.name} không đúng cấu trúc.",
            )
        data, pdf = pdf_from(raw)
        if pdf is None and outputs.get(f"{result.data}_pdf"):
            from pathlib import Path

            pdf = Path(str(outputs[f"{result.data}_pdf"])).read_bytes()
        owner = owner_of(dossier, step, data)
        if not owner:
            raise VaultError(
                f"{dossier_code}/{step_key}: the owner's personal ID of {result.code} is unknown",
                message_vi=f"Không xác định được số định danh của chủ kết quả {result.name}.",
            )
        finished = localize(step.finished_at) if step.finished_at else get_clock().now()
        issuing_body = str(data.get("co_quan_ban_hanh") or agency.get("name") or step.agency)
        number = str(_first(data, _NUMBER_KEYS) or local_id_for(dossier_code, step_key))
        drafts.append(
            ResultDraft(
                issuer=step.agency,
                result_code=result.code,
                name=result.name,
                local_id=local_id_for(dossier_code, step_key),
                data=data,
                owner_citizen_id=owner,
                procedure_code=spec.procedure_code or proc.code,
                source_dossier_code=dossier_code,
                source_step=step_key,
                issued_on=_as_date(_first(data, _ISSUED_KEYS)) or finished.date(),
                issuing_body=issuing_body,
                signer=str(data.get("nguoi_ky") or spec.approval or issuing_body),
                number=number[:64],
                valid_until=_as_date(_first(data, _VALID_KEYS)),
                scope=str(data.get("pham_vi_hieu_luc") or "Toàn quốc"),
                summary=str(data.get("trich_yeu") or f"{result.name} - hồ sơ {dossier_code}"),
                pdf=pdf,
                inputs=tuple(inputs),
            )
        )
    return drafts
