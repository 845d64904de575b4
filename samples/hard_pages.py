"""Harder sample pages (issue 17 §3), as printed forms really are: every entry in a ruled box, the
hospital's red seal (con dấu) stamped over the signature, a "BẢN SAO" stamp, and a second language
(the form's title and labels in English under the Vietnamese). Colour, 300 DPI, with the form's
ground truth. Handwritten-style entries need a script font with Vietnamese diacritics, which
Debian packages (fonts-dancingscript) but this machine does not have installed: not done here.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from samples.forms import A4_MM, FormKind, Line, Seg, _font, layout_text, render

_ENGLISH = {
    "GIẤY CHỨNG SINH": "BIRTH CERTIFICATE",
    "GIẤY BÁO TỬ": "DEATH NOTICE",
}


@dataclass
class HardPage:
    kind: FormKind
    seed: int
    jpeg: bytes
    text: str  # what a reader should read (Vietnamese lines, the English title line included)
    fields: dict[str, Any]

    def save(self, path: Path) -> Path:
        path.write_bytes(self.jpeg)
        return path


def _seal(page: Image.Image, centre: tuple[float, float], radius: float, words: str) -> None:
    """A red round seal: two rings, a star, the issuer's name around; ink multiplies the paper."""
    r = round(radius)
    stamp = Image.new("L", (2 * r + 8, 2 * r + 8), 0)
    d = ImageDraw.Draw(stamp)
    c = r + 4
    d.ellipse((c - r, c - r, c + r, c + r), outline=255, width=max(3, r // 25))
    d.ellipse((c - r * 0.72, c - r * 0.72, c + r * 0.72, c + r * 0.72), outline=255, width=max(2, r // 40))
    star = [(c + r * 0.3 * math.cos(math.pi / 2 + k * 4 * math.pi / 5),
             c - r * 0.3 * math.sin(math.pi / 2 + k * 4 * math.pi / 5)) for k in range(5)]  # fmt: skip
    d.polygon(star, fill=255)
    font = _font("sans", max(12, r // 6))
    for k, ch in enumerate(words):
        a = math.pi * (0.9 - 1.8 * k / max(1, len(words) - 1)) + math.pi / 2
        x, y = c + r * 0.86 * math.cos(a), c - r * 0.86 * math.sin(a)
        d.text((x, y), ch, fill=255, font=font, anchor="mm")
    stamp = stamp.filter(ImageFilter.GaussianBlur(1.2))
    ink = np.asarray(stamp, np.float32)[..., None] / 255.0 * 0.85
    x0, y0 = round(centre[0]) - c, round(centre[1]) - c
    arr = np.asarray(page, np.float32)
    region = arr[y0 : y0 + stamp.size[1], x0 : x0 + stamp.size[0]]
    red = np.array([205.0, 35.0, 45.0])
    region[:] = region * (1 - ink) + np.minimum(region, red) * ink
    page.paste(Image.fromarray(arr.astype(np.uint8)), (0, 0))


def hard_page(kind: FormKind, seed: int) -> HardPage:
    from samples.forms import birth_certificate_layout, death_notice_layout

    layout = birth_certificate_layout if kind == "birth_certificate" else death_notice_layout
    lines, fields = layout(seed)
    title = next(ln for ln in lines if any(s.text in _ENGLISH for s in ln.segs))
    english = Line(title.y_mm + 6, (Seg(105, _ENGLISH[title.segs[0].text], "sans", 9, "center"),))
    lines = [ln if ln.y_mm <= title.y_mm else Line(ln.y_mm + 4, ln.segs) for ln in lines]
    lines.insert(lines.index(title) + 1, english)
    dpi = 300
    px = dpi / 25.4
    page = render(lines, dpi).convert("RGB")
    d = ImageDraw.Draw(page)
    # Ruled boxes: each entry row between the title and the date line in a cell of the form.
    body = [ln for ln in lines if title.y_mm + 7 < ln.y_mm and any(":" in s.text for s in ln.segs)]
    for ln in body:
        top, bottom = (ln.y_mm - 6.0) * px, (ln.y_mm + 2.2) * px
        d.rectangle((14 * px, top, (A4_MM[0] - 14) * px, bottom), outline=(40, 40, 40), width=3)
        for s in ln.segs[1:]:  # a second entry on the row gets its own cell
            d.line(((s.x_mm - 2) * px, top, (s.x_mm - 2) * px, bottom), fill=(40, 40, 40), width=3)
    # The seal over the signer's name, and a "BẢN SAO" stamp in the corner.
    signer = lines[-1]
    _seal(page, (140 * px - 60, (signer.y_mm - 14) * px), 20 * px, "BỆNH VIỆN ★ SỞ Y TẾ")
    box = (150 * px, 12 * px, 195 * px, 24 * px)
    d.rectangle(box, outline=(60, 60, 200), width=5)
    d.text((172 * px, 18 * px), "BẢN SAO", fill=(60, 60, 200), font=_font("serif_bold", 60), anchor="mm")
    arr = np.asarray(page, np.float32) * 0.95 + 6
    arr += np.random.default_rng(seed).normal(0, 5, arr.shape).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB").save(buf, "JPEG", quality=85, dpi=(300, 300))
    return HardPage(kind, seed, buf.getvalue(), layout_text(lines), fields)
