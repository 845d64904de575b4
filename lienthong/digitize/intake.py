"""Intake of a component file: safe name, real type from the bytes, limits, and the list of pages.

Only headers are read here (never a full decode), so a decompression bomb or a PDF of thousands of
pages is refused before it costs memory. PDF pages with a usable text layer are read now with pypdf;
the rest become OCR jobs.
"""

from __future__ import annotations

import contextlib
import os
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal

from PIL import Image

from lienthong.digitize.config import DigitizeConfig
from lienthong.digitize.errors import (
    CorruptFile,
    DigitizeError,
    EmptyFile,
    EncryptedPdf,
    ExtensionMismatch,
    FileMissing,
    FileTooLarge,
    ImageTooLarge,
    TooManyPages,
    UnsafeFileName,
    UnsupportedFileType,
)
from lienthong.digitize.jobs import PageJob

FileKind = Literal["pdf", "jpeg", "png", "tiff"]
EXTENSIONS: dict[str, FileKind] = {
    ".pdf": "pdf", ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".jfif": "jpeg",
    ".png": "png", ".tif": "tiff", ".tiff": "tiff",
}  # fmt: skip
_OTHER_MAGIC = [
    (b"PK\x03\x04", "ZIP/Office"), (b"GIF8", "GIF"), (b"MZ", "chương trình Windows (EXE)"),
    (b"\x7fELF", "chương trình (ELF)"), (b"RIFF", "RIFF/WebP"), (b"\xd0\xcf\x11\xe0", "Office cũ"),
    (b"Rar!", "RAR"), (b"7z\xbc\xaf", "7z"), (b"\x1f\x8b", "gzip"),
]  # fmt: skip


@dataclass(frozen=True)
class TextPage:
    """A PDF page read from its text layer (no OCR)."""

    file_index: int
    index: int
    text: str
    layout: str = ""  # the same text with its horizontal positions kept (pypdf layout mode)


@dataclass
class IntakeFile:
    path: Path
    name: str
    kind: FileKind
    size: int
    pages: list[PageJob | TextPage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ocr_jobs(self) -> list[PageJob]:
        return [p for p in self.pages if isinstance(p, PageJob)]


def sniff(head: bytes) -> str:
    """The real type from the first bytes: a :data:`FileKind`, or a description of another type."""
    if head[:4] == b"%PDF" or b"%PDF-" in head[:1024]:
        return "pdf"
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    for magic, what in _OTHER_MAGIC:
        if head.startswith(magic):
            return what
    low = head[:256].lstrip().lower()
    if low.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg")):
        return "HTML/XML"
    return "không xác định"


def check_name(name: str) -> str:
    """A file *name* (no directories) safe to show and to build output names from; NFC."""
    if not name or "\x00" in name or any(unicodedata.category(c) == "Cc" for c in name):
        raise UnsafeFileName(name, "empty or control characters")
    if "/" in name or "\\" in name:
        raise UnsafeFileName(name, "contains a directory separator")
    if name in (".", "..") or name.startswith(".."):
        raise UnsafeFileName(name, "path traversal")
    if len(name.encode("utf-8")) > 255:
        raise UnsafeFileName(name, "longer than 255 bytes")
    return unicodedata.normalize("NFC", name)


def resolve_file_ref(ref: str, roots: list[Path]) -> Path:
    """A component's ``file_ref`` as a path inside one of ``roots`` (symlinks resolved first)."""
    if not ref or "\x00" in ref:
        raise UnsafeFileName(ref, "empty or NUL byte")
    if ".." in PurePosixPath(ref).parts or ".." in PureWindowsPath(ref).parts:
        raise UnsafeFileName(ref, "path traversal ('..')")
    candidate = Path(ref) if os.path.isabs(ref) else roots[0] / ref
    real = Path(os.path.realpath(candidate))
    if not any(real == r or r in real.parents for r in roots):
        raise UnsafeFileName(ref, "outside the intake directories")
    check_name(real.name)
    return real


@contextlib.contextmanager
def _own_pixel_check() -> Iterator[None]:
    """Let PIL read any header: the pixel limit is ours (config), checked right after opening."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _dpi(im: Image.Image) -> float:
    dpi = im.info.get("dpi")
    try:
        value = float(dpi[0]) if dpi else 0.0
    except (TypeError, ValueError, IndexError):
        value = 0.0
    if 70 <= value <= 1200:
        return value
    # No usable resolution: assume an A4 page, which is what a component almost always is.
    return float(min(600, max(100, round(max(im.size) / 11.69))))


def open_file(
    path: Path, cfg: DigitizeConfig, *, file_index: int = 0, name: str | None = None
) -> IntakeFile:
    """Check one file and list its pages; raises a :class:`DigitizeError` for a bad file."""
    name = check_name(name or path.name)
    try:
        size = path.stat().st_size
    except FileNotFoundError as exc:
        raise FileMissing(name) from exc
    if not path.is_file():
        raise FileMissing(name)
    if size == 0:
        raise EmptyFile(name)
    if size > cfg.limits.max_file_bytes:
        raise FileTooLarge(name, size, cfg.limits.max_file_bytes)
    with path.open("rb") as fh:
        head = fh.read(2048)
        fh.seek(max(0, size - 4096))
        tail = fh.read()
    kind = sniff(head)
    if kind not in ("pdf", "jpeg", "png", "tiff"):
        raise UnsupportedFileType(name, kind)
    ext = Path(name).suffix.lower()
    notes: list[str] = []
    if ext and EXTENSIONS.get(ext) != kind:
        if cfg.intake.extension_mismatch == "reject":
            raise ExtensionMismatch(name, ext or "(none)", kind.upper())
        notes.append(f"extension {ext} but content is {kind}")
    intake = IntakeFile(path, name, kind, size, notes=notes)  # type: ignore[arg-type]
    if kind == "pdf":
        _pdf_pages(intake, tail, cfg, file_index)
    else:
        _image_pages(intake, tail, cfg, file_index)
    return intake


def _image_pages(intake: IntakeFile, tail: bytes, cfg: DigitizeConfig, fi: int) -> None:
    name = intake.name
    if intake.kind == "jpeg" and b"\xff\xd9" not in tail:
        raise CorruptFile(name, "JPEG without end-of-image marker (truncated)")
    if intake.kind == "png" and b"IEND" not in tail:
        raise CorruptFile(name, "PNG without IEND chunk (truncated)")
    try:
        with _own_pixel_check():
            im = Image.open(intake.path)
    except Exception as exc:  # noqa: BLE001 - PIL raises many types (KeyError, TypeError) on damage
        raise CorruptFile(name, f"{type(exc).__name__}: {exc}"[:200]) from exc
    try:
        _frames(intake, im, cfg, fi)
    except DigitizeError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged TIFF directory fails in many ways
        raise CorruptFile(name, f"{type(exc).__name__}: {exc}"[:200]) from exc
    finally:
        im.close()


def _frames(intake: IntakeFile, im: Image.Image, cfg: DigitizeConfig, fi: int) -> None:
    name, lim = intake.name, cfg.limits
    frame = 0
    while True:
        w, h = im.size
        if w * h > lim.max_source_pixels and not (intake.kind == "tiff" and frame):
            # A bomb: decoding it would cost gigabytes. A large but sane image (above max_pixels)
            # is read at a lower resolution; a bad later TIFF frame fails as its page alone.
            raise ImageTooLarge(name, w, h, lim.max_source_pixels)
        if frame >= lim.max_pages:
            raise TooManyPages(name, f"> {lim.max_pages}", lim.max_pages)
        many = intake.kind == "tiff" and getattr(im, "n_frames", 1) > 1 if frame == 0 else True
        intake.pages.append(
            PageJob(fi, frame, "tiff_frame" if many else "image", str(intake.path), frame, _dpi(im))
        )
        if intake.kind != "tiff":
            break
        try:
            im.seek(frame + 1)
        except EOFError:
            break
        frame += 1
    if len(intake.pages) == 1 and intake.kind == "tiff":
        first = intake.pages[0]
        assert isinstance(first, PageJob)
        intake.pages[0] = PageJob(fi, 0, "image", str(intake.path), 0, first.dpi)


def usable_text(text: str, cfg: DigitizeConfig) -> bool:
    """A text layer worth keeping: enough characters, few replacement or private-use ones."""
    chars = [c for c in text if not c.isspace()]
    if len(chars) < cfg.text_layer.min_chars:
        return False
    bad = sum(c == "\ufffd" or unicodedata.category(c) in ("Co", "Cs", "Cn") for c in chars)
    return bad / len(chars) <= cfg.text_layer.max_garbage_share


def _pdfium_pages(intake: IntakeFile, cfg: DigitizeConfig, fi: int, why: str) -> None:
    """The pages of a PDF that pypdf cannot open, as PDFium (the renderer) sees them: refused only
    if PDFium cannot open it either."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    name, lim = intake.name, cfg.limits
    encrypted = False
    try:
        doc = pdfium.PdfDocument(intake.path)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) != pdfium_c.FPDF_ERR_PASSWORD:
            raise CorruptFile(name, f"{why}; PDFium: {exc}"[:200]) from exc
        try:
            doc = pdfium.PdfDocument(intake.path, password="")
        except pdfium.PdfiumError as exc2:
            raise EncryptedPdf(name) from exc2
        encrypted = True
    try:
        count = len(doc)
        if count == 0:
            raise CorruptFile(name, "no pages")
        if count > lim.max_pages:
            raise TooManyPages(name, count, lim.max_pages)
        # Every page is OCRed from what PDFium draws: the output PDF is made of tesseract's pages,
        # so nothing of the file's own structure (which pypdf cannot copy) is needed.
        intake.notes.append(f"read by PDFium, every page OCRed: pypdf could not parse it ({why})")
        intake.pages.extend(
            PageJob(fi, i, "pdf_page", str(intake.path), i, cfg.ocr.dpi, encrypted)
            for i in range(count)
        )
    finally:
        doc.close()


def _pdf_pages(intake: IntakeFile, tail: bytes, cfg: DigitizeConfig, fi: int) -> None:
    from pypdf import PdfReader

    if b"%%EOF" not in tail:
        raise CorruptFile(intake.name, "no %%EOF marker at the end (truncated)")
    with intake.path.open("rb") as fh:  # a file, so pypdf reads objects as needed, not all at once
        _pdf_pages_from(PdfReader, fh, intake, cfg, fi)


def _pdf_pages_from(
    PdfReader: Any, fh: Any, intake: IntakeFile, cfg: DigitizeConfig, fi: int
) -> None:
    name, lim = intake.name, cfg.limits
    try:
        reader = PdfReader(fh, strict=False)
        encrypted = reader.is_encrypted
        if encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as exc:  # noqa: BLE001 - unknown algorithms, broken dictionaries
                raise EncryptedPdf(name) from exc
            if not ok:
                raise EncryptedPdf(name)
            intake.notes.append("encrypted with an empty user password; opened")
        count = len(reader.pages)
    except EncryptedPdf:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on damaged files
        # What a renderer reads, the project reads: PDFium repairs what pypdf cannot parse.
        _pdfium_pages(intake, cfg, fi, f"{type(exc).__name__}: {exc}"[:200])
        return
    if count == 0:
        raise CorruptFile(name, "no pages")
    if count > lim.max_pages:
        raise TooManyPages(name, count, lim.max_pages)
    for i in range(count):
        # The page's size is no limit: a huge page is rendered at the resolution the pixel limit
        # allows (lienthong.digitize.raster). A page pypdf cannot parse is left to PDFium.
        try:
            page = reader.pages[i]
            text = page.extract_text() or ""
        except Exception:  # noqa: BLE001 - an unreadable text layer is just no text layer
            page, text = None, ""
        text = unicodedata.normalize("NFC", text)
        if page is not None and usable_text(text, cfg):
            try:
                layout = page.extract_text(extraction_mode="layout") or ""
            except Exception:  # noqa: BLE001
                layout = text
            intake.pages.append(
                TextPage(fi, i, text.strip("\n") + "\n", unicodedata.normalize("NFC", layout))
            )
        else:
            intake.pages.append(
                PageJob(fi, i, "pdf_page", str(intake.path), i, cfg.ocr.dpi, encrypted)
            )
