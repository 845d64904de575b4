"""The data a form shows, gathered from the dossier's rows (no drawing here)."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienthong.catalog import get_catalog
from lienthong.clock import get_clock, localize
from lienthong.db.models import (
    ComponentRow,
    DossierRow,
    HandOver,
    ReappointmentRow,
    StepRow,
    SupplementRow,
)
from lienthong.errors import ExitCode, LienThongError

FORMS = {"01": "form01", "02": "form02", "03": "form03", "04": "form04", "05": "form05"}

CHANNELS_VI = {"in_person": "Trực tiếp", "online": "Trực tuyến", "postal": "Qua dịch vụ bưu chính"}
VERDICTS_VI = {"early": "Trước hạn", "on_time": "Đúng hạn", "late": "Quá hạn"}


class FormUnavailable(LienThongError):
    """The dossier has no data for this form (e.g. Form 04 without a re-appointment)."""

    code = "form_unavailable"
    exit_code = ExitCode.NOT_FOUND


def dt_vi(at: datetime | None) -> str:
    if at is None:
        return ""
    at = localize(at)
    return f"{at:%H} giờ {at:%M} phút, ngày {at:%d} tháng {at:%m} năm {at:%Y}"


def _nfc(value: Any) -> str:
    return unicodedata.normalize("NFC", str(value)) if value is not None else ""


def form_context(session: Session, row: DossierRow, form: str) -> dict[str, Any]:
    """Every placeholder the templates use, plus the tables (components, hand-overs, items)."""
    catalog = get_catalog()
    agencies = catalog.agencies
    try:
        proc = catalog.for_dossier(row)
        procedure_name = proc.name
    except LienThongError:
        proc, procedure_name = None, row.procedure_id
    payload = row.payload or {}
    applicant = payload.get("applicant") or {}
    owner = (
        payload.get("child") or payload.get("deceased") or payload.get("transferee") or applicant
    )
    now = localize(get_clock().now())
    from lienthong.citizen.capability import current_url

    ctx: dict[str, Any] = {
        "dossier_code": row.code,
        # The QR code: the citizen's status link (the capability; the bare code opens nothing).
        "status_url": current_url(session, row.uid),
        "unit_name": agencies.get("MOT_CUA", {}).get("name", row.unit_id),
        "procedure_name": procedure_name,
        "procedure_code": row.procedure_code,
        "applicant_name": _nfc(applicant.get("full_name")),
        "applicant_address": _nfc(applicant.get("address")),
        "applicant_phone": _nfc(applicant.get("phone")),
        "applicant_email": _nfc(applicant.get("email")),
        "applicant_id": _nfc(applicant.get("citizen_id")),
        "owner_name": _nfc(owner.get("full_name")),
        "channel_vi": CHANNELS_VI.get(row.channel, row.channel),
        "time_limit_vi": "Trong ngày"
        if row.time_limit_days == 0
        else f"{row.time_limit_days} ngày làm việc",
        "received_vi": dt_vi(row.received_at),
        "due_vi": dt_vi(row.due_at),
        "return_place": "Bộ phận tiếp nhận và trả kết quả"
        if row.channel != "online"
        else "Cổng Dịch vụ công / Kho quản lý dữ liệu điện tử của công dân",
        "today_day": f"{now:%d}",
        "today_month": f"{now:%m}",
        "today_year": f"{now:%Y}",
    }
    comps = (
        session.execute(
            select(ComponentRow).where(ComponentRow.dossier_id == row.id).order_by(ComponentRow.id)
        )
        .scalars()
        .all()
    )
    ctx["components"] = [
        [
            str(i),
            _nfc(c.name),
            "1" if c.paper else "",
            "" if c.paper else "1",
            "Tái sử dụng từ kho" if c.reused else ("Đã số hóa" if c.digitized else ""),
        ]
        for i, c in enumerate(comps, 1)
    ]
    if not ctx["components"] and proc is not None:
        ctx["components"] = [[str(i), c.name, "", "", ""] for i, c in enumerate(proc.components, 1)]

    sup = (
        session.execute(
            select(SupplementRow)
            .where(SupplementRow.dossier_id == row.id)
            .order_by(SupplementRow.id.desc())
        )
        .scalars()
        .first()
    )
    ctx["supplement_items"] = [_nfc(i) for i in (sup.items if sup else [])]
    ctx["supplement_reason"] = "Hồ sơ chưa đầy đủ, hợp lệ theo quy định" if sup else ""
    ctx["supplement_requested_vi"] = dt_vi(sup.requested_at) if sup else ""
    ctx["refusal_reason"] = _nfc(row.reason)

    re_row = session.execute(
        select(ReappointmentRow).where(ReappointmentRow.dossier_id == row.id)
    ).scalar_one_or_none()
    if re_row is not None:
        ctx.update(
            reappointment_agency_name=agencies.get(re_row.agency, {}).get("name", re_row.agency),
            reappointment_reason=_nfc(re_row.reason),
            original_due_vi=dt_vi(re_row.original_due),
            new_due_vi=dt_vi(re_row.new_due),
        )
    elif form == "04":
        raise FormUnavailable(
            f"{row.code}: no re-appointment recorded, Form 04 has nothing to say",
            message_vi=f"Hồ sơ {row.code} chưa có phiếu xin lỗi và hẹn lại.",
        )
    if form == "02" and sup is None:
        raise FormUnavailable(
            f"{row.code}: no supplement request",
            message_vi=f"Hồ sơ {row.code} chưa có yêu cầu bổ sung.",
        )

    steps = (
        session.execute(select(StepRow).where(StepRow.dossier_id == row.id).order_by(StepRow.id))
        .scalars()
        .all()
    )
    step_agencies = list(dict.fromkeys(s.agency for s in steps))
    if proc is not None and not step_agencies:
        step_agencies = list(dict.fromkeys(s.agency for s in proc.steps))
    name = lambda code: agencies.get(code, {}).get("name", code)  # noqa: E731
    ctx["lead_agency_name"] = name(step_agencies[0]) if step_agencies else ""
    ctx["coordinating_agencies"] = "; ".join(name(a) for a in step_agencies[1:])
    rows: list[list[str]] = []
    handed = set()
    for ho in session.execute(
        select(HandOver).where(HandOver.dossier_id == row.id).order_by(HandOver.at, HandOver.id)
    ).scalars():
        rows.append(
            [
                name(ho.from_agency),
                name(ho.to_agency),
                dt_vi(ho.at),
                VERDICTS_VI.get(ho.verdict or "", ""),
                _nfc(ho.note),
            ]
        )
        handed.add(ho.from_agency)
    for st in steps:
        if st.finished_at is not None and st.agency not in handed:
            rows.append(
                [
                    name(st.agency),
                    "Bộ phận trả kết quả",
                    dt_vi(st.finished_at),
                    VERDICTS_VI.get(st.verdict or "", ""),
                    _nfc(st.action),
                ]
            )
    ctx["hand_overs"] = rows
    return ctx
