"""tesseract's command line: one run gives a page's searchable PDF, its text and its word boxes
(TSV); a list file gives several pages in one run; ``--psm 0`` gives the orientation (OSD)."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lienthong.digitize.jobs import OcrParams, nfc
from lienthong.digitize.raster import PageError
from lienthong.digitize.result import Word


def _import_pytesseract() -> Any:
    """pytesseract imports pandas when it is installed (for DataFrame output we never use): 0.13 s
    of every CLI start and of every spawned worker. Hide pandas while pytesseract loads."""
    if "pandas" in sys.modules:
        import pytesseract as mod
    else:
        sys.modules["pandas"] = None  # type: ignore[assignment]
        try:
            import pytesseract as mod
        finally:
            del sys.modules["pandas"]
    return mod


pytesseract = _import_pytesseract()

# Each tesseract is single-threaded: pages run in parallel instead, which is faster on every
# core count (OpenMP threads inside one page scale badly and fight the other workers).
os.environ["OMP_THREAD_LIMIT"] = "1"


@dataclass
class Reading:
    """What one tesseract run says about one page."""

    pdf: str
    text: str
    words: list[Word]
    confidence: float
    low_confidence_share: float

    @property
    def score(self) -> float:
        """For choosing between two readings of a page: confident and plentiful words win."""
        return self.confidence * min(len(self.words), 50)


_ROTATE_RE = re.compile(r"Rotate:\s*(\d+)")
_OCONF_RE = re.compile(r"Orientation confidence:\s*([\d.]+)")


def osd(path: str, dpi: float, params: OcrParams) -> tuple[int, float]:
    """tesseract's orientation detection: (clockwise degrees to turn the page, confidence)."""
    try:
        out = pytesseract.image_to_osd(path, config=f"--psm 0 --dpi {round(dpi)}", timeout=params.timeout)
    except (pytesseract.TesseractError, RuntimeError):  # too little text to decide
        return 0, 0.0
    rot, conf = _ROTATE_RE.search(out), _OCONF_RE.search(out)
    return (int(rot.group(1)) if rot else 0) % 360, float(conf.group(1)) if conf else 0.0


def parse_tsv_pages(tsv: str) -> dict[int, list[Word]]:
    """The recognised words of tesseract's TSV by page number (from 1: several for a batch)."""
    pages: dict[int, list[Word]] = {}
    for row in tsv.splitlines()[1:]:
        parts = row.split("\t")
        if len(parts) < 12 or parts[0] != "5":
            continue
        text = nfc(parts[11].strip())
        conf = float(parts[10])
        if not text or conf < 0:
            continue
        line = int(parts[2]) * 1_000_000 + int(parts[3]) * 1000 + int(parts[4])
        pages.setdefault(int(parts[1]), []).append(
            Word(text, conf, int(parts[6]), int(parts[7]), int(parts[8]), int(parts[9]), line)
        )
    return pages


def parse_tsv(tsv: str) -> list[Word]:
    """The recognised words of a one-page TSV."""
    return [w for words in parse_tsv_pages(tsv).values() for w in words]


def _run(src: str, base: str, lang: str, config: str, timeout: float) -> None:
    try:
        pytesseract.pytesseract.run_tesseract(src, base, "pdf txt", lang, config, timeout=timeout)
    except RuntimeError as exc:  # pytesseract's timeout
        raise PageError("ocr_failed", f"timeout after {timeout:.0f} s") from exc
    except pytesseract.TesseractError as exc:
        msg = str(exc.message)[:300]
        code = "corrupt_file" if ("Error in pix" in msg or "read" in msg.lower()) else "ocr_failed"
        raise PageError(code, msg) from exc


def _reading(pdf: str, text: str, words: list[Word], params: OcrParams) -> Reading:
    text = nfc(text).replace("\f", "")
    confs = [w.confidence for w in words]
    mean = sum(confs) / len(confs) if confs else 0.0
    low = sum(c < params.low_word_confidence for c in confs) / len(confs) if confs else 1.0
    return Reading(pdf, text.strip("\n") + "\n" if text.strip() else "", words, round(mean, 2), round(low, 4))


def _config(dpi: float, params: OcrParams) -> str:
    return f"--dpi {round(dpi)} --psm {params.psm} -c tessedit_create_tsv=1"


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


def read_one(image: str, dpi: float, base: str, params: OcrParams) -> Reading:
    """One page in one tesseract run; its outputs are ``base`` + .pdf/.txt/.tsv."""
    _run(image, base, params.lang, _config(dpi, params), params.timeout)
    words = parse_tsv(_read(base + ".tsv"))
    return _reading(base + ".pdf", _read(base + ".txt"), words, params)


def read_batch(images: list[str], dpi: float, base: str, pdfs: list[str], params: OcrParams) -> list[Reading]:
    """Several pages in one tesseract run (a list file in, one PDF, text and TSV out), split back
    into pages (``pdfs``: where each page's one-page PDF goes): the language model is loaded once
    for the batch instead of once a page (~0.15 s of CPU each time, a sixth of reading an A4
    form). The pages share one ``--dpi``."""
    from pypdf import PdfReader, PdfWriter

    Path(base + ".list").write_text("".join(p + "\n" for p in images), encoding="utf-8")
    timeout = params.timeout * len(images)
    _run(base + ".list", base, params.lang, _config(dpi, params), timeout)
    texts = _read(base + ".txt").split("\f")  # tesseract puts the separator between pages
    by_page = parse_tsv_pages(_read(base + ".tsv"))
    reader = PdfReader(base + ".pdf")
    if len(texts) != len(images) or len(reader.pages) != len(images):
        raise PageError("ocr_failed", f"tesseract returned {len(reader.pages)} of {len(images)} pages")
    out = []
    for k, pdf in enumerate(pdfs):
        writer = PdfWriter()
        writer.add_page(reader.pages[k])
        with open(pdf, "wb") as fh:
            writer.write(fh)
        out.append(_reading(pdf, texts[k], by_page.get(k + 1, []), params))
    return out
