"""The human-readable PDF of a result, rendered when the issuing agency supplies none.

reportlab with DejaVu fonts (Vietnamese diacritics), and ``invariant`` output: the same result
always renders to the same bytes, so its content-addressed key is stable across re-runs.
"""

from __future__ import annotations

import io
import threading
import unicodedata
from datetime import date
from typing import Any

from lienthong.vault.settings import VaultSettings, get_vault_settings

_fonts_lock = threading.Lock()
_fonts_ready = False

_LABELS_VI = {
    "so_dinh_danh": "Số định danh cá nhân",
    "ho_ten": "Họ, chữ đệm và tên",
    "gioi_tinh": "Giới tính",
    "ngay_sinh": "Ngày, tháng, năm sinh",
    "noi_sinh": "Nơi sinh",
    "que_quan": "Quê quán",
    "dan_toc": "Dân tộc",
    "quoc_tich": "Quốc tịch",
    "ho_ten_me": "Họ, chữ đệm và tên người mẹ",
    "ho_ten_cha": "Họ, chữ đệm và tên người cha",
    "ngay_dang_ky": "Ngày đăng ký",
    "so_dang_ky": "Số đăng ký",
    "quyen_so": "Quyển số",
    "trang_so": "Trang số",
    "so_trich_luc": "Số trích lục",
    "ngay_chet": "Ngày chết",
    "noi_chet": "Nơi chết",
    "so_thong_bao": "Số thông báo",
    "dia_chi": "Địa chỉ",
    "ngay": "Ngày",
    "ma_the": "Mã thẻ",
    "gia_tri_tu": "Giá trị sử dụng từ",
    "gia_tri_den": "Giá trị sử dụng đến",
    "noi_kham_ban_dau": "Nơi đăng ký khám chữa bệnh ban đầu",
    "so": "Số",
    "nguoi_huong": "Người hưởng",
    "so_tien_vnd": "Số tiền (đồng)",
    "ma_ket_qua": "Mã kết quả",
}
_SEX_VI = {"male": "Nam", "female": "Nữ"}


def _register_fonts(settings: VaultSettings) -> None:
    global _fonts_ready
    with _fonts_lock:
        if _fonts_ready:
            return
        from reportlab.pdfbase import pdfmetrics
        from reportlab.pdfbase.ttfonts import TTFont

        pdfmetrics.registerFont(TTFont("DejaVuSans", str(settings.font_path)))
        pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(settings.font_bold_path)))
        _fonts_ready = True


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return date.fromisoformat(value).strftime("%d/%m/%Y")
        except ValueError:
            pass
    return unicodedata.normalize(
        "NFC", str(_SEX_VI.get(value, value) if isinstance(value, str) else value)
    )


def render_result_pdf(
    metadata: dict[str, Any], data: dict[str, Any], settings: VaultSettings | None = None
) -> bytes:
    """One A4 page: national motto, issuing body, title, number, the data, validity and signer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    settings = settings or get_vault_settings()
    _register_fonts(settings)
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4, invariant=1, pageCompression=1)
    c.setTitle(unicodedata.normalize("NFC", metadata["name"]))
    c.setAuthor(unicodedata.normalize("NFC", metadata["issuing_body"]))
    c.setSubject(metadata["address"])
    width, height = A4
    y = height - 60
    c.setFont("DejaVuSans", 9)
    c.drawString(50, y, _text(metadata["issuing_body"]))
    c.setFont("DejaVuSans-Bold", 9)
    c.drawRightString(width - 50, y, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")
    y -= 13
    c.setFont("DejaVuSans", 9)
    c.drawString(50, y, f"Số: {_text(metadata['number'])}")
    c.drawRightString(width - 50, y, "Độc lập - Tự do - Hạnh phúc")
    y -= 45
    c.setFont("DejaVuSans-Bold", 15)
    c.drawCentredString(width / 2, y, _text(metadata["name"]).upper())
    y -= 18
    c.setFont("DejaVuSans", 8)
    c.drawCentredString(
        width / 2, y, f"Mã kết quả {metadata['result_code']} · {metadata['address']}"
    )
    y -= 30
    c.setFont("DejaVuSans", 11)
    for key, value in data.items():
        if key in (
            "so_ky_hieu",
            "ngay_ban_hanh",
            "nguoi_ky",
            "thoi_han_hieu_luc",
            "pham_vi_hieu_luc",
            "trich_yeu",
            "co_quan_ban_hanh",
        ) or value in (None, ""):
            continue
        label = _LABELS_VI.get(key, key.replace("_", " ").capitalize())
        line = f"{label}: {_text(value)}"
        while line:
            chunk, line = line[:85], line[85:]
            c.drawString(60, y, chunk)
            y -= 17
            if y < 140:
                c.showPage()
                c.setFont("DejaVuSans", 11)
                y = height - 60
    y -= 15
    c.setFont("DejaVuSans", 10)
    validity = (
        f"Có giá trị đến ngày {_text(metadata['valid_until'])}"
        if metadata.get("valid_until")
        else "Có giá trị vĩnh viễn"
    )
    c.drawString(60, y, f"{validity}; phạm vi: {_text(metadata['scope'])}")
    y -= 15
    c.drawString(
        60, y, f"Hồ sơ: {metadata['source_dossier_code']} · Thủ tục: {metadata['procedure_code']}"
    )
    y -= 40
    c.drawRightString(width - 60, y, f"Ngày {_text(metadata['issued_on'])}")
    y -= 15
    c.setFont("DejaVuSans-Bold", 10)
    c.drawRightString(width - 60, y, _text(metadata["signer"]))
    c.setFont("DejaVuSans", 7)
    c.drawString(50, 48, "Văn bản điện tử được niêm phong bằng chữ ký số Ed25519 của cơ quan cấp.")
    c.drawString(50, 38, "Kiểm tra: lienthong vault verify " + metadata["address"])
    c.showPage()
    c.save()
    return buf.getvalue()
