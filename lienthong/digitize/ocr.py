"""One page to text: get its pixels (:mod:`~lienthong.digitize.raster`), turn and straighten it
from its own ink (:mod:`~lienthong.digitize.geometry`), read it with tesseract
(:mod:`~lienthong.digitize.tesseract`), alone or batched with its neighbours, and recheck the
orientation with OSD when the page reads badly. Runs in pool workers.

Every function here takes picklable inputs and returns a :class:`PageResult`, so it runs the same
in a process pool, a thread pool, or a Prefect task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from PIL import Image

from lienthong.digitize import tesseract
from lienthong.digitize.geometry import analyse, upright_score
from lienthong.digitize.jobs import OcrParams, PageJob
from lienthong.digitize.raster import PageError, Raster, open_raster, save_pnm, scratch, small_gray, turn
from lienthong.digitize.result import PageResult
from lienthong.digitize.tesseract import Reading

__all__ = ["PageResult", "ocr_page", "ocr_pages", "orientation"]

# Upright score below minus this: the page is upside down (measured: upright pages score 0.2 to
# 0.75, upside-down ones -0.4 to -0.65 on the project's degraded sample scans).
UPSIDE_DOWN = 0.15


def orientation(small: np.ndarray, params: OcrParams) -> tuple[int, float, float]:
    """(clockwise turn to make the page upright, skew after the turn, upright score) from the
    page's own ink: no OSD pass, which costs as much as reading the page. A wrong guess is caught
    after OCR by the confidence recheck, which asks tesseract's OSD."""
    geo = analyse(small, params.deskew_max_degrees)
    if geo.vertical_text:
        side = np.ascontiguousarray(np.rot90(small, k=-1))  # turned 90 degrees clockwise
        skew = analyse(side, params.deskew_max_degrees).skew_degrees
        score = upright_score(side, skew)
        return (270, skew, -score) if score < -UPSIDE_DOWN else (90, skew, score)
    score = upright_score(small, geo.skew_degrees)
    return (180 if score < -UPSIDE_DOWN else 0), geo.skew_degrees, score


@dataclass
class _Prepared:
    """A page ready for tesseract: its raster (turned and straightened if it had to be)."""

    job: PageJob
    raster: Raster
    rotation: int
    skew: float
    upright: float
    ink_share: float
    timings: dict[str, float]


def _prepare(job: PageJob, params: OcrParams) -> _Prepared:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    raster = open_raster(job, params)
    small, size, full = small_gray(raster.path)
    raster.size = size
    if params.photos and job.kind == "image":
        photo = _photo_page(raster, small, size, params, job)
        if photo is not None:
            raster, (small, size, full) = photo, small_gray(photo.path)
    timings["prepare"] = time.perf_counter() - t0
    rotation, skew, upright = orientation(small, params)
    ink_share = float(np.mean(small < 128))
    skew = skew if abs(skew) >= params.deskew_min_degrees else 0.0
    if rotation or skew:
        raster = turn(raster, rotation, skew, scratch(params, job, f"-t{rotation}"), full)
    timings["geometry"] = time.perf_counter() - t0 - timings["prepare"]
    return _Prepared(job, raster, rotation, skew, upright, ink_share, timings)


def _photo_page(
    raster: Raster, small: np.ndarray, size: tuple[int, int], params: OcrParams, job: PageJob
) -> Raster | None:
    """A phone photo's page, flattened (see :mod:`lienthong.digitize.photo`), or None for a scan.
    The page is looked for on the quarter-scale copy; only a photo is decoded in full."""
    from lienthong.digitize import photo

    found = photo.find_page(small, params.photo_min_page_share, params.photo_max_page_share)
    if found is None:
        return None
    corners, share = found
    corners = corners * np.array([size[0] / small.shape[1], size[1] / small.shape[0]], np.float32)
    gray = np.asarray(Image.open(raster.path).convert("L"))
    page = photo.flatten(gray, corners, params.raster_dpi)
    dpi = round(max(page.shape) / (297 / 25.4), 1)
    path = save_pnm(Image.fromarray(page), scratch(params, job, "-photo"))
    note = f"phone photo: page found ({share:.0%} of the frame), perspective undone, light evened"
    return Raster(path, dpi, "photo", (page.shape[1], page.shape[0]), raster.reduction, [*raster.notes, note])


def _finish(prep: _Prepared, reading: Reading, params: OcrParams, ocr_s: float) -> PageResult:
    """The page's result, after the OSD recheck of a page that read badly."""
    job, raster, rotation, osd_conf = prep.job, prep.raster, prep.rotation, 0.0
    t1 = time.perf_counter()
    if reading.confidence < params.recheck_below_confidence:
        r2, c2 = tesseract.osd(raster.path, raster.dpi, params)
        if r2 and c2 >= params.min_osd_confidence:
            turned = turn(raster, r2, 0.0, scratch(params, job, f"-t{r2}b"))
            second = tesseract.read_one(turned.path, turned.dpi, scratch(params, job, "-ob"), params)
            if second.score > reading.score:
                reading, rotation, osd_conf, raster = second, (rotation + r2) % 360, c2, turned
    timings = prep.timings | {"ocr": ocr_s + time.perf_counter() - t1}
    timings["total"] = timings["prepare"] + timings["geometry"] + timings["ocr"]
    return PageResult(
        file_index=job.file_index,
        index=job.index,
        source=raster.source,
        text=reading.text,
        words=reading.words,
        confidence=reading.confidence,
        low_confidence_share=reading.low_confidence_share,
        dpi=raster.dpi,
        width=raster.size[0],
        height=raster.size[1],
        rotation=rotation,
        osd_confidence=round(osd_conf, 2),
        skew_degrees=prep.skew,
        ink_share=round(prep.ink_share, 4),
        upright_score=round(prep.upright, 3),
        reduction=raster.reduction,
        notes=list(raster.notes),
        pdf=reading.pdf,
        timings={k: round(v, 4) for k, v in timings.items()},
    )


def _failed(job: PageJob, code: str, detail: str, t0: float) -> PageResult:
    return PageResult.failed(job.file_index, job.index, code, detail, time.perf_counter() - t0)


def _guarded(job: PageJob, t0: float, fn: Callable[[], Any]) -> Any:
    """``fn()``, or the page's typed failure: a worker never dies on one page."""
    try:
        return fn()
    except PageError as exc:
        return _failed(job, exc.code, exc.detail, t0)
    except Image.DecompressionBombError as exc:
        return _failed(job, "image_too_large", str(exc), t0)
    except Exception as exc:  # noqa: BLE001 - PIL/PDFium on damaged data raise many types
        return _failed(job, "corrupt_file", f"{type(exc).__name__}: {exc}"[:300], t0)


def _read_one(prep: _Prepared, params: OcrParams) -> PageResult:
    t1 = time.perf_counter()
    r = prep.raster
    reading = tesseract.read_one(r.path, r.dpi, scratch(params, prep.job, "-oa"), params)
    return _finish(prep, reading, params, time.perf_counter() - t1)


def ocr_page(job: PageJob, params: OcrParams) -> PageResult:
    """OCR one page: text, words, confidences, the page PDF, timings, or the page's failure."""
    t0 = time.perf_counter()
    return _guarded(job, t0, lambda: _read_one(_prepare(job, params), params))


def ocr_pages(jobs: list[PageJob], params: OcrParams) -> list[PageResult]:
    """OCR several pages with one tesseract run per resolution (see
    :func:`~lienthong.digitize.tesseract.read_batch`); one result per job, in order. A page that
    cannot be prepared fails alone; if the batch run fails, its pages are read one by one, so a
    bad page cannot take its neighbours down."""
    t0 = time.perf_counter()
    results: dict[int, PageResult] = {}
    ready: dict[int, list[tuple[int, _Prepared]]] = {}
    for k, job in enumerate(jobs):
        prep = _guarded(job, time.perf_counter(), partial(_prepare, job, params))
        if not isinstance(prep, _Prepared):
            results[k] = prep
        elif "\n" in prep.raster.path:  # a path a list file cannot hold
            results[k] = _guarded(job, t0, partial(_read_one, prep, params))
        else:
            ready.setdefault(round(prep.raster.dpi), []).append((k, prep))
    for group in ready.values():
        preps = [p for _, p in group]
        t1 = time.perf_counter()
        read: list[Reading] | None = None
        if len(preps) > 1:
            try:
                read = tesseract.read_batch(
                    [p.raster.path for p in preps],
                    preps[0].raster.dpi,
                    scratch(params, preps[0].job, f"-batch{len(preps)}"),
                    [scratch(params, p.job, "-oa.pdf") for p in preps],
                    params,
                )
            except Exception:  # noqa: BLE001 - the pages are read one by one instead
                read = None
        share = (time.perf_counter() - t1) / len(preps)
        for i, (k, prep) in enumerate(group):
            work = partial(_read_one, prep, params) if read is None else partial(_finish, prep, read[i], params, share)
            results[k] = _guarded(prep.job, t0, work)
    return [results[k] for k in range(len(jobs))]
