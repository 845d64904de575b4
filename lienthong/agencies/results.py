"""What a simulated agency returns for each kind of output (shapes follow domain.md §5 and §9)."""

from __future__ import annotations

import random
from datetime import date, datetime
from typing import Any

from lienthong.codes import make_citizen_id


def _province(data: dict[str, Any], rng: random.Random) -> str:
    applicant = (data.get("declaration") or {}).get("applicant") or {}
    cid = applicant.get("citizen_id") or ""
    return cid[:3] if len(cid) == 12 else rng.choice(["001", "079", "082", "048", "031"])


def generate(name: str, data: dict[str, Any], produced: dict[str, Any], at: datetime,
             rng: random.Random) -> Any:
    """The value of one output ``name`` of a step, consistent with what the step received."""
    decl = data.get("declaration") or {}
    child = decl.get("child") or {}
    deceased = decl.get("deceased") or {}
    number = f"{rng.randint(1, 9999):04d}"
    day = at.date().isoformat()
    if name == "personal_id":
        dob = date.fromisoformat(child.get("date_of_birth") or day)
        return make_citizen_id(_province(data, rng), child.get("sex") or "male", dob.year,
                               rng.randint(0, 999_999))
    if name == "birth_extract":
        return {
            "so_dinh_danh": produced.get("personal_id"),
            "ho_ten": child.get("full_name"),
            "ngay_sinh": child.get("date_of_birth"),
            "gioi_tinh": child.get("sex"),
            "noi_sinh": child.get("place_of_birth"),
            "ho_ten_me": (decl.get("mother") or {}).get("full_name"),
            "ho_ten_cha": (decl.get("father") or {}).get("full_name"),
            "ngay_dang_ky": day,
            "so_dang_ky": number,
            "quyen_so": f"{at.year}/{rng.randint(1, 12):02d}",
            "trang_so": str(rng.randint(1, 200)),
            "ma_ket_qua": "KQ.G15.000031",
        }
    if name == "death_extract":
        return {
            "so_trich_luc": number,
            "ho_ten": deceased.get("full_name"),
            "so_dinh_danh": deceased.get("citizen_id"),
            "ngay_chet": deceased.get("date_of_death"),
            "ngay_dang_ky": day,
            "quyen_so": f"{at.year}/{rng.randint(1, 12):02d}",
            "ma_ket_qua": "KQ.G15.000034",
        }
    if name == "residence_notice":
        bx = data.get("birth_extract") or {}
        return {"so_thong_bao": f"TB-{number}", "so_dinh_danh": bx.get("so_dinh_danh"),
                "dia_chi": (decl.get("mother") or decl.get("applicant") or {}).get("address"),
                "ngay": day}
    if name == "health_insurance_card":
        bx = data.get("birth_extract") or {}
        return {"ma_the": f"TE1{_province(data, rng)[1:]}{rng.randint(0, 10**10 - 1):010d}",
                "so_dinh_danh": bx.get("so_dinh_danh"), "gia_tri_tu": day,
                "noi_kham_ban_dau": "Trạm y tế xã"}
    if name == "identity_card":
        bx = data.get("birth_extract") or {}
        return {"so_dinh_danh": bx.get("so_dinh_danh"), "ho_ten": bx.get("ho_ten"),
                "ngay_sinh": bx.get("ngay_sinh"), "ngay_cap": day}
    if name == "tax_notice":
        price = (decl.get("contract") or {}).get("price_vnd") or 1_000_000_000
        return {"so_thong_bao": f"TB-THUE-{number}", "thue_tncn_vnd": int(price * 0.02),
                "le_phi_truoc_ba_vnd": int(price * 0.005), "ngay": day}
    if name == "payment_receipt":
        notice = data.get("tax_notice") or {}
        return {"so_chung_tu": f"CT-{number}", "so_tien_vnd":
                int(notice.get("thue_tncn_vnd", 0)) + int(notice.get("le_phi_truoc_ba_vnd", 0)),
                "ngay_nop": day}
    return {"so": f"{name.upper()[:6]}-{number}", "ngay": day}
