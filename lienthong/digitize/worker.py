"""What the parent submits to the page pool or to another machine, importable without the page
reader: a worker (the pool's fork server has :mod:`lienthong.digitize.ocr` loaded already) imports
it on the first call, the parent never (numpy, PIL and pytesseract stay out of it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lienthong.digitize.jobs import OcrParams, PageJob

if TYPE_CHECKING:
    from lienthong.digitize.result import PageResult


def run_pages(jobs: list[PageJob], params: OcrParams) -> list[PageResult]:
    """:func:`lienthong.digitize.ocr.ocr_pages` in a pool worker."""
    from lienthong.digitize.ocr import ocr_pages

    return ocr_pages(jobs, params)


def run_page_detached(job: PageJob, params: OcrParams) -> PageResult:
    """One page on a machine that may not share the caller's scratch directory (a Dask worker):
    the page is read from ``job.path`` (the intake directory must be mounted there too), worked on
    in a scratch directory of its own, and its PDF comes back in the result as ``pdf_bytes``."""
    import shutil
    import tempfile
    from dataclasses import replace
    from pathlib import Path

    from lienthong.digitize.ocr import ocr_page

    work = tempfile.mkdtemp(prefix="lienthong-page-")
    try:
        page = ocr_page(job, replace(params, workdir=work))
        if page.error is None and page.pdf:
            page.pdf_bytes, page.pdf = Path(page.pdf).read_bytes(), None
        return page
    finally:
        shutil.rmtree(work, ignore_errors=True)
