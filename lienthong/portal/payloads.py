"""Dossier (HoSo) and progress (TienTrinh) payloads for the national portal, domain.md §9.

Built only from what the database says: statuses 1-10 go out as they are (never 5, 6 or 8 as 9),
dates as ``yyyyMMddHHmmss`` in local time, and the digitization/reuse flags come from the
component rows, so a dossier is never reported more digital than it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from lienthong.catalog import Catalog, get_catalog
from lienthong.clock import localize
from lienthong.db.models import (
    ComponentRow,
    DossierRow,
    ReappointmentRow,
    StatusHistory,
    StepRow,
    SupplementRow,
)
from lienthong.errors import LienThongError
from lienthong.settings import get_settings


class PortalPayloadError(LienThongError):
    code = "portal_payload_error"


@dataclass(frozen=True)
class PortalConfig:
    date_format: str
    statuses: dict[int, str]
    end_required: frozenset[int]
    skip_statuses: frozenset[int]
    channels: dict[str, int]
    subject_type: int
    return_methods: dict[str, int]
    fields: dict[str, dict[str, str]]
    summary_max: int
    handler_max: int
    placeholder_ids: frozenset[str]
    already_exists: tuple[str, ...]

    @classmethod
    def load(cls, config_dir: Path) -> PortalConfig:
        with (config_dir / "portal.yaml").open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
        return cls(
            date_format=raw["date_format"],
            statuses={int(k): v for k, v in raw["statuses"].items()},
            end_required=frozenset(raw["end_required"]),
            skip_statuses=frozenset(raw["skip_statuses"]),
            channels=dict(raw["channels"]),
            subject_type=int(raw["subject_type"]),
            return_methods=dict(raw["return_methods"]),
            fields=dict(raw.get("fields") or {}),
            summary_max=int(raw["summary_max_chars"]),
            handler_max=int(raw["handler_max_chars"]),
            placeholder_ids=frozenset(raw["placeholder_ids"]),
            already_exists=tuple(raw["already_exists_markers"]),
        )


@lru_cache
def _cached(config_dir: str) -> PortalConfig:
    return PortalConfig.load(Path(config_dir))


def get_portal_config() -> PortalConfig:
    return _cached(str(get_settings().config_dir))


def portal_status(status: int) -> int:
    """The portal code of a dossier status: the same number, checked, never folded into 9."""
    if not 1 <= int(status) <= 10:
        raise PortalPayloadError(
            f"status {status} is not a portal status code 1-10",
            message_vi=f"Trạng thái {status} không thuộc bộ mã 1-10 của Cổng DVCQG.",
        )
    return int(status)


def portal_date(at: datetime | None, cfg: PortalConfig | None = None) -> str:
    if at is None:
        return ""
    return localize(at).strftime((cfg or get_portal_config()).date_format)


@dataclass
class DossierBundle:
    """A dossier row with everything the payloads read, loaded in bulk per batch."""

    row: DossierRow
    components: list[ComponentRow] = field(default_factory=list)
    steps: list[StepRow] = field(default_factory=list)
    history: list[StatusHistory] = field(default_factory=list)
    supplements: list[SupplementRow] = field(default_factory=list)
    reappointment: ReappointmentRow | None = None
    results: list[dict[str, Any]] = field(default_factory=list)


def _has_table(session: Session, name: str) -> bool:
    bind = session.get_bind()
    key = (str(bind.engine.url), name)
    if key not in _TABLES:
        _TABLES[key] = inspect(bind).has_table(name)
    return _TABLES[key]


_TABLES: dict[tuple[str, str], bool] = {}


def load_bundles(session: Session, rows: Sequence[DossierRow]) -> list[DossierBundle]:
    """One query per related table for the whole batch (no per-dossier round trips)."""
    bundles = {r.id: DossierBundle(r) for r in rows}
    ids = list(bundles)
    if not ids:
        return []
    for c in session.execute(
        select(ComponentRow).where(ComponentRow.dossier_id.in_(ids)).order_by(ComponentRow.id)
    ).scalars():
        bundles[c.dossier_id].components.append(c)
    for s in session.execute(
        select(StepRow).where(StepRow.dossier_id.in_(ids)).order_by(StepRow.id)
    ).scalars():
        bundles[s.dossier_id].steps.append(s)
    for h in session.execute(
        select(StatusHistory).where(StatusHistory.dossier_id.in_(ids)).order_by(StatusHistory.id)
    ).scalars():
        bundles[h.dossier_id].history.append(h)
    for sp in session.execute(
        select(SupplementRow).where(SupplementRow.dossier_id.in_(ids)).order_by(SupplementRow.id)
    ).scalars():
        bundles[sp.dossier_id].supplements.append(sp)
    for re_row in session.execute(
        select(ReappointmentRow).where(ReappointmentRow.dossier_id.in_(ids))
    ).scalars():
        bundles[re_row.dossier_id].reappointment = re_row
    if _has_table(session, "vault_results"):
        # Results published to the vault (issue 3's table), read without importing its module.
        from sqlalchemy import column, table

        vr = table(
            "vault_results",
            column("source_dossier_code"),
            column("source_step"),
            column("address"),
            column("result_code"),
            column("name"),
            column("status"),
        )
        by_code = {b.row.code: b for b in bundles.values()}
        for r in session.execute(
            select(vr).where(vr.c.source_dossier_code.in_(list(by_code)))
        ).mappings():
            by_code[r["source_dossier_code"]].results.append(dict(r))
    return [bundles[i] for i in ids]


def _digest(obj: Any) -> str:
    return hashlib.sha256(
        json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _identity(citizen_id: str | None, cfg: PortalConfig) -> list[dict[str, Any]]:
    """DinhDanhCHS: type 1 for 12 digits, 2 for a 9-digit old ID; never the placeholder."""
    if not citizen_id or citizen_id in cfg.placeholder_ids or not citizen_id.isdigit():
        return []
    if len(citizen_id) == 12:
        return [{"LoaiDinhDanh": 1, "SoDinhDanh": citizen_id}]
    if len(citizen_id) == 9:
        return [{"LoaiDinhDanh": 2, "SoDinhDanh": citizen_id}]
    return []


def _end_of_processing(b: DossierBundle) -> datetime | None:
    return b.row.finished_at


def build_hoso(
    b: DossierBundle, *, catalog: Catalog | None = None, cfg: PortalConfig | None = None
) -> dict[str, Any]:
    """The HoSo payload of one dossier."""
    cfg = cfg or get_portal_config()
    catalog = catalog or get_catalog()
    r = b.row
    status = portal_status(r.status)
    try:
        proc = catalog.for_dossier(r)
        proc_name, fees = proc.name, proc.fees
    except LienThongError:
        proc_name, fees = r.procedure_id, []
    payload = r.payload or {}
    applicant = payload.get("applicant") or {}
    owner = (
        payload.get("child") or payload.get("deceased") or payload.get("transferee") or applicant
    )
    field_ = cfg.fields.get(r.procedure_code, {})
    d = lambda at: portal_date(at, cfg)  # noqa: E731
    end = _end_of_processing(b)
    if status in cfg.end_required and end is None:
        raise PortalPayloadError(
            f"{r.code}: status {status} needs an end-of-processing time (NgayKetThucXuLy)",
            message_vi=f"Hồ sơ {r.code} ở trạng thái {status} "
            "nhưng chưa có thời điểm kết thúc xử lý.",
        )
    docs = []
    for c in b.components:
        docs.append(
            {
                "TepDinhKemId": str(c.id),
                "TenTepDinhKem": c.name,
                "IsDeleted": False,
                "MaThanhPhanHoSo": c.code,
                "DuongDanTaiTepTin": c.vault_address or c.file_ref or "",
                "DuocSoHoa": 1 if c.digitized else 0,
                "DuocTaiSuDung": 1 if c.reused else 0,
                "DuocLayTuKhoDMQG": 1 if c.from_national_vault else 0,
                "MaKetQuaThayThe": (c.meta or {}).get("result_code", "") if c.reused else "",
            }
        )
    results = []
    for res in b.results:
        if res.get("status", "valid") != "valid":
            continue
        results.append(
            {
                "TenGiayTo": res["name"],
                "MaThanhPhanHoSo": res.get("source_step") or "",
                "GiayToId": res["address"],
                "DuongDanTepTinKetQua": res["address"],
                "MaGiayToKetQua": res["result_code"],
            }
        )
    supplements = []
    for s in b.supplements:
        item: dict[str, Any] = {
            "NguoiYeuCauBoSung": "Bộ phận một cửa"
            if s.phase == "reception"
            else "Cơ quan giải quyết",
            "NoiDungBoSung": "; ".join(str(i) for i in (s.items or [])),
            "NgayBoSung": d(s.requested_at),
            "NguoiTiepNhanBoSung": "",
            "ThoiGianTiepNhanBoSung": d(s.completed_at),
            "TrangThaiBoSung": 1 if s.completed_at else 0,
            "DanhSachGiayToBoSung": [],
            "DanhSachLePhiBoSung": [],
            "NgayHenTraTruoc": "",
            "NgayHenTraMoi": "",
        }
        supplements.append(item)
    re_row = b.reappointment
    approved_re = re_row if re_row is not None and re_row.approved_at is not None else None
    if approved_re is not None and supplements:
        supplements[-1]["NgayHenTraTruoc"] = d(approved_re.original_due)
        supplements[-1]["NgayHenTraMoi"] = d(approved_re.new_due)
    summary = f"{proc_name} - {owner.get('full_name', '')}".strip(" -")[: cfg.summary_max]
    paid_online = _paid_online(b)
    hoso: dict[str, Any] = {
        "MaHoSo": r.code,
        "MaTTHC": r.procedure_code,
        "TenTTHC": proc_name,
        "MaLinhVuc": field_.get("code", ""),
        "TenLinhVuc": field_.get("name", ""),
        "KenhThucHien": cfg.channels.get(r.channel, 1),
        "ChuHoSo": owner.get("full_name", ""),
        "LoaiDoiTuong": cfg.subject_type,
        "MaDoiTuong": "",
        "SoGiayToChuHoSo": r.owner_citizen_id or "",
        "Email": applicant.get("email") or "",
        "Fax": "",
        "SoDienThoai": applicant.get("phone") or "",
        "TrichYeuHoSo": summary,
        "NgayNopHoSo": d(r.received_at),
        "NgayTiepNhan": d(r.clock_started_at or r.received_at),
        "NgayHenTra": d(r.due_at),
        "NgayTra": d(r.delivered_at),
        "NgayTuChoi": d(end) if status in (3, 8) else "",
        "NgayKetThucXuLy": d(end) if status in cfg.end_required or status == 7 else "",
        "TrangThaiHoSo": status,
        "HinhThuc": cfg.return_methods.get(r.channel, 0),
        "ThongTinTra": "",
        "DonViXuLy": ",".join(dict.fromkeys(s.agency for s in b.steps)),
        "NoiNopHoSo": r.unit_id,
        "GhiChu": r.reason or "",
        "TaiLieuNop": docs,
        "DanhSachLePhi": [
            {
                "TenPhiLePhi": f.name,
                "MaPhiLePhi": "",
                "HinhThucThu": 2 if paid_online else 1,
                "Gia": f.amount_vnd or 0,
                "LoaiPhiLePhi": 2,
            }
            for f in fees
        ],
        "DanhSachTepDinhKemKhac": [],
        "DanhSachHoSoBoSung": supplements,
        "DanhSachGiayToKetQua": results,
        "HoSoCoThanhPhanSoHoa": 1 if any(c.digitized or c.reused for c in b.components) else 0,
        "TaiKhoanDuocXacThucVoiVNeID": 1
        if (payload.get("extra") or {}).get("vneid_verified")
        else 0,
        "DuocThanhToanTrucTuyen": 1 if paid_online else 0,
        "DinhDanhCHS": _identity(r.owner_citizen_id, cfg),
        "DSKetNoiCSDL": [
            {"MaCSDL": str(x)} for x in (payload.get("extra") or {}).get("connected_databases", [])
        ],
    }
    return hoso


def _paid_online(b: DossierBundle) -> bool:
    """Paid through the portal or the provincial gateway: a payment step's receipt says so."""
    for s in b.steps:
        if s.kind == "payment" and s.status == "done":
            receipt = (s.outputs or {}).get("payment_receipt") or {}
            if isinstance(receipt, dict) and str(receipt.get("channel", "")).lower() in (
                "online",
                "portal",
                "gateway",
            ):
                return True
    return bool(((b.row.payload or {}).get("extra") or {}).get("paid_online"))


def build_progress(
    b: DossierBundle, *, catalog: Catalog | None = None, cfg: PortalConfig | None = None
) -> list[dict[str, Any]]:
    """Progress records (TienTrinh): every status change and every agency step, in time order."""
    cfg = cfg or get_portal_config()
    agencies = (catalog or get_catalog()).agencies
    r = b.row
    d = lambda at: portal_date(at, cfg)  # noqa: E731
    name = lambda code: str(agencies.get(code, {}).get("name", code))[: cfg.handler_max]  # noqa: E731
    events: list[tuple[datetime, int, dict[str, Any]]] = []
    for h in b.history:
        if h.to_status == 1:
            continue
        label = (
            "Tiếp nhận hồ sơ"
            if h.to_status == 2
            else (
                "Kết thúc xử lý hồ sơ"
                if h.to_status == 9
                else cfg.statuses[portal_status(h.to_status)]
            )
        )
        events.append(
            (
                h.at,
                0,
                {
                    "MaHoSo": r.code,
                    "NguoiXuLy": name(h.actor) if h.actor in agencies else name("MOT_CUA"),
                    "ChucDanh": "",
                    "ThoiDiemXuLy": d(h.at),
                    "PhongBanXuLy": name(h.actor) if h.actor in agencies else "",
                    "NoiDungXuLy": f"{label}{': ' + h.reason if h.reason else ''}",
                    "TrangThai": portal_status(h.to_status),
                    "NgayBatDau": d(h.at),
                    "NgayKetThucTheoQuyDinh": d(r.due_at),
                },
            )
        )
    if not any(h.to_status == 2 for h in b.history):
        # No history (e.g. a dossier loaded in bulk): the reception record is still true.
        events.append(
            (
                r.received_at,
                0,
                {
                    "MaHoSo": r.code,
                    "NguoiXuLy": name("MOT_CUA"),
                    "ChucDanh": "",
                    "ThoiDiemXuLy": d(r.received_at),
                    "PhongBanXuLy": "",
                    "NoiDungXuLy": "Tiếp nhận hồ sơ",
                    "TrangThai": 2,
                    "NgayBatDau": d(r.received_at),
                    "NgayKetThucTheoQuyDinh": d(r.due_at),
                },
            )
        )
    for s in b.steps:
        if s.started_at is not None:
            events.append(
                (
                    s.started_at,
                    1,
                    {
                        "MaHoSo": r.code,
                        "NguoiXuLy": name(s.agency),
                        "ChucDanh": "",
                        "ThoiDiemXuLy": d(s.started_at),
                        "PhongBanXuLy": name(s.agency),
                        "NoiDungXuLy": f"Nhận xử lý: {s.action}",
                        "TrangThai": 4,
                        "NgayBatDau": d(s.started_at),
                        "NgayKetThucTheoQuyDinh": d(s.due_at),
                    },
                )
            )
        if s.finished_at is not None:
            verdict = {"early": "trước hạn", "on_time": "đúng hạn", "late": "quá hạn"}.get(
                s.verdict or "", ""
            )
            events.append(
                (
                    s.finished_at,
                    2,
                    {
                        "MaHoSo": r.code,
                        "NguoiXuLy": name(s.agency),
                        "ChucDanh": "",
                        "ThoiDiemXuLy": d(s.finished_at),
                        "PhongBanXuLy": name(s.agency),
                        "NoiDungXuLy": f"Hoàn thành: {s.action}"
                        + (f" ({verdict})" if verdict else ""),
                        "TrangThai": 4,
                        "NgayBatDau": d(s.started_at),
                        "NgayKetThucTheoQuyDinh": d(s.due_at),
                    },
                )
            )
    events.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in events]


@dataclass(frozen=True)
class BuiltPayload:
    code: str
    dossier_id: int
    status: int
    hoso: dict[str, Any]
    progress: list[dict[str, Any]]
    hoso_hash: str
    progress_hash: str


def build(
    b: DossierBundle, *, catalog: Catalog | None = None, cfg: PortalConfig | None = None
) -> BuiltPayload:
    hoso = build_hoso(b, catalog=catalog, cfg=cfg)
    progress = build_progress(b, catalog=catalog, cfg=cfg)
    return BuiltPayload(
        b.row.code,
        b.row.id,
        hoso["TrangThaiHoSo"],
        hoso,
        progress,
        _digest(hoso),
        _digest(progress),
    )
