"""Forms 01-05 as A5 PDFs: the text read back with pypdf carries the right Vietnamese fields."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from lienthong.clock import FixedClock, set_clock
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, ReappointmentRow
from lienthong.forms import render_form
from lienthong.forms.context import FormUnavailable
from lienthong.settings import reset_settings
from tests.integration.accountability_factory import make_dossier, t

pytestmark = pytest.mark.integration

CODE = "000.00.06.H56-260302-0007"


@pytest.fixture
def dossier(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("LIENTHONG_STATUS_PUBLIC_URL", "https://dichvucong.thanhhoa.gov.vn")
    reset_settings()
    set_clock(FixedClock(datetime(2026, 3, 5, 10, 0)))
    with session_scope() as s:
        row = make_dossier(
            s,
            CODE,
            received_at="2026-03-02T09:15",
            due_at="2026-03-06T17:00",
            payload={
                "applicant": {
                    "full_name": "Trần Thị Ngọc Ánh",
                    "phone": "0912345678",
                    "address": "Số 5 đường Lê Hoàn, phường Điện Biên, tỉnh Thanh Hóa",
                    "email": "anh.tran@example.vn",
                    "citizen_id": "038190004567",
                },
                "transferee": {"full_name": "Lê Quốc Việt"},
            },
            components=[
                {"name": "Hợp đồng chuyển nhượng đã công chứng", "paper": True},
                {"name": "Giấy chứng nhận quyền sử dụng đất", "reused": True},
            ],
            supplements=[("2026-03-03T10:00", None)],
            steps=[
                {
                    "key": "tham_dinh",
                    "agency": "VPDKDD",
                    "started_at": "2026-03-02T09:15",
                    "due_at": "2026-03-04T17:00",
                    "status": "done",
                    "finished_at": "2026-03-04T16:00",
                    "verdict": "on_time",
                    "action": "Kiểm tra hồ sơ",
                },
                {
                    "key": "xac_dinh_thue",
                    "agency": "THUE",
                    "started_at": "2026-03-04T16:00",
                    "due_at": "2026-03-05T17:00",
                    "status": "done",
                    "finished_at": "2026-03-06T09:00",
                    "verdict": "late",
                    "action": "Xác định nghĩa vụ tài chính",
                },
            ],
            hand_overs=[
                {"from": "MOT_CUA", "to": "VPDKDD", "at": "2026-03-02T09:30"},
                {"from": "VPDKDD", "to": "THUE", "at": "2026-03-04T16:00", "verdict": "on_time"},
            ],
        )
        row.reason = "Thửa đất đang có tranh chấp, chưa đủ điều kiện chuyển nhượng"
        s.add(
            ReappointmentRow(
                dossier_id=row.id,
                original_due=t("2026-03-06T17:00"),
                new_due=t("2026-03-10T17:00"),
                agency="THUE",
                recorded_at=t("2026-03-05T10:00"),
                reason="Chờ xác minh giá đất với cơ quan thuế",
                approved_at=t("2026-03-05T11:00"),
            )
        )
    yield
    set_clock(None)


def _text(path: Path) -> str:
    reader = PdfReader(path)
    text = unicodedata.normalize("NFC", "\n".join(p.extract_text() for p in reader.pages))
    return " ".join(text.split())  # lines wrap inside long values


def _a5(path: Path) -> bool:
    box = PdfReader(path).pages[0].mediabox
    return (round(float(box.width)), round(float(box.height))) == (420, 595)


def test_form_01_receipt_names_applicant_procedure_components_and_appointment(dossier, tmp_path):
    path = render_form(CODE, "01")
    assert path == tmp_path / "forms" / CODE / "mau-01.pdf" and _a5(path)
    text = _text(path)
    for field in (
        "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ",
        "Mẫu số 01",
        CODE,
        "Trần Thị Ngọc Ánh",
        "Đăng ký biến động quyền sử dụng đất do chuyển nhượng",
        "1.013831",
        "Hợp đồng chuyển nhượng đã công chứng",
        "18 ngày làm việc",
        "09 giờ 15 phút, ngày 02 tháng 03 năm 2026",
        "17 giờ 00 phút, ngày 06 tháng 03 năm 2026",
        "Độc lập - Tự do - Hạnh phúc",
        "Trung tâm Phục vụ hành chính công",
    ):
        assert field in text, field
    fonts = PdfReader(path).pages[0]["/Resources"]["/Font"]
    assert any("DejaVu" in str(fonts[f].get_object()["/BaseFont"]) for f in fonts)


def test_form_02_lists_the_items_to_supplement(dossier):
    text = _text(render_form(CODE, "02"))
    for field in (
        "PHIẾU YÊU CẦU BỔ SUNG, HOÀN THIỆN HỒ SƠ",
        "Bản sao hợp đồng",
        "Trần Thị Ngọc Ánh",
        "anh.tran@example.vn",
        "10 giờ 00 phút, ngày 03 tháng 03 năm 2026",
    ):
        assert field in text, field


def test_form_03_gives_the_reason_for_refusal(dossier):
    text = _text(render_form(CODE, "03"))
    assert "PHIẾU TỪ CHỐI TIẾP NHẬN GIẢI QUYẾT HỒ SƠ" in text
    assert "Thửa đất đang có tranh chấp, chưa đủ điều kiện chuyển nhượng" in text


def test_form_04_apologises_with_old_and_new_appointment_and_the_reason(dossier):
    text = _text(render_form(CODE, "04"))
    for field in (
        "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ",
        "Cơ quan thuế",
        "Chờ xác minh giá đất với cơ quan thuế",
        "17 giờ 00 phút, ngày 06 tháng 03 năm 2026",
        "17 giờ 00 phút, ngày 10 tháng 03 năm 2026",
        "xin lỗi",
    ):
        assert field in text, field


def test_form_05_shows_each_hand_over_with_the_givers_verdict(dossier):
    text = _text(render_form(CODE, "05"))
    for field in (
        "PHIẾU KIỂM SOÁT QUÁ TRÌNH GIẢI QUYẾT HỒ SƠ",
        "Lê Quốc Việt",
        "Văn phòng đăng ký đất đai",
        "Cơ quan thuế",
        "Đúng hạn",
        "Quá hạn",
        "16 giờ 00 phút, ngày 04 tháng 03 năm 2026",
    ):
        assert field in text, field


def test_form_04_is_refused_for_a_dossier_without_re_appointment(dossier):
    with session_scope() as s:
        s.delete(s.execute(select(ReappointmentRow)).scalar_one())
        assert s.execute(select(DossierRow)).scalar_one()
    with pytest.raises(FormUnavailable):
        render_form(CODE, "04")
