"""Files in, searchable PDF + text + JSON out. Pages of all files share one pool, so a batch of
single-page scans keeps every core busy just as one long PDF does."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lienthong.digitize import errors as E
from lienthong.digitize.config import DigitizeConfig, load_config
from lienthong.digitize.fields import FORMS, field_labels, fields_for
from lienthong.digitize.intake import IntakeFile, TextPage, check_name, open_file
from lienthong.digitize.jobs import OcrParams, PageJob, batches, nfc
from lienthong.digitize.pool import get_pool, reset_pool, start_server
from lienthong.digitize.quality import Reason, check_fields, check_page, reasons_as_dicts
from lienthong.digitize.result import PageFailure, PageResult, Word
from lienthong.digitize.worker import run_pages as _pool_run_pages


@dataclass
class FileResult:
    """The outcome of one input file; ``error`` is set (and nothing written) for a bad file."""

    name: str
    path: str
    stem: str
    pages: list[PageResult] = field(default_factory=list)
    confidence: float | None = None
    seconds: float = 0.0
    form: str | None = None
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    review: bool = False
    reasons: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sha256: str | None = None
    error: E.DigitizeError | None = None
    index: int = -1  # position among the files of the call

    @property
    def text(self) -> str:
        return "\f".join(p.text for p in self.pages)

    def summary(self) -> dict[str, Any]:
        """What the JSON output holds (and what a task stores as component metadata)."""
        return {
            "file": self.name,
            "sha256": self.sha256,
            "pages": len(self.pages),
            "confidence": self.confidence,
            "seconds": round(self.seconds, 3),
            "form": self.form,
            "fields": self.fields,
            "review": self.review,
            "reasons": self.reasons,
            "outputs": self.outputs,
            "notes": self.notes,
            "error": self.error.as_dict() if self.error else None,
        }


# OCR of a batch's pages somewhere else than the local pool: given the jobs and the parameters, yield
# one :class:`PageResult` per job, in any order (as they finish). A result may carry its page PDF as
# ``pdf_bytes`` instead of a ``pdf`` path the parent can read.
RunPages = Callable[[list[PageJob], OcrParams], Iterable[PageResult]]


def _params(cfg: DigitizeConfig, workdir: str, lang: str | None) -> OcrParams:
    return OcrParams(
        lang=lang or cfg.lang,
        psm=cfg.ocr.psm,
        raster_dpi=cfg.ocr.dpi,
        timeout=cfg.limits.page_timeout_seconds,
        max_pixels=cfg.limits.max_pixels,
        max_source_pixels=cfg.limits.max_source_pixels,
        low_word_confidence=cfg.ocr.low_word_confidence,
        recheck_below_confidence=cfg.orientation.recheck_below_confidence,
        min_osd_confidence=cfg.orientation.min_osd_confidence,
        deskew_min_degrees=cfg.deskew.min_degrees,
        deskew_max_degrees=cfg.deskew.max_degrees,
        photos=cfg.photos.enabled,
        photo_min_page_share=cfg.photos.min_page_share,
        photo_max_page_share=cfg.photos.max_page_share,
        workdir=workdir,
    )


def _page_error(name: str, err: PageFailure, cfg: DigitizeConfig) -> E.DigitizeError:
    code, detail = err.code, err.detail
    if code == "image_too_large":
        w, _, h = detail.partition("x")
        dims = (int(w), int(h)) if w.isdigit() and h.isdigit() else (0, 0)
        return E.ImageTooLarge(name, dims[0], dims[1], cfg.limits.max_source_pixels)
    if code == "ocr_failed":
        return E.OcrFailed(name, detail)
    return E.CorruptFile(name, detail)


def layout_words(layout: str) -> list[Word]:
    """Word boxes for a text-layer page, from its layout text (a character is ~10 px, a line 50 px),
    so the same field extraction serves text-layer pages and OCR pages."""
    words = []
    for j, line in enumerate(layout.splitlines()):
        for m in re.finditer(r"\S+", line):
            words.append(Word(m.group(), 100.0, m.start() * 10, j * 50, len(m.group()) * 10, 40, j))
    return words


def _unique_stem(stem: str, used: set[str]) -> str:
    out, n = stem, 2
    while out in used:
        out, n = f"{stem}-{n}", n + 1
    used.add(out)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def digitize_files(
    paths: Sequence[Path | str],
    out_dir: Path | str,
    cfg: DigitizeConfig | None = None,
    *,
    names: Sequence[str | None] | None = None,
    stems: Sequence[str | None] | None = None,
    forms: Sequence[str | None] | None = None,
    lang: str | None = None,
    on_page: Callable[[int, PageResult], None] | None = None,
    on_file: Callable[[FileResult], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
    out_dirs: Sequence[Path | str | None] | None = None,
    run_pages: RunPages | None = None,
) -> list[FileResult]:
    """Digitize ``paths`` into ``out_dir``; a bad file gets ``error`` set and the others go on.

    ``names``: file names to show and check (default: each path's name); ``stems``: output names;
    ``forms``: a known form kind per file (else detected from the text); ``out_dirs``: an output
    directory per file (default ``out_dir``). ``on_plan`` gets the number of pages once the files
    are opened, ``on_page`` each page as it is done. ``run_pages`` OCRs the pages elsewhere (e.g.
    on a Dask cluster, see :data:`RunPages`); by default they run on the local page pool.
    """
    cfg = cfg or load_config()
    if run_pages is None and cfg.ocr.executor == "process":
        start_server(cfg.ocr.start_method)  # loads the page reader while the files are opened
    n = len(paths)
    dirs = [Path(d or out_dir) for d in (out_dirs or [None] * n)]
    for d in set(dirs):
        d.mkdir(parents=True, exist_ok=True)
    names = list(names or [None] * n)
    stems = list(stems or [None] * n)
    forms = list(forms or [None] * n)
    results: list[FileResult] = []
    intakes: list[IntakeFile | None] = []
    used: dict[Path, set[str]] = {d: set() for d in dirs}  # output names taken, per directory
    for i, p in enumerate(paths):
        p = Path(p)
        name = names[i] or p.name
        stem = stems[i] or Path(name).stem or "document"
        res = FileResult(name=name, path=str(p), stem="", index=i)
        try:
            check_name(name)
            stem = check_name(stem)
            res.stem = _unique_stem(stem, used[dirs[i]])
            intake = open_file(p, cfg, file_index=i, name=name)
            res.notes += intake.notes
            intakes.append(intake)
        except E.DigitizeError as exc:
            res.error = exc
            intakes.append(None)
        results.append(res)

    workdir = tempfile.mkdtemp(prefix="lienthong-ocr-")
    params = _params(cfg, workdir, lang)
    pending: dict[int, int] = {}
    page_results: dict[int, dict[int, PageResult]] = {i: {} for i in range(n)}
    jobs: list[PageJob] = []
    for i, opened in enumerate(intakes):
        if opened is None:
            continue
        pending[i] = len(opened.pages)
        for pg in opened.pages:
            if isinstance(pg, TextPage):
                page_results[i][pg.index] = PageResult(
                    i,
                    pg.index,
                    "text_layer",
                    pg.text,
                    layout_words(pg.layout or pg.text),
                    confidence=100.0,
                )
            else:
                jobs.append(pg)

    def finish(i: int) -> None:
        intake = intakes[i]
        assert intake is not None
        _finish(results[i], intake, page_results[i], dirs[i], cfg, forms[i])
        if on_file:
            on_file(results[i])

    try:
        if on_file:
            for i, maybe in enumerate(intakes):
                if maybe is None:
                    on_file(results[i])
        if on_plan:
            on_plan(sum(pending.values()))
        for i in list(pending):
            if on_page:
                for page in page_results[i].values():  # text-layer pages are done already
                    on_page(i, page)
            if len(page_results[i]) == pending[i]:
                finish(i)
        pages = run_pages(jobs, params) if run_pages is not None else _run(jobs, params, cfg)
        for page in pages:
            if page.pdf_bytes is not None:  # OCRed on another machine: its PDF came with it
                page.pdf = str(Path(workdir) / f"f{page.file_index}-p{page.index:05d}-x.pdf")
                Path(page.pdf).write_bytes(page.pdf_bytes)
                page.pdf_bytes = None
            i = page.file_index
            page_results[i][page.index] = page
            if on_page:
                on_page(i, page)
            if len(page_results[i]) == pending[i]:
                finish(i)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _run(jobs: list[PageJob], params: OcrParams, cfg: DigitizeConfig) -> Iterator[PageResult]:
    """Pages as their batch finishes (see :func:`batches`). A dead worker process is replaced
    once; its pages are retried."""
    from concurrent.futures import as_completed

    todo = list(jobs)
    for _attempt in (1, 2):
        if not todo:
            return
        pool = get_pool(cfg.ocr)
        futures: dict[Future[list[PageResult]], list[PageJob]] = {
            pool.submit(_pool_run_pages, batch, params): batch
            for batch in batches(todo, cfg.ocr.worker_count(), cfg.ocr.batch_pages)
        }
        todo = []
        for fut in as_completed(futures):
            try:
                yield from fut.result()
            except BrokenProcessPool:
                todo += futures[fut]
        if todo:
            reset_pool()
    for j in todo:
        yield PageResult.failed(j.file_index, j.index, "ocr_failed", "worker process died")


def _finish(
    res: FileResult,
    intake: IntakeFile,
    pages: dict[int, PageResult],
    out: Path,
    cfg: DigitizeConfig,
    form_hint: str | None,
) -> None:
    """The file's outcome from its pages. A page that failed fails alone: the others are read and
    the component goes to review with the page named. Only a file none of whose pages could be
    read is refused."""
    t0 = time.perf_counter()
    ordered = [pages[k] for k in sorted(pages)]
    read = [p for p in ordered if p.error is None]
    failed = [p for p in ordered if p.error is not None]
    if not read:
        assert failed[0].error is not None
        res.error = _page_error(intake.name, failed[0].error, cfg)
        res.seconds = sum(p.timings.get("total", 0.0) for p in ordered)
        return
    res.form, res.fields = fields_for(form_hint, read)
    reasons: list[Reason] = [_failed_reason(intake.name, p, cfg) for p in failed]
    reasons += [r for p in read for r in check_page(p, cfg)]
    if res.form:
        reasons += check_fields(res.fields, FORMS[res.form]["required"], cfg, field_labels(res.form))
    res.reasons = reasons_as_dicts(reasons)
    res.review = bool(reasons)
    res.notes += [f"page {p.page}: {n}" for p in read for n in p.notes]
    weights = [(p.confidence, p.word_count) for p in read if p.word_count]
    total = sum(w for _, w in weights)
    res.confidence = round(sum(c * w for c, w in weights) / total, 2) if total else None
    res.sha256 = _sha256(intake.path)
    res.pages = ordered
    _write_outputs(res, intake, ordered, out)
    for p in ordered:
        p.pdf = None  # a file of the scratch directory, which goes with the call
    res.seconds = sum(p.timings.get("total", 0.0) for p in ordered) + time.perf_counter() - t0
    res.outputs["json"] = str(out / f"{res.stem}.json")
    _atomic_write(
        out / f"{res.stem}.json",
        json.dumps(
            res.summary() | {"page_details": [p.details() for p in ordered]},
            ensure_ascii=False,
            indent=1,
        ).encode("utf-8"),
    )


def _failed_reason(name: str, page: PageResult, cfg: DigitizeConfig) -> Reason:
    assert page.error is not None
    err = _page_error(name, page.error, cfg)
    return Reason(
        "page_failed",
        f"Trang {page.page}: không đọc được ({err.code}). {err.message_vi}",
        page.page,
    )


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_outputs(res: FileResult, intake: IntakeFile, pages: list[PageResult], out: Path) -> None:
    pdf_path = out / f"{res.stem}.pdf"
    tmp = pdf_path.with_name(pdf_path.name + ".part")
    if len(pages) == 1 and pages[0].pdf:
        # One OCRed page: tesseract's PDF is the output as it is. Parsing and rewriting it with
        # pypdf would cost ~15 ms a file and change nothing a reader sees.
        shutil.copyfile(pages[0].pdf, tmp)
    else:
        _merge_pdf(intake, pages, tmp)
    os.replace(tmp, pdf_path)
    _atomic_write(out / f"{res.stem}.txt", nfc(res.text).encode("utf-8"))
    res.outputs = {"pdf": str(pdf_path), "txt": str(out / f"{res.stem}.txt")}


def _merge_pdf(intake: IntakeFile, pages: list[PageResult], dest: Path) -> None:
    """The component's PDF: text-layer pages from the source file, OCRed pages from tesseract's,
    and a page that could not be read as the source has it (when pypdf can copy it) so that the
    official reviewing the component sees it."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    source: PdfReader | None = None
    with contextlib.ExitStack() as files:
        for p in pages:
            if p.pdf:
                writer.add_page(PdfReader(files.enter_context(open(p.pdf, "rb"))).pages[0])
                continue
            if intake.kind != "pdf":
                continue
            try:
                if source is None:
                    source = PdfReader(files.enter_context(intake.path.open("rb")), strict=False)
                    if source.is_encrypted:
                        source.decrypt("")
                writer.add_page(source.pages[p.index])
            except Exception:  # noqa: BLE001 - a page pypdf cannot copy is left out of the PDF
                if p.source == "text_layer":
                    raise
        with dest.open("wb") as fh:
            writer.write(fh)


def digitize_file(
    path: Path | str,
    out_dir: Path | str,
    cfg: DigitizeConfig | None = None,
    *,
    name: str | None = None,
    stem: str | None = None,
    form: str | None = None,
    lang: str | None = None,
) -> FileResult:
    """Digitize one file; raises the file's :class:`DigitizeError` instead of returning it."""
    (res,) = digitize_files([path], out_dir, cfg, names=[name], stems=[stem], forms=[form], lang=lang)
    if res.error is not None:
        raise res.error
    return res
