"""A page's pixels, as the file tesseract will read: an image file as it is, a TIFF frame, a PDF
page's only image taken out directly, or the page rendered by PDFium (pypdfium2) at the OCR
resolution. What PDFium can render, this reads: every PDF image encoding (JBIG2 with or without
global segments, CCITT G3/G4, JPEG, JPEG 2000, Flate, LZW, RunLength) and colour space.

Two pixel limits: ``max_pixels`` bounds the raster that is OCRed (a larger page or image is read at
a lower resolution, and the reduction is recorded); ``max_source_pixels`` bounds what must be
decoded to get there (an image beyond it is a decompression bomb, and its page fails alone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lienthong.digitize.jobs import OcrParams, PageJob


class PageError(Exception):
    """A typed reason for one page's failure (turned into a :class:`PageFailure` by the reader)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


@dataclass
class Raster:
    path: str  # the file tesseract reads
    dpi: float
    source: str  # image | tiff_frame | pdf_image | pdf_render
    size: tuple[int, int] = (0, 0)
    reduction: float = 1.0
    notes: list[str] = field(default_factory=list)


def scratch(params: OcrParams, job: PageJob, suffix: str) -> str:
    return str(Path(params.workdir) / f"f{job.file_index}-p{job.index:05d}{suffix}")


def save_pnm(im: Image.Image, path_base: str) -> str:
    """Uncompressed PNM: written and read in milliseconds (PNG would cost ~0.5 s per page)."""
    if im.mode not in ("1", "L", "RGB"):
        im = im.convert("RGB" if im.mode in ("RGBA", "P", "CMYK", "LA", "RGBX") else "L")
    path = path_base + {"1": ".pbm", "L": ".pgm", "RGB": ".ppm"}[im.mode]
    im.save(path)
    return path


def _check_source(w: int, h: int, params: OcrParams) -> None:
    if w * h > params.max_source_pixels:
        raise PageError("image_too_large", f"{w}x{h}")


def fit_scale(w: float, h: float, params: OcrParams) -> float:
    """The scale (at most 1) that brings a ``w`` x ``h`` raster within ``max_pixels``."""
    return min(1.0, math.sqrt(params.max_pixels / (w * h))) if w * h > 0 else 1.0


def _fit(im: Image.Image, params: OcrParams) -> tuple[Image.Image, float]:
    s = fit_scale(*im.size, params)
    if s >= 1.0:
        return im, 1.0
    size = (max(1, int(im.size[0] * s)), max(1, int(im.size[1] * s)))
    if im.mode == "1":  # a bilevel scan keeps its strokes better through grey
        im = im.convert("L")
    return im.resize(size, Image.Resampling.BOX), s


def _image(job: PageJob, params: OcrParams) -> Raster:
    im = Image.open(job.path)
    w, h = im.size
    _check_source(w, h, params)
    s = fit_scale(w, h, params)
    if s >= 1.0:
        return Raster(job.path, job.dpi, "image", (w, h))
    if im.format == "JPEG":
        im.draft(im.mode, (int(w * s), int(h * s)))  # decodes at 1/2, 1/4 or 1/8 almost free
    out, _ = _fit(im, params)
    red = out.size[0] / w
    path = save_pnm(out, scratch(params, job, ""))
    return Raster(path, job.dpi * red, "image", out.size, round(red, 4), [_reduced(w, h, out)])


def _reduced(w: int, h: int, out: Image.Image) -> str:
    return f"{w}x{h} read at {out.size[0]}x{out.size[1]} (pixel limit)"


def _tiff_frame(job: PageJob, params: OcrParams) -> Raster:
    im = Image.open(job.path)
    im.seek(job.frame)
    w, h = im.size
    _check_source(w, h, params)
    out, s = _fit(im, params)
    notes = [_reduced(w, h, out)] if s < 1.0 else []
    path = save_pnm(out, scratch(params, job, ""))
    return Raster(path, job.dpi * s, "tiff_frame", out.size, round(s, 4), notes)


# --- PDF pages, through PDFium ----------------------------------------------------------------


def _sole_image(page: Any) -> Any | None:
    """The page's only visible object if it is an image drawn upright (no turn, no flip, no
    shear): such a page is its image, taken out without rendering. Anything else is rendered."""
    import pypdfium2.raw as pdfium_c

    objs = list(page.get_objects())
    if len(objs) != 1 or objs[0].type != pdfium_c.FPDF_PAGEOBJ_IMAGE:
        return None
    if page.get_rotation() % 360:
        return None
    m = objs[0].get_matrix()
    if m.b or m.c or m.a <= 0 or m.d <= 0:
        return None
    return objs[0]


def _direct(img: Any, job: PageJob, params: OcrParams) -> Raster:
    """The image's pixels as the PDF holds them: a JPEG's own bytes when tesseract can read them
    as they are (no decode, no re-encode), else PDFium's decoding of the stream."""
    import pypdfium2.raw as pdfium_c

    w, h = img.get_px_size()
    _check_source(w, h, params)
    dpi = round(w / (img.get_matrix().a / 72.0), 1)
    meta = img.get_metadata()
    filters = img.get_filters()
    simple_jpeg = filters == ["DCTDecode"] and meta.colorspace in (
        pdfium_c.FPDF_COLORSPACE_DEVICEGRAY,
        pdfium_c.FPDF_COLORSPACE_DEVICERGB,
    )
    if simple_jpeg and fit_scale(w, h, params) >= 1.0:
        path = scratch(params, job, ".jpg")
        Path(path).write_bytes(bytes(img.get_data(decode_simple=False)))
        return Raster(path, dpi, "pdf_image", (w, h))
    pil = img.get_bitmap(render=False).to_pil()
    if meta.bits_per_pixel == 1 and pil.mode == "L":
        pil = pil.point(lambda v: 255 if v >= 128 else 0).convert("1")
    out, s = _fit(pil, params)
    notes = [_reduced(w, h, out)] if s < 1.0 else []
    path = save_pnm(out, scratch(params, job, ""))
    return Raster(path, dpi * s, "pdf_image", out.size, round(s, 4), notes)


def _render(page: Any, job: PageJob, params: OcrParams, notes: list[str]) -> Raster:
    """The page as PDFium draws it, at the OCR resolution or the highest the pixel limit allows.
    Every image it must decode to do so is checked against the source limit first."""
    import pypdfium2.raw as pdfium_c

    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE]):
        w, h = obj.get_px_size()
        _check_source(w, h, params)
    pw, ph = page.get_size()  # points, with the page's /Rotate applied
    scale = params.raster_dpi / 72.0
    s = fit_scale(pw * scale, ph * scale, params)
    bitmap = page.render(scale=scale * s, may_draw_forms=True)
    im = bitmap.to_pil()
    if s < 1.0:
        notes = [*notes, f"page of {pw / 72:.1f} x {ph / 72:.1f} in rendered at "
                 f"{params.raster_dpi * s:.0f} DPI (pixel limit)"]  # fmt: skip
    path = save_pnm(im, scratch(params, job, "-r"))
    return Raster(path, params.raster_dpi * s, "pdf_render", im.size, round(s, 4), notes)


def _pdf_page(job: PageJob, params: OcrParams) -> Raster:
    import pypdfium2 as pdfium

    try:
        doc = pdfium.PdfDocument(job.path, password="" if job.encrypted else None)
    except pdfium.PdfiumError as exc:
        raise PageError("corrupt_file", f"PDFium: {exc}") from exc
    try:
        try:
            page = doc[job.frame]
        except Exception as exc:  # noqa: BLE001 - PDFium cannot load this page's dictionary
            raise PageError("corrupt_file", f"page {job.frame + 1}: {exc}") from exc
        notes: list[str] = []
        img = _sole_image(page)
        if img is not None:
            try:
                return _direct(img, job, params)
            except PageError:
                raise
            except Exception as exc:  # noqa: BLE001 - the renderer may still draw it
                notes.append(f"image not taken out directly ({type(exc).__name__}); rendered")
        return _render(page, job, params, notes)
    finally:
        doc.close()


def open_raster(job: PageJob, params: OcrParams) -> Raster:
    """The page's pixels as a file tesseract reads; raises :class:`PageError` for a bad page."""
    Image.MAX_IMAGE_PIXELS = params.max_source_pixels  # PIL's own guard at our limit
    if job.kind == "pdf_page":
        return _pdf_page(job, params)
    if job.kind == "tiff_frame":
        return _tiff_frame(job, params)
    return _image(job, params)


def small_gray(path: str) -> tuple[np.ndarray, tuple[int, int], Image.Image | None]:
    """A quarter-scale grayscale copy for analysis (a JPEG decodes at 1/4 scale almost free), the
    full size, and the full image when it had to be decoded anyway (reused if it must turn)."""
    im = Image.open(path)
    size = im.size
    if im.format == "JPEG":
        im.draft("L", (size[0] // 4, size[1] // 4))
        return np.asarray(im.convert("L")), size, None
    im.load()
    g = im.convert("L") if im.mode != "L" else im
    return np.asarray(g.reduce(4)), size, im


def _save_turned(im: Image.Image, path_base: str) -> str:
    """A turned page as JPEG (what tesseract's PDF would hold anyway), bilevel pages as PBM."""
    if im.mode == "1":
        return save_pnm(im, path_base)
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    path = path_base + ".jpg"
    im.save(path, "JPEG", quality=85)
    return path


def turn(
    raster: Raster,
    rotate_cw: int,
    skew: float,
    path_base: str,
    full: Image.Image | None = None,
) -> Raster:
    """The raster turned clockwise by ``rotate_cw`` degrees and straightened by ``skew``."""
    im = full if full is not None else Image.open(raster.path)
    if im.mode not in ("1", "L", "RGB"):
        im = im.convert("RGB")
    if rotate_cw:
        im = im.rotate(-rotate_cw, expand=True)
    if skew:
        # Nearest-neighbour: at 300 DPI a shift of one pixel is invisible to OCR, and it is six
        # times cheaper than bilinear, which matters because tesseract is waiting for the core.
        fill = 255 if im.mode in ("L", "1") else (255, 255, 255)
        im = im.rotate(-skew, resample=Image.Resampling.NEAREST, fillcolor=fill)
    path = _save_turned(im, path_base)
    return Raster(path, raster.dpi, raster.source, im.size, raster.reduction, raster.notes)
