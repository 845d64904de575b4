"""What reading one page gives back: its words, text and confidences, how its pixels were obtained,
or why it could not be read. Plain data (picklable), so it crosses process pools and Dask alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

# Where a page's pixels came from.
#   text_layer: a PDF page read from its text, no OCR;  image: an image file as it is;
#   tiff_frame: one frame of a multi-page TIFF;         pdf_image: a PDF page's only image, taken
#   out as it is (no rendering);  pdf_render: a PDF page rendered by PDFium;  photo: the page
#   found in a phone photo, flattened (lienthong.digitize.photo).
SOURCES = ("text_layer", "image", "tiff_frame", "pdf_image", "pdf_render", "photo")


class Word(NamedTuple):
    """One recognised word and its box in the OCRed raster's pixels."""

    text: str
    confidence: float  # 0-100
    left: int
    top: int
    width: int
    height: int
    line: int  # block, paragraph and line of tesseract's layout in one number: equal on one line


@dataclass(frozen=True)
class PageFailure:
    """Why a page could not be read; ``code`` is one of the :mod:`~lienthong.digitize.errors`
    codes (corrupt_file, image_too_large, ocr_failed)."""

    code: str
    detail: str


@dataclass
class PageResult:
    """One page of one input file, read or failed (``error`` set, the rest left empty)."""

    file_index: int
    index: int  # page number in its file, from 0
    source: str = ""  # one of SOURCES
    text: str = ""
    words: list[Word] = field(default_factory=list)
    confidence: float = 0.0  # mean word confidence, 0-100
    low_confidence_share: float = 0.0
    dpi: float = 0.0  # of the raster OCRed
    width: int = 0
    height: int = 0
    rotation: int = 0  # clockwise degrees turned before reading
    osd_confidence: float = 0.0
    skew_degrees: float = 0.0
    ink_share: float = 0.0
    upright_score: float = 0.0
    # Scale applied to fit the pixel limit (1.0: none): a huge page read at a lower resolution.
    reduction: float = 1.0
    notes: list[str] = field(default_factory=list)
    pdf: str | None = None  # the page's searchable PDF (a file of the worker's scratch directory)
    pdf_bytes: bytes | None = None  # or its bytes, from a worker that shares no directory
    timings: dict[str, float] = field(default_factory=dict)
    error: PageFailure | None = None

    @property
    def page(self) -> int:
        """The page number as an official counts (from 1)."""
        return self.index + 1

    @property
    def word_count(self) -> int:
        return len(self.words) if self.words else len(self.text.split())

    @classmethod
    def failed(cls, file_index: int, index: int, code: str, detail: str, seconds: float = 0.0) -> PageResult:
        return cls(
            file_index,
            index,
            error=PageFailure(code, detail),
            timings={"total": round(seconds, 4)},
        )

    def details(self) -> dict[str, Any]:
        """The page as the JSON output and the component's metadata show it (no words, no paths)."""
        out = asdict(self)
        for key in ("words", "pdf", "pdf_bytes", "file_index"):
            out.pop(key)
        out["page"] = self.page
        out["word_count"] = self.word_count
        return out
