"""The project's own sample forms: giấy chứng sinh (hospital birth certificate, fields of
Circular 17/2012/TT-BYT, domain.md §8) and giấy báo tử (death notice), rendered deterministically
from a seed and degraded like a desk scan. Used by the demo, the tests and the benchmarks; not a
production path.

Each form comes with its ground truth: the typed fields (named like :mod:`lienthong.payloads`)
and the text as printed, so OCR and field extraction can be scored against it.
"""

from __future__ import annotations

import io
import random
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from lienthong.codes import make_citizen_id

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONTS = {
    "serif": "DejaVuSerif.ttf",
    "serif_bold": "DejaVuSerif-Bold.ttf",
    "serif_italic": "DejaVuSerif-Italic.ttf",
    "sans": "DejaVuSans.ttf",
}
A4_MM = (210.0, 297.0)
FormKind = Literal["birth_certificate", "death_notice"]

_SURNAMES = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Vũ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
]
_MIDDLE_F = ["Thị", "Ngọc", "Thu", "Thanh", "Minh", "Hồng", "Phương"]
_MIDDLE_M = ["Văn", "Đức", "Quang", "Minh", "Hữu", "Thành", "Công"]
_GIVEN_F = ["Lan", "Hương", "Mai", "Thảo", "Trang", "Ngọc", "Linh", "Hằng", "Yến", "Thủy"]
_GIVEN_M = ["Anh", "Dũng", "Hùng", "Tuấn", "Khánh", "Long", "Phúc", "Quân", "Sơn", "Đạt"]
# (province code, city on the date line, health department, hospital, address tail)
_PLACES = [
    ("001", "Hà Nội", "SỞ Y TẾ HÀ NỘI", "BỆNH VIỆN PHỤ SẢN HÀ NỘI", "phường Láng Thượng, Hà Nội"),
    (
        "079",
        "TP. Hồ Chí Minh",
        "SỞ Y TẾ TP. HỒ CHÍ MINH",
        "BỆNH VIỆN TỪ DŨ",
        "phường Bến Thành, TP. Hồ Chí Minh",
    ),
    ("048", "Đà Nẵng", "SỞ Y TẾ ĐÀ NẴNG", "BỆNH VIỆN ĐA KHOA ĐÀ NẴNG", "phường Hải Châu, Đà Nẵng"),
    (
        "031",
        "Hải Phòng",
        "SỞ Y TẾ HẢI PHÒNG",
        "BỆNH VIỆN PHỤ SẢN HẢI PHÒNG",
        "phường Lê Chân, Hải Phòng",
    ),
]
_STREETS = [
    "Trần Hưng Đạo",
    "Lê Lợi",
    "Nguyễn Trãi",
    "Hai Bà Trưng",
    "Lý Thường Kiệt",
    "Điện Biên Phủ",
]
_CAUSES = ["Suy tim", "Tai biến mạch máu não", "Viêm phổi nặng", "Ung thư phổi", "Tuổi cao sức yếu"]
_ETHNICITIES = ["Kinh", "Kinh", "Kinh", "Tày", "Mường", "Thái"]


@dataclass(frozen=True)
class Seg:
    """One run of text on a line: position in mm from the left edge, font, size, alignment."""

    x_mm: float
    text: str
    font: str = "serif"
    size_pt: float = 11.0
    align: Literal["left", "center"] = "left"


@dataclass(frozen=True)
class Line:
    y_mm: float
    segs: tuple[Seg, ...]


@dataclass
class Degradation:
    """How the desk scan went wrong: small skew, blur, sensor noise, JPEG, a page put sideways."""

    skew_degrees: float = 0.0
    blur_radius: float = 0.0
    noise_sigma: float = 0.0
    jpeg_quality: int = 90
    rotation: int = 0  # 0, 90, 180 or 270 degrees counter-clockwise
    contrast: float = 1.0  # ink darkness: 1 as printed, 0.3 a faint photocopy (ink at ~170)

    @classmethod
    def none(cls) -> Degradation:
        return cls()

    @classmethod
    def random(cls, rng: random.Random, *, level: float = 1.0, rotate: bool = False) -> Degradation:
        """A plausible desk scan; ``level`` scales the damage (0 clean, 1 typical, 2 poor)."""
        return cls(
            skew_degrees=round(rng.uniform(-2.0, 2.0) * min(level, 1.5), 2),
            blur_radius=round(rng.uniform(0.3, 1.0) * level, 2),
            noise_sigma=round(rng.uniform(4.0, 12.0) * level, 1),
            jpeg_quality=int(max(25, 85 - rng.uniform(0, 35) * level)),
            rotation=rng.choice([90, 180, 270]) if rotate else 0,
        )


@dataclass
class SampleForm:
    """A rendered (and usually degraded) form with its ground truth."""

    kind: FormKind
    seed: int
    image: Image.Image  # grayscale, 300 DPI, possibly rotated by ``degradation.rotation``
    jpeg: bytes  # the scan as the scanner wrote it (``image`` is its decoded form)
    fields: dict[str, Any]
    text: str  # NFC, one printed line per text line, in reading order
    degradation: Degradation
    dpi: int = 300
    lines: tuple[Line, ...] = field(default=(), repr=False)

    def save(self, path: Path) -> Path:
        """Write the scan as the scanner's JPEG bytes (no re-encoding)."""
        path.write_bytes(self.jpeg)
        return path


def _nfc(s: str) -> str:
    return unicodedata.normalize("NFC", s)


def _person(rng: random.Random, sex: str) -> str:
    mid, given = (_MIDDLE_F, _GIVEN_F) if sex == "female" else (_MIDDLE_M, _GIVEN_M)
    return f"{rng.choice(_SURNAMES)} {rng.choice(mid)} {rng.choice(given)}"


def _address(rng: random.Random, tail: str) -> str:
    return f"Số {rng.randint(1, 199)} {rng.choice(_STREETS)}, {tail}"


def _date_words(d: date) -> str:
    return f"ngày {d.day:02d} tháng {d.month:02d} năm {d.year}"


def _header(dept: str, hospital: str, number: str) -> list[Line]:
    return [
        Line(18, (Seg(52, dept, "serif_bold", 11, "center"),
                  Seg(145, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "serif_bold", 11, "center"))),
        Line(24, (Seg(52, hospital, "serif_bold", 11, "center"),
                  Seg(145, "Độc lập - Tự do - Hạnh phúc", "serif_bold", 11, "center"))),
        Line(34, (Seg(20, f"Số: {number}"),)),
    ]  # fmt: skip


def _footer(y: float, city: str, issued: date, left: str, right: str, signer: str) -> list[Line]:
    return [
        Line(y, (Seg(140, f"{city}, {_date_words(issued)}", "serif_italic", 12, "center"),)),
        Line(
            y + 8,
            (
                Seg(55, left, "serif_bold", 12, "center"),
                Seg(140, right, "serif_bold", 12, "center"),
            ),
        ),
        Line(y + 40, (Seg(140, signer, "serif_bold", 12, "center"),)),
    ]


def birth_certificate_layout(seed: int) -> tuple[list[Line], dict[str, Any]]:
    """Lines and ground-truth fields of a giấy chứng sinh (Circular 17/2012/TT-BYT)."""
    rng = random.Random(f"gcs-{seed}")
    province, city, dept, hospital, tail = rng.choice(_PLACES)
    born = date(2025, 1, 1) + timedelta(days=rng.randint(0, 300))
    hh, mm = rng.randint(0, 23), rng.randint(0, 59)
    sex = rng.choice(["male", "female"])
    mother_year = rng.randint(1985, 2002)
    mother = _person(rng, "female")
    father = _person(rng, "male")
    child = f"{father.split()[0]} {rng.choice(['Minh', 'Gia', 'Bảo', 'Khánh'])} " + (
        rng.choice(_GIVEN_M) if sex == "male" else rng.choice(_GIVEN_F)
    )
    id_issued = date(2021, 1, 1) + timedelta(days=rng.randint(0, 1200))
    f: dict[str, Any] = {
        "number": f"{rng.randint(100, 99999):05d}/GCS",
        "book_number": str(rng.randint(1, 40)),
        "issuer": hospital.title(),
        "mother_full_name": mother,
        "mother_birth_year": mother_year,
        "mother_ethnicity": rng.choice(_ETHNICITIES),
        "mother_address": _address(rng, tail),
        "mother_citizen_id": make_citizen_id(
            province, "female", mother_year, rng.randint(0, 999999)
        ),
        "mother_id_issued_on": id_issued,
        "father_full_name": father,
        "child_birth_time": f"{hh:02d}:{mm:02d}",
        "child_date_of_birth": born,
        "place_of_birth": hospital.title(),
        "births_count": rng.randint(1, 3),
        "children_in_birth": 1,
        "child_sex": sex,
        "weight_grams": rng.randint(24, 41) * 100,
        "health": rng.choice(["Khỏe mạnh", "Bình thường"]),
        "intended_name": child,
        "issued_on": born + timedelta(days=rng.randint(0, 3)),
    }
    sex_vi = "Nam" if sex == "male" else "Nữ"
    body = [
        (f"Họ và tên mẹ: {mother}", None),
        (f"Năm sinh: {mother_year}", f"Dân tộc: {f['mother_ethnicity']}"),
        (f"Nơi đăng ký thường trú: {f['mother_address']}", None),
        (f"Số CCCD: {f['mother_citizen_id']}", f"Ngày cấp: {id_issued:%d/%m/%Y}"),
        (f"Họ và tên cha: {father}", None),
        (f"Đã sinh con vào lúc: {hh:02d} giờ {mm:02d} phút, {_date_words(born)}", None),
        (f"Tại: {f['place_of_birth']}", None),
        (f"Số lần sinh: {f['births_count']}", "Số con trong lần sinh này: 1"),
        (f"Giới tính của con: {sex_vi}", f"Cân nặng: {f['weight_grams']} gram"),
        (f"Tình trạng trẻ: {f['health']}", None),
        (f"Dự định đặt tên con: {child}", None),
    ]
    lines = _header(dept, hospital, f["number"])
    lines.append(Line(41, (Seg(20, f"Quyển số: {f['book_number']}"),)))
    lines.append(Line(58, (Seg(105, "GIẤY CHỨNG SINH", "serif_bold", 20, "center"),)))
    lines += _body(body, 76)
    lines += _footer(
        76 + 9.5 * len(body) + 8,
        city,
        f["issued_on"],
        "NGƯỜI ĐỠ ĐẺ",
        "THỦ TRƯỞNG CƠ SỞ Y TẾ",
        _person(rng, rng.choice(["male", "female"])),
    )
    return lines, f


def death_notice_layout(seed: int) -> tuple[list[Line], dict[str, Any]]:
    """Lines and ground-truth fields of a giấy báo tử (death notice) issued by a hospital."""
    rng = random.Random(f"gbt-{seed}")
    province, city, dept, hospital, tail = rng.choice(_PLACES)
    sex = rng.choice(["male", "female"])
    dob = date(1930, 1, 1) + timedelta(days=rng.randint(0, 365 * 50))
    died = date(2025, 1, 1) + timedelta(days=rng.randint(0, 300))
    hh, mm = rng.randint(0, 23), rng.randint(0, 59)
    f: dict[str, Any] = {
        "number": f"{rng.randint(100, 99999):05d}/GBT",
        "issuer": hospital.title(),
        "full_name": _person(rng, sex),
        "date_of_birth": dob,
        "sex": sex,
        "ethnicity": rng.choice(_ETHNICITIES),
        "nationality": "Việt Nam",
        "citizen_id": make_citizen_id(province, sex, dob.year, rng.randint(0, 999999)),
        "address": _address(rng, tail),
        "time_of_death": f"{hh:02d}:{mm:02d}",
        "date_of_death": died,
        "place_of_death": hospital.title(),
        "cause_of_death": rng.choice(_CAUSES),
        "issued_on": died + timedelta(days=rng.randint(0, 2)),
    }
    body = [
        (f"Họ và tên người chết: {f['full_name']}", None),
        (f"Ngày sinh: {dob:%d/%m/%Y}", f"Giới tính: {'Nam' if sex == 'male' else 'Nữ'}"),
        (f"Dân tộc: {f['ethnicity']}", "Quốc tịch: Việt Nam"),
        (f"Số CCCD: {f['citizen_id']}", None),
        (f"Nơi thường trú: {f['address']}", None),
        (f"Đã chết vào lúc: {hh:02d} giờ {mm:02d} phút, {_date_words(died)}", None),
        (f"Nơi chết: {f['place_of_death']}", None),
        (f"Nguyên nhân chết: {f['cause_of_death']}", None),
    ]
    lines = _header(dept, hospital, f["number"])
    lines.append(Line(55, (Seg(105, "GIẤY BÁO TỬ", "serif_bold", 20, "center"),)))
    lines += _body(body, 73)
    lines += _footer(
        73 + 9.5 * len(body) + 8,
        city,
        f["issued_on"],
        "NGƯỜI LẬP PHIẾU",
        "THỦ TRƯỞNG ĐƠN VỊ",
        _person(rng, rng.choice(["male", "female"])),
    )
    return lines, f


def _body(rows: Sequence[tuple[str, str | None]], y0: float) -> list[Line]:
    out = []
    for i, (left, right) in enumerate(rows):
        segs = [Seg(20, left)] + ([Seg(118, right)] if right else [])
        out.append(Line(y0 + 9.5 * i, tuple(segs)))
    return out


def layout_text(lines: Iterable[Line]) -> str:
    """The printed text in reading order: one line per text line, segments joined by a space."""
    return "\n".join(" ".join(_nfc(s.text) for s in ln.segs) for ln in lines)


_font_cache: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}


def _font(key: str, px: int) -> ImageFont.FreeTypeFont:
    if (key, px) not in _font_cache:
        _font_cache[(key, px)] = ImageFont.truetype(str(FONT_DIR / FONTS[key]), px)
    return _font_cache[(key, px)]


def render(lines: Sequence[Line], dpi: int = 300) -> Image.Image:
    """Draw the lines on a white A4 page (grayscale) at ``dpi``."""
    px_per_mm = dpi / 25.4
    page = Image.new("L", (round(A4_MM[0] * px_per_mm), round(A4_MM[1] * px_per_mm)), 255)
    draw = ImageDraw.Draw(page)
    for ln in lines:
        for s in ln.segs:
            font = _font(s.font, round(s.size_pt * dpi / 72))
            x = s.x_mm * px_per_mm
            if s.align == "center":
                x -= draw.textlength(s.text, font=font) / 2
            draw.text((x, ln.y_mm * px_per_mm), _nfc(s.text), fill=20, font=font, anchor="ls")
    return page


def degrade(page: Image.Image, d: Degradation, seed: int) -> tuple[Image.Image, bytes]:
    """Make a clean page look like a desk scan; returns the decoded scan and its JPEG bytes."""
    img = page
    if d.skew_degrees:
        img = img.rotate(d.skew_degrees, resample=Image.Resampling.BILINEAR, fillcolor=255)
    if d.blur_radius:
        img = img.filter(ImageFilter.GaussianBlur(d.blur_radius))
    arr = np.asarray(img, dtype=np.float32) * 0.94 + 8  # paper is never pure white, ink never black
    if d.contrast != 1.0:  # a faint copy: ink pulled towards the paper
        arr = 255.0 - (255.0 - arr) * d.contrast
    if d.noise_sigma:
        arr += np.random.default_rng(seed).normal(0.0, d.noise_sigma, arr.shape).astype(np.float32)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    if d.rotation:
        img = img.rotate(d.rotation, expand=True)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=d.jpeg_quality, dpi=(300, 300))
    data = buf.getvalue()
    out = Image.open(io.BytesIO(data))
    out.load()
    return out, data


def make_form(
    kind: FormKind,
    seed: int,
    degradation: Degradation | None = None,
    *,
    level: float = 1.0,
    rotate: bool = False,
) -> SampleForm:
    """Render form ``kind`` for ``seed`` and degrade it (randomly from the seed if not given)."""
    layout = birth_certificate_layout if kind == "birth_certificate" else death_notice_layout
    lines, fields = layout(seed)
    if degradation is None:
        degradation = Degradation.random(
            random.Random(f"scan-{kind}-{seed}"), level=level, rotate=rotate
        )
    image, data = degrade(render(lines), degradation, seed)
    return SampleForm(
        kind, seed, image, data, fields, layout_text(lines), degradation, 300, tuple(lines)
    )


def birth_certificate(seed: int, degradation: Degradation | None = None, **kw: Any) -> SampleForm:
    return make_form("birth_certificate", seed, degradation, **kw)


def death_notice(seed: int, degradation: Degradation | None = None, **kw: Any) -> SampleForm:
    return make_form("death_notice", seed, degradation, **kw)


# --- files ---------------------------------------------------------------------------------


def write_pdf(images: Sequence[Image.Image], path: Path, dpi: int = 300) -> Path:
    """An image-only PDF: each page one full-page JPEG image, as a scanner would produce."""
    first, *rest = images
    first.copy().save(
        path, "PDF", save_all=True, append_images=[im.copy() for im in rest], resolution=dpi
    )
    return path


def write_tiff(images: Sequence[Image.Image], path: Path, dpi: int = 300) -> Path:
    """A multi-page TIFF (deflate-compressed), as a document scanner would produce."""
    first, *rest = images
    first.copy().save(
        path,
        "TIFF",
        save_all=True,
        append_images=[im.copy() for im in rest],
        dpi=(dpi, dpi),
        compression="tiff_deflate",
    )
    return path


def write_born_digital_pdf(forms: Sequence[tuple[FormKind, int]], path: Path) -> list[str]:
    """A PDF with a real text layer (reportlab, embedded DejaVu); returns each page's text."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont
    from reportlab.pdfgen import canvas

    for key, file in FONTS.items():
        name = f"DejaVu-{key}"
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, str(FONT_DIR / file)))
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    texts = []
    for kind, seed in forms:
        lines, _ = (
            birth_certificate_layout if kind == "birth_certificate" else death_notice_layout
        )(seed)
        for ln in lines:
            for s in ln.segs:
                c.setFont(f"DejaVu-{s.font}", s.size_pt)
                y = A4[1] - ln.y_mm * mm
                draw = c.drawCentredString if s.align == "center" else c.drawString
                draw(s.x_mm * mm, y, _nfc(s.text))
        c.showPage()
        texts.append(layout_text(lines))
    c.save()
    return texts
