"""Drawing a form: A5, DejaVu fonts, QR code top-left (Circular 01/2023), Code 128 barcode."""

from __future__ import annotations

import string
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml
from pydantic_settings import BaseSettings, SettingsConfigDict
from reportlab.graphics.barcode import createBarcodeDrawing
from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A5
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import select

from lienthong.db import session_scope
from lienthong.db.models import DossierRow
from lienthong.forms.context import FORMS, form_context
from lienthong.settings import get_settings

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


class FormSettings(BaseSettings):
    """``LIENTHONG_FORMS_*``."""

    model_config = SettingsConfigDict(env_prefix="LIENTHONG_FORMS_", extra="ignore")

    font_dir: Path = FONT_DIR


@lru_cache
def _fonts(font_dir: str) -> tuple[str, str]:
    base = Path(font_dir)
    pdfmetrics.registerFont(TTFont("DejaVuSans", str(base / "DejaVuSans.ttf")))
    pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(base / "DejaVuSans-Bold.ttf")))
    return "DejaVuSans", "DejaVuSans-Bold"


@lru_cache
def _template(config_dir: str, name: str) -> dict[str, Any]:
    with (Path(config_dir) / "forms" / f"{name}.yaml").open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)  # type: ignore[no-any-return]


class _Blank(dict[str, Any]):
    """Missing placeholders print as a dotted line, as on a paper form."""

    def __missing__(self, key: str) -> str:
        return "……"


def fill(text: str, ctx: dict[str, Any]) -> str:
    return string.Formatter().vformat(
        text, (), _Blank({k: ("……" if v in ("", None) else v) for k, v in ctx.items()})
    )


def _qr(url: str, size: float) -> Drawing:
    w = QrCodeWidget(url)
    x1, y1, x2, y2 = w.getBounds()
    d = Drawing(size, size, transform=[size / (x2 - x1), 0, 0, size / (y2 - y1), 0, 0])
    d.add(w)
    return d


def render_pdf(form: str, ctx: dict[str, Any], config_dir: Path | None = None) -> bytes:
    """The PDF bytes of form ``01``..``05`` for a context from :func:`form_context`."""
    cfg_dir = str(config_dir or get_settings().config_dir)
    common, tpl = _template(cfg_dir, "common"), _template(cfg_dir, FORMS[form])
    regular, bold = _fonts(str(FormSettings().font_dir))
    ctx = {**ctx, "place": common.get("place", "")}
    st = {
        "n": ParagraphStyle("n", fontName=regular, fontSize=8.5, leading=11),
        "c": ParagraphStyle("c", fontName=regular, fontSize=8, leading=10, alignment=TA_CENTER),
        "cb": ParagraphStyle("cb", fontName=bold, fontSize=8.5, leading=11, alignment=TA_CENTER),
        "t": ParagraphStyle(
            "t",
            fontName=bold,
            fontSize=11,
            leading=14,
            alignment=TA_CENTER,
            spaceBefore=4,
            spaceAfter=6,
        ),
        "cell": ParagraphStyle("cell", fontName=regular, fontSize=7, leading=8.5),
    }

    def p(text: str, style: str = "n") -> Paragraph:
        return Paragraph(escape(fill(text, ctx)), st[style])

    def labelled(item: dict[str, str]) -> Paragraph:
        if "text" in item:
            return p(item["text"])
        return Paragraph(
            f"<font name='{bold}'>{escape(item['label'])}:</font> "
            f"{escape(fill(item['value'], ctx))}",
            st["n"],
        )

    code = ctx["dossier_code"]
    barcode = createBarcodeDrawing(
        common.get("barcode", "Code128"),
        value=code,
        barHeight=9 * mm,
        barWidth=0.17 * mm,
        humanReadable=False,
    )
    header = Table(
        [
            [
                _qr(ctx["status_url"], 20 * mm),
                [p(tpl.get("issuer", "{unit_name}"), "cb"), p(common["code_label"], "c")],
                [
                    p(common["motto"], "cb"),
                    p(common["motto_sub"], "c"),
                    p(common["place_date"], "c"),
                ],
            ],
            [p(common["qr_caption"], "c"), barcode, p(tpl["number"], "c")],
        ],
        colWidths=[24 * mm, 52 * mm, 52 * mm],
    )
    header.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                ("LEFTPADDING", (0, 0), (-1, -1), 1),
                ("RIGHTPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    story: list[Any] = [header, Paragraph(escape(tpl["title"]), st["t"])]
    story += [labelled(b) for b in tpl.get("blocks", [])]
    if "table" in tpl:
        t = tpl["table"]
        story += [Spacer(1, 2 * mm), p(t["title"])]
        data = [[Paragraph(escape(c), st["cell"]) for c in t["columns"]]]
        data += [
            [Paragraph(escape(str(c)), st["cell"]) for c in r] for r in ctx.get(t["source"], [])
        ]
        widths = [w * mm for w in t.get("widths", [])] or [128 * mm / len(t["columns"])] * len(
            t["columns"]
        )
        tbl = Table(data, colWidths=widths, repeatRows=1)
        tbl.setStyle(
            TableStyle(
                [("GRID", (0, 0), (-1, -1), 0.4, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP")]
            )
        )
        story.append(tbl)
    if "list" in tpl:
        story += [p(f"{i}. {item}") for i, item in enumerate(ctx.get(tpl["list"]["source"], []), 1)]
    story += [labelled(b) for b in tpl.get("after", [])]
    if tpl.get("signatures"):
        sig = Table(
            [
                [p(s, "cb") for s in tpl["signatures"]],
                [p("(Ký, ghi rõ họ tên)", "c") for _ in tpl["signatures"]],
            ]
        )
        story += [Spacer(1, 4 * mm), sig]
    buf = BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A5,
        leftMargin=10 * mm,
        rightMargin=10 * mm,
        topMargin=8 * mm,
        bottomMargin=8 * mm,
        title=f"{tpl['number']} - {tpl['title']} - {code}",
        author=ctx["unit_name"],
    )
    doc.build(story)
    return buf.getvalue()


def render_form(dossier_code: str, form: str, *, out_dir: Path | None = None) -> Path:
    """Render form ``01``..``05`` of a dossier and store it under ``<var_dir>/forms/<code>/``."""
    form = form.removeprefix("form").zfill(2)
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; forms are {', '.join(FORMS)}")
    with session_scope() as session:
        row = session.execute(
            select(DossierRow).where(DossierRow.code == dossier_code)
        ).scalar_one_or_none()
        if row is None:
            from lienthong.db.store import DossierNotFound

            raise DossierNotFound(
                f"no dossier {dossier_code}", message_vi=f"Không tìm thấy hồ sơ {dossier_code}."
            )
        ctx = form_context(session, row, form)
    pdf = render_pdf(form, ctx)
    target = out_dir or get_settings().var_dir / "forms" / dossier_code
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"mau-{form}.pdf"
    tmp = path.with_suffix(".pdf.tmp")
    tmp.write_bytes(pdf)
    tmp.replace(path)  # never leave half a PDF where a reader looks
    return path
