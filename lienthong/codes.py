"""Codes of the domain: dossier code (mã số hồ sơ), procedure code (mã TTHC), result code (mã kết
quả), and the citizen ID number (số định danh cá nhân / CCCD) with the old 9-digit CMND."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Literal

import yaml

from lienthong.errors import (
    InvalidCitizenId,
    InvalidDossierCode,
    InvalidProcedureCode,
    InvalidResultCode,
)
from lienthong.privacy import mask_citizen_id
from lienthong.settings import get_settings

Sex = Literal["male", "female"]


@lru_cache
def _reference(name: str) -> dict[str, Any]:
    path = get_settings().config_dir / "reference" / f"{name}.yaml"
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = yaml.safe_load(fh)
    return data


def provinces() -> dict[str, str]:
    """Province code -> province name, from ``config/reference/provinces.yaml``."""
    return {str(k).zfill(3): v for k, v in _reference("provinces")["provinces"].items()}


def _pattern(kind: str, key: str = "pattern") -> re.Pattern[str]:
    return re.compile(_reference("codes")[kind][key])


# --- citizen ID -----------------------------------------------------------------------------

# Digit 4 of the 12-digit number: (century base year, sex).
_CENTURY_SEX: dict[str, tuple[int, Sex]] = {
    "0": (1900, "male"), "1": (1900, "female"),
    "2": (2000, "male"), "3": (2000, "female"),
    "4": (2100, "male"), "5": (2100, "female"),
    "6": (2200, "male"), "7": (2200, "female"),
    "8": (2300, "male"), "9": (2300, "female"),
}  # fmt: skip


@dataclass(frozen=True)
class CitizenId:
    """A 12-digit personal ID number: ``PPP G YY NNNNNN`` (no check digit; always a string)."""

    value: str
    province_code: str
    sex: Sex
    birth_year: int

    @property
    def province(self) -> str:
        return provinces()[self.province_code]

    def __str__(self) -> str:
        return self.value

    def masked(self) -> str:
        return mask_citizen_id(self.value)


@dataclass(frozen=True)
class LegacyId:
    """The old 9-digit identity card number (CMND): accepted, but carries no structure to check."""

    value: str

    def __str__(self) -> str:
        return self.value

    def masked(self) -> str:
        return mask_citizen_id(self.value)


def parse_citizen_id(value: object, *, today: date | None = None) -> CitizenId | LegacyId:
    """Parse a 12-digit citizen ID or a 9-digit CMND; raise :class:`InvalidCitizenId` otherwise."""
    if not isinstance(value, str):
        raise InvalidCitizenId(
            f"citizen ID must be a string of digits, got {type(value).__name__}",
            message_vi="Số định danh cá nhân phải là chuỗi chữ số (không phải số).",
        )
    raw = value.strip()
    shown = mask_citizen_id(raw)
    if raw in _reference("codes")["citizen_id"]["placeholders"]:
        raise InvalidCitizenId(
            f"{shown}: placeholder number, not a real ID",
            message_vi="Số định danh là số giả (số thay thế), đề nghị cung cấp số thật.",
        )
    if not raw.isdigit() or len(raw) not in (9, 12):
        raise InvalidCitizenId(
            f"{shown}: must be 12 digits (or 9 for an old CMND), got {len(raw)} characters",
            message_vi="Số định danh cá nhân phải gồm 12 chữ số (CMND cũ: 9 chữ số).",
        )
    if len(raw) == 9:
        return LegacyId(raw)
    ppp, g, yy = raw[:3], raw[3], raw[4:6]
    if ppp not in provinces():
        raise InvalidCitizenId(
            f"{shown}: unknown province code {ppp}",
            message_vi=f"Mã tỉnh {ppp} trong số định danh không tồn tại.",
        )
    base, sex = _CENTURY_SEX[g]
    year = base + int(yy)
    today = today or date.today()
    if year > today.year:
        raise InvalidCitizenId(
            f"{shown}: birth year {year} is in the future",
            message_vi=f"Năm sinh {year} suy ra từ số định danh ở tương lai.",
        )
    return CitizenId(raw, ppp, sex, year)


def make_citizen_id(province_code: str, sex: Sex, birth_year: int, serial: int) -> str:
    """Build a structurally valid 12-digit ID (used by the agency simulator and sample data)."""
    century = (birth_year // 100) * 100
    digit = next(d for d, (b, s) in _CENTURY_SEX.items() if b == century and s == sex)
    return f"{province_code}{digit}{birth_year % 100:02d}{serial % 1_000_000:06d}"


# --- dossier code ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DossierCode:
    """``<unit identifier>-YYMMDD-NNNN`` (Circular 01/2018 Art. 19)."""

    unit: str
    received_on: date
    sequence: int

    def __str__(self) -> str:
        return format_dossier_code(self.unit, self.received_on, self.sequence)


def format_dossier_code(unit: str, received_on: date, sequence: int) -> str:
    if not _pattern("unit_identifier").match(unit):
        raise InvalidDossierCode(
            f"unit identifier {unit!r} is not V1V2V3.Z1Z2.Y1Y2.MX1X2",
            message_vi=f"Mã định danh đơn vị {unit!r} không đúng định dạng.",
        )
    if not 1 <= sequence <= 9999:
        raise InvalidDossierCode(
            f"sequence {sequence} outside 0001-9999 for {unit} on {received_on}",
            message_vi="Số thứ tự hồ sơ trong ngày vượt quá 9999.",
        )
    return f"{unit}-{received_on:%y%m%d}-{sequence:04d}"


def parse_dossier_code(value: str, *, received_on: date | None = None) -> DossierCode:
    """Parse a dossier code; with ``received_on``, its date part must equal the reception date."""
    ref = _reference("codes")["dossier_code"]
    m = re.match(ref["primary"], value)
    parsed: DossierCode | None = None
    if m:
        try:
            d = date(2000 + int(m["date"][:2]), int(m["date"][2:4]), int(m["date"][4:]))
        except ValueError:
            d = None
        if d is not None:
            parsed = DossierCode(m["unit"], d, int(m["seq"]))
    else:
        for alt in ref.get("alternatives", []):
            m = re.match(alt, value)
            if m:
                try:
                    d8 = m["date8"]
                    d = date(int(d8[:4]), int(d8[4:6]), int(d8[6:]))
                except (ValueError, IndexError):
                    continue
                parsed = DossierCode(m["unit"], d, int(m["seq"]))
                break
    if parsed is None:
        raise InvalidDossierCode(
            f"{value!r} is not a dossier code <unit>-YYMMDD-NNNN",
            message_vi=f"Mã hồ sơ {value!r} không đúng định dạng <mã đơn vị>-YYMMDD-NNNN.",
        )
    if received_on is not None and parsed.received_on != received_on:
        raise InvalidDossierCode(
            f"{value}: date part {parsed.received_on} differs from reception date {received_on}",
            message_vi="Ngày trong mã hồ sơ khác ngày tiếp nhận.",
        )
    return parsed


# --- procedure and result codes -------------------------------------------------------------


@dataclass(frozen=True)
class ProcedureCode:
    """National procedure code ``d.dddddd``, optionally with the local agency suffix."""

    code: str
    local_suffix: str = ""

    def __str__(self) -> str:
        return self.code + self.local_suffix


def parse_procedure_code(value: str) -> ProcedureCode:
    m = _pattern("procedure_code").match(value or "")
    if not m:
        raise InvalidProcedureCode(
            f"{value!r} is not a national procedure code (d.dddddd)",
            message_vi=f"Mã thủ tục {value!r} không đúng định dạng d.dddddd.",
        )
    return ProcedureCode(m["code"], m["local"] or "")


@dataclass(frozen=True)
class ResultCode:
    """Result code ``KQ.Gnn.nnnnnn`` attached to a procedure's result type."""

    group: str
    number: str

    def __str__(self) -> str:
        return f"KQ.G{self.group}.{self.number}"


def parse_result_code(value: str) -> ResultCode:
    m = _pattern("result_code").match(value or "")
    if not m:
        raise InvalidResultCode(
            f"{value!r} is not a result code (KQ.Gnn.nnnnnn)",
            message_vi=f"Mã kết quả {value!r} không đúng định dạng KQ.Gnn.nnnnnn.",
        )
    return ResultCode(m["group"], m["number"])
