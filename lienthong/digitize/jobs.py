"""What the parent process hands to the page workers, without the workers' heavy imports.

The parent (the CLI, a Prefect task) only lists pages and writes outputs; numpy, PIL's decoders and
pytesseract are needed where pages are read, in the pool's workers. Keeping these definitions here
lets the parent start without them (~0.2 s of imports) while the pool's fork server loads them in
parallel (see :mod:`lienthong.digitize.pool`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

JobKind = Literal["image", "tiff_frame", "pdf_page"]


@dataclass(frozen=True)
class PageJob:
    """A page that needs OCR: where its pixels are and how to get them."""

    file_index: int  # which input file of the batch
    index: int  # page number in the file, from 0
    kind: JobKind
    path: str
    frame: int = 0  # TIFF frame or PDF page index
    dpi: float = 300.0
    encrypted: bool = False  # PDF opened with the empty password


@dataclass(frozen=True)
class OcrParams:
    lang: str = "vie"
    psm: int = 3
    raster_dpi: int = 300
    timeout: float = 120
    max_pixels: int = 60_000_000  # the raster OCRed (a larger page is read smaller)
    max_source_pixels: int = 250_000_000  # an image to decode (beyond: a bomb)
    low_word_confidence: float = 60
    recheck_below_confidence: float = 55
    min_osd_confidence: float = 1.5
    deskew_min_degrees: float = 1.0
    deskew_max_degrees: float = 5.0
    photos: bool = True  # find the page in a phone photo, undo perspective, even the light
    photo_min_page_share: float = 0.2
    photo_max_page_share: float = 0.93
    workdir: str = "/tmp"


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def batches(jobs: list[PageJob], workers: int, max_pages: int) -> list[list[PageJob]]:
    """Consecutive pages in batches of at most ``max_pages`` for one tesseract run each: as few as
    possible, but at least two a worker, so that a slow batch is balanced by the others. Sizes
    differ by one page at most."""
    if not jobs:
        return []
    workers = max(1, workers)
    count = workers * max(2, -(-len(jobs) // (workers * max(1, max_pages))))
    count = min(len(jobs), count)
    size, extra = divmod(len(jobs), count)
    out, start = [], 0
    for b in range(count):
        end = start + size + (b < extra)
        out.append(jobs[start:end])
        start = end
    return out
