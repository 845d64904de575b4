"""One page to text: prepare the page image (no re-encoding unless it must change), run tesseract
once for PDF + text + TSV, fix orientation with OSD when the page reads badly. Runs in pool workers.

Everything here is a plain function of picklable inputs returning a dict, so it runs the same in a
process pool, a thread pool, or a Prefect task.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lienthong.digitize.geometry import analyse, upright_score
from lienthong.digitize.jobs import JobKind, OcrParams, PageJob, nfc

__all__ = ["JobKind", "OcrParams", "PageJob", "nfc", "ocr_page", "ocr_pages", "osd", "parse_tsv", "parse_tsv_pages"]


def _import_pytesseract() -> Any:
    """pytesseract imports pandas when it is installed (for DataFrame output we never use): 0.13 s
    of every CLI start and of every spawned worker. Hide pandas while pytesseract loads."""
    import sys

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


# Upright score below minus this: the page is upside down (measured: upright pages score 0.2 to
# 0.75, upside-down ones -0.4 to -0.65 on the project's degraded sample scans).
UPSIDE_DOWN = 0.15

# Each tesseract is single-threaded: pages run in parallel instead, which is faster on every
# core count (OpenMP threads inside one page scale badly and fight the other workers).
os.environ["OMP_THREAD_LIMIT"] = "1"


@dataclass
class _Img:
    path: str  # file tesseract reads
    dpi: float
    source: str  # image | pdf_image | pdf_raster | tiff_frame
    owned: bool = False  # a temp file of ours (may be replaced)
    size: tuple[int, int] = (0, 0)
    extra: list[str] = field(default_factory=list)


class PageError(Exception):
    """Carries a typed reason back to the parent (typed errors are raised there, not pickled)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


# --- getting the pixels ------------------------------------------------------------------------


def _tmp(params: OcrParams, job: PageJob, suffix: str) -> str:
    return str(Path(params.workdir) / f"f{job.file_index}-p{job.index:05d}{suffix}")


def _save_pnm(im: Image.Image, path_base: str) -> str:
    """Uncompressed PNM: written and read in milliseconds (PNG would cost ~0.5 s per page)."""
    if im.mode not in ("1", "L", "RGB"):
        im = im.convert("RGB" if im.mode in ("RGBA", "P", "CMYK", "LA") else "L")
    path = path_base + {"1": ".pbm", "L": ".pgm", "RGB": ".ppm"}[im.mode]
    im.save(path)
    return path


def _check_pixels(w: int, h: int, params: OcrParams) -> None:
    if w * h > params.max_pixels:
        raise PageError("image_too_large", f"{w}x{h}")


def _full_page_image(page: Any) -> Any | None:
    """The page's only image XObject if the page is exactly one image drawn over the whole page."""
    from pypdf.generic import ContentStream

    res = page.get("/Resources")
    xobjs = res.get_object().get("/XObject") if res else None
    if not xobjs:
        return None
    xobjs = xobjs.get_object()
    if len(xobjs) != 1:
        return None
    name, ref = next(iter(xobjs.items()))
    xo = ref.get_object()
    if xo.get("/Subtype") != "/Image":
        return None
    ops = [op for _, op in ContentStream(page.get_contents(), page.pdf).operations]
    if any(op in (b"BT", b"re", b"l", b"c", b"S", b"f") for op in ops) or ops.count(b"Do") != 1:
        return None
    cms = [
        args for args, op in ContentStream(page.get_contents(), page.pdf).operations if op == b"cm"
    ]
    box = page.mediabox
    pw, ph = float(box.width), float(box.height)
    if not cms or not any(
        abs(float(a[0]) - pw) < 0.02 * pw and abs(float(a[3]) - ph) < 0.02 * ph for a in cms
    ):
        return None
    return xo


def _pdf_page(job: PageJob, params: OcrParams) -> _Img:
    # An open file, not a path: given a path, pypdf reads the whole file into memory, and a worker
    # would hold a 50-page scan for each of its pages.
    with open(job.path, "rb") as fh:
        return _pdf_page_from(fh, job, params)


def _pdf_page_from(fh: Any, job: PageJob, params: OcrParams) -> _Img:
    from pypdf import PdfReader

    reader = PdfReader(fh, strict=False)
    if job.encrypted:
        reader.decrypt("")
    page = reader.pages[job.frame]
    pw, ph = float(page.mediabox.width), float(page.mediabox.height)
    xo = None if page.rotation % 360 else _full_page_image(page)
    if xo is not None:
        w, h = int(xo["/Width"]), int(xo["/Height"])
        _check_pixels(w, h, params)
        dpi = round(w / (pw / 72.0), 1)
        filters = xo.get("/Filter")
        filters = list(filters) if isinstance(filters, list) else [filters]
        cs = xo.get("/ColorSpace")
        if (
            filters == ["/DCTDecode"]
            and cs in ("/DeviceGray", "/DeviceRGB")
            and "/Decode" not in xo
            and "/SMask" not in xo
        ):
            # The scanner's JPEG as it is: no decode, no re-encode, and the PDF keeps its bytes.
            path = _tmp(params, job, ".jpg")
            Path(path).write_bytes(xo._data)
            return _Img(path, dpi, "pdf_image", True, (w, h))
        im = page.images[0].image  # the only image (checked above), decoded by pypdf
        assert im is not None
        return _Img(_save_pnm(im, _tmp(params, job, "")), dpi, "pdf_image", True, (w, h))
    # Vector content or several images: render the page, the only case that needs pdftoppm.
    # pdftoppm decodes every image on the page, so a bomb hidden in one is refused first.
    res = page.get("/Resources")
    xobjs = res.get_object().get("/XObject") if res else None
    for ref in xobjs.get_object().values() if xobjs else []:
        xo_ = ref.get_object()
        if xo_.get("/Subtype") == "/Image":
            _check_pixels(int(xo_.get("/Width", 0)), int(xo_.get("/Height", 0)), params)
    rot = page.rotation % 180 == 90
    pw2, ph2 = (ph, pw) if rot else (pw, ph)
    dpi = float(params.raster_dpi)
    _check_pixels(round(pw2 / 72 * dpi), round(ph2 / 72 * dpi), params)
    base = _tmp(params, job, "-r")
    cmd = [
        "pdftoppm",
        "-r",
        str(dpi),
        "-f",
        str(job.frame + 1),
        "-l",
        str(job.frame + 1),
        "-singlefile",
        job.path,
        base,
    ]
    if job.encrypted:
        cmd[1:1] = ["-upw", ""]
    run = subprocess.run(cmd, capture_output=True, timeout=params.timeout)
    if run.returncode != 0 or not Path(base + ".ppm").exists():
        raise PageError("corrupt_file", f"pdftoppm: {run.stderr.decode(errors='replace')[:200]}")
    return _Img(
        base + ".ppm", dpi, "pdf_raster", True, (round(pw2 / 72 * dpi), round(ph2 / 72 * dpi))
    )


def _open(job: PageJob, params: OcrParams) -> _Img:
    if job.kind == "pdf_page":
        return _pdf_page(job, params)
    if job.kind == "tiff_frame":
        im = Image.open(job.path)
        im.seek(job.frame)
        _check_pixels(*im.size, params)
        return _Img(_save_pnm(im, _tmp(params, job, "")), job.dpi, "tiff_frame", True, im.size)
    return _Img(job.path, job.dpi, "image", False)


def _small_gray(path: str) -> tuple[np.ndarray, tuple[int, int], Image.Image | None]:
    """A quarter-scale grayscale copy for analysis (a JPEG decodes at 1/4 scale almost free)."""
    im = Image.open(path)
    size = im.size
    if im.format == "JPEG":
        im.draft("L", (size[0] // 4, size[1] // 4))
        return np.asarray(im.convert("L")), size, None
    im.load()
    full = im
    g = im.convert("L") if im.mode != "L" else im
    return np.asarray(g.reduce(4)), size, full


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


def _save_turned(im: Image.Image, path_base: str) -> str:
    """A turned page as JPEG (what tesseract's PDF would hold anyway), bilevel pages as PBM."""
    if im.mode == "1":
        return _save_pnm(im, path_base)
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")
    path = path_base + ".jpg"
    im.save(path, "JPEG", quality=85)
    return path


def _turn(
    img: _Img,
    rotate_cw: int,
    skew: float,
    params: OcrParams,
    job: PageJob,
    full: Image.Image | None,
) -> _Img:
    """Rotate by OSD's answer (clockwise degrees) and straighten the skew; writes a PNM."""
    im = full if full is not None else Image.open(img.path)
    if im.mode not in ("1", "L", "RGB"):
        im = im.convert("RGB")
    if rotate_cw:
        im = im.rotate(-rotate_cw, expand=True)
    if skew:
        # Nearest-neighbour: at 300 DPI a shift of one pixel is invisible to OCR, and it is six
        # times cheaper than bilinear, which matters because tesseract is waiting for the core.
        fill = 255 if im.mode in ("L", "1") else (255, 255, 255)
        im = im.rotate(-skew, resample=Image.Resampling.NEAREST, fillcolor=fill)
    path = _save_turned(im, _tmp(params, job, f"-t{rotate_cw}"))
    return _Img(path, img.dpi, img.source, True, im.size, img.extra)


# --- tesseract ------------------------------------------------------------------------------

_ROTATE_RE = re.compile(r"Rotate:\s*(\d+)")
_OCONF_RE = re.compile(r"Orientation confidence:\s*([\d.]+)")


def osd(path: str, dpi: float, params: OcrParams) -> tuple[int, float]:
    """tesseract's orientation detection: (clockwise degrees to turn the page, confidence)."""
    try:
        out = pytesseract.image_to_osd(
            path, config=f"--psm 0 --dpi {round(dpi)}", timeout=params.timeout
        )
    except (pytesseract.TesseractError, RuntimeError):  # too little text to decide
        return 0, 0.0
    rot, conf = _ROTATE_RE.search(out), _OCONF_RE.search(out)
    return (int(rot.group(1)) if rot else 0) % 360, float(conf.group(1)) if conf else 0.0


Word = tuple[str, float, int, int, int, int, int]  # text, conf, left, top, width, height, line key


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
        line_key = int(parts[2]) * 1_000_000 + int(parts[3]) * 1000 + int(parts[4])
        pages.setdefault(int(parts[1]), []).append(
            (text, conf, int(parts[6]), int(parts[7]), int(parts[8]), int(parts[9]), line_key)
        )
    return pages


def parse_tsv(tsv: str) -> list[Word]:
    """The recognised words of a one-page TSV."""
    return [w for words in parse_tsv_pages(tsv).values() for w in words]


def _run_tesseract(src: str, base: str, lang: str, config: str, timeout: float) -> None:
    try:
        pytesseract.pytesseract.run_tesseract(src, base, "pdf txt", lang, config, timeout=timeout)
    except RuntimeError as exc:  # pytesseract's timeout
        raise PageError("ocr_failed", f"timeout after {timeout:.0f} s") from exc
    except pytesseract.TesseractError as exc:
        msg = str(exc.message)[:300]
        code = "corrupt_file" if ("Error in pix" in msg or "read" in msg.lower()) else "ocr_failed"
        raise PageError(code, msg) from exc


def _reading(pdf: str, text: str, words: list[Word], params: OcrParams) -> dict[str, Any]:
    text = nfc(text).replace("\f", "")
    confs = [w[1] for w in words]
    mean = float(np.mean(confs)) if confs else 0.0
    low = sum(c < params.low_word_confidence for c in confs) / len(confs) if confs else 1.0
    return {
        "pdf": pdf,
        "text": text.strip("\n") + "\n" if text.strip() else "",
        "words": words,
        "confidence": round(mean, 2),
        "low_confidence_share": round(low, 4),
    }


def _config(dpi: float, params: OcrParams) -> str:
    return f"--dpi {round(dpi)} --psm {params.psm} -c tessedit_create_tsv=1"


def _read(path: str) -> str:
    return Path(path).read_text(encoding="utf-8", errors="replace")


def _tesseract(img: _Img, params: OcrParams, job: PageJob, tag: str) -> dict[str, Any]:
    base = _tmp(params, job, f"-o{tag}")
    _run_tesseract(img.path, base, params.lang, _config(img.dpi, params), params.timeout)
    words = parse_tsv(_read(base + ".tsv"))
    return _reading(base + ".pdf", _read(base + ".txt"), words, params)


def _tesseract_batch(
    imgs: list[_Img], params: OcrParams, jobs: list[PageJob]
) -> list[dict[str, Any]]:
    """Several pages in one tesseract run (a list file in, one PDF, text and TSV out), split back
    into pages: the language model is loaded once for the batch instead of once a page (~0.15 s
    of CPU each time, a sixth of reading an A4 form). The pages share one ``--dpi``."""
    from pypdf import PdfReader, PdfWriter

    base = _tmp(params, jobs[0], f"-batch{len(jobs)}")
    Path(base + ".list").write_text("".join(img.path + "\n" for img in imgs), encoding="utf-8")
    timeout = params.timeout * len(jobs)
    _run_tesseract(base + ".list", base, params.lang, _config(imgs[0].dpi, params), timeout)
    texts = _read(base + ".txt").split("\f")  # tesseract puts the separator between pages
    by_page = parse_tsv_pages(_read(base + ".tsv"))
    reader = PdfReader(base + ".pdf")
    if len(texts) != len(jobs) or len(reader.pages) != len(jobs):
        raise PageError("ocr_failed", f"tesseract returned {len(reader.pages)} of {len(jobs)} pages")
    out = []
    for k, job in enumerate(jobs):
        pdf = _tmp(params, job, "-oa.pdf")
        writer = PdfWriter()
        writer.add_page(reader.pages[k])
        with open(pdf, "wb") as fh:
            writer.write(fh)
        out.append(_reading(pdf, texts[k], by_page.get(k + 1, []), params))
    return out


def _score(r: dict[str, Any]) -> float:
    return float(r["confidence"]) * min(len(r["words"]), 50)


@dataclass
class _Prepared:
    """A page ready for tesseract: its image (turned and straightened if it had to be)."""

    job: PageJob
    img: _Img
    rotation: int
    skew: float
    upright: float
    ink_share: float
    timings: dict[str, float]


def _prepare(job: PageJob, params: OcrParams) -> _Prepared:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    Image.MAX_IMAGE_PIXELS = params.max_pixels  # second guard; intake checked the headers
    img = _open(job, params)
    small, size, full = _small_gray(img.path)
    img.size = size
    _check_pixels(*size, params)
    timings["prepare"] = time.perf_counter() - t0
    rotation, skew, upright = orientation(small, params)
    ink_share = float(np.mean(small < 128))
    skew = skew if abs(skew) >= params.deskew_min_degrees else 0.0
    if rotation or skew:
        img = _turn(img, rotation, skew, params, job, full)
    timings["geometry"] = time.perf_counter() - t0 - timings["prepare"]
    return _Prepared(job, img, rotation, skew, upright, ink_share, timings)


def _finish(
    prep: _Prepared, result: dict[str, Any], params: OcrParams, ocr_s: float
) -> dict[str, Any]:
    """The page's result, after the OSD recheck of a page that read badly."""
    job, img, rotation, osd_conf = prep.job, prep.img, prep.rotation, 0.0
    t1 = time.perf_counter()
    if result["confidence"] < params.recheck_below_confidence:
        r2, c2 = osd(img.path, img.dpi, params)
        if r2 and c2 >= params.min_osd_confidence:
            turned_img = _turn(img, r2, 0.0, params, job, None)
            second = _tesseract(turned_img, params, job, "b")
            if _score(second) > _score(result):
                result, rotation, osd_conf, img = second, (rotation + r2) % 360, c2, turned_img
    timings = prep.timings | {"ocr": ocr_s + time.perf_counter() - t1}
    timings["total"] = timings["prepare"] + timings["geometry"] + timings["ocr"]
    return {
        "file_index": job.file_index,
        "index": job.index,
        "source": img.source,
        "dpi": img.dpi,
        "width": img.size[0],
        "height": img.size[1],
        "rotation": rotation,
        "osd_confidence": round(osd_conf, 2),
        "skew_degrees": prep.skew,
        "ink_share": round(prep.ink_share, 4),
        "upright_score": round(prep.upright, 3),
        **result,
        "timings": {k: round(v, 4) for k, v in timings.items()},
        "error": None,
    }


def _guarded(job: PageJob, t0: float, fn: Callable[[], Any]) -> Any:
    """``fn()``, or the page's typed failure: a worker never dies on one page."""
    try:
        return fn()
    except PageError as exc:
        return _failed(job, exc.code, exc.detail, t0)
    except Image.DecompressionBombError as exc:
        return _failed(job, "image_too_large", str(exc), t0)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # PIL/pypdf on damaged data
        return _failed(job, "corrupt_file", f"{type(exc).__name__}: {exc}"[:300], t0)
    except Exception as exc:  # noqa: BLE001
        return _failed(job, "corrupt_file", f"{type(exc).__name__}: {exc}"[:300], t0)


def _read_one(prep: _Prepared, params: OcrParams) -> dict[str, Any]:
    t1 = time.perf_counter()
    result = _tesseract(prep.img, params, prep.job, "a")
    return _finish(prep, result, params, time.perf_counter() - t1)


def ocr_page(job: PageJob, params: OcrParams) -> dict[str, Any]:
    """OCR one page; returns text, words, confidences, the page PDF path, timings, or an error."""
    t0 = time.perf_counter()
    return _guarded(job, t0, lambda: _read_one(_prepare(job, params), params))


def ocr_pages(jobs: list[PageJob], params: OcrParams) -> list[dict[str, Any]]:
    """OCR several pages with one tesseract run per resolution (see :func:`_tesseract_batch`);
    one result per job, in order. A page that cannot be prepared fails alone; if the batch run
    fails, its pages are read one by one, so a bad page cannot take its neighbours down."""
    t0 = time.perf_counter()
    results: dict[int, dict[str, Any]] = {}
    ready: dict[int, list[tuple[int, _Prepared]]] = {}
    for k, job in enumerate(jobs):
        prep = _guarded(job, time.perf_counter(), partial(_prepare, job, params))
        if not isinstance(prep, _Prepared):
            results[k] = prep
        elif "\n" in prep.img.path:  # a path a list file cannot hold
            results[k] = _guarded(job, t0, partial(_read_one, prep, params))
        else:
            ready.setdefault(round(prep.img.dpi), []).append((k, prep))
    for group in ready.values():
        preps = [p for _, p in group]
        t1 = time.perf_counter()
        read: list[dict[str, Any]] | None = None
        if len(preps) > 1:
            try:
                read = _tesseract_batch([p.img for p in preps], params, [p.job for p in preps])
            except Exception:  # noqa: BLE001 - the pages are read one by one instead
                read = None
        share = (time.perf_counter() - t1) / len(preps)
        for i, (k, prep) in enumerate(group):
            work = (
                partial(_read_one, prep, params)
                if read is None
                else partial(_finish, prep, read[i], params, share)
            )
            results[k] = _guarded(prep.job, t0, work)
    return [results[k] for k in range(len(jobs))]


def _failed(job: PageJob, code: str, detail: str, t0: float) -> dict[str, Any]:
    return {
        "file_index": job.file_index,
        "index": job.index,
        "error": {"code": code, "detail": detail},
        "timings": {"total": round(time.perf_counter() - t0, 4)},
    }
