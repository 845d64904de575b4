"""Digitization against its anchors, like for like, on the same generated pages in the same run.

Pages come in classes (samples/page_classes.py: upright, rotated, skewed, low contrast), a few of
each. Every contender gets the same help and makes the same deliverables:

(a) ``lienthong digitize`` (the command an operator runs, a fresh process each time, start-up
    included): searchable PDF, text and JSON (fields, confidences); it turns and straightens pages
    from their ink and rechecks a badly read page with OSD, and batches pages through tesseract
    list files (``ocr.batch_pages``);
(b) the raw ``tesseract`` CLI with the same help: list-file batches (one run a core, so the
    language model loads once a run), orientation detection (``--psm 1``), OMP_THREAD_LIMIT=1,
    ``txt pdf tsv`` (the TSV gives the words the field extractor needs);
(c) ``ocrmypdf --rotate-pages --deskew`` if installed (``make bench`` installs it), all cores.

Reports per page class the character error rate against the generator's text and the fields read
right (for (b) and (c) the project's extractor on their words / text layer), for (a) the pages the
review gate held and the wrong fields it let through; the time and CPU ratios a/b and a/c as the
median of paired rounds (each round runs every contender once, in a turning order; CPU of each
side's whole process tree, the benchmark being a child subreaper); the peak memory (PSS of the
process tree) of (a) on a 50-page PDF (target < 500 MB). ``--executors`` also compares the page
pools. Targets (issue 17): time a/b <= 1.10, CER no worse than (b) on any class.

``--skew`` instead reads generated forms at several skew angles twice, straightened and as scanned,
and prints the character error rate, the fields read right and the CPU seconds of each: the
evidence for ``deskew.min_degrees`` in config/digitize.yaml.

    python -m bench.bench_digitize [--per-class 3] [--rounds 3] [--classes upright,rotated]
    python -m bench.bench_digitize --skew [--seeds 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import paired, record

REPO = Path(__file__).resolve().parent.parent


def _pages(n: int, out: Path) -> tuple[list[Path], list[str]]:
    """n A4 pages at 300 DPI, mixed degradation (light, typical, poor scans; one upside down)."""
    from samples.forms import Degradation, make_form

    paths, truths = [], []
    for i in range(n):
        kind = "birth_certificate" if i % 2 == 0 else "death_notice"
        level = (0.5, 1.0, 1.5)[i % 3]
        form = make_form(kind, 1000 + i, level=level)
        if i == n // 2:  # a page fed upside down: the anchors do not turn it, (a) does
            d = form.degradation
            form = make_form(
                kind,
                1000 + i,
                Degradation(d.skew_degrees, d.blur_radius, d.noise_sigma, d.jpeg_quality, 180),
            )
        paths.append(form.save(out / f"page{i:02d}.jpg"))
        truths.append(form.text)
    return paths, truths


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (two rows, pure Python; pages are ~1000 characters)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(texts: list[str], truths: list[str]) -> float:
    dist = sum(_distance(_norm(t), _norm(g)) for t, g in zip(texts, truths, strict=True))
    return dist / sum(len(_norm(g)) for g in truths)


def run_a(paths: list[Path], out: Path) -> tuple[float, list[str]]:
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lienthong.cli",
            "digitize",
            *map(str, paths),
            "--out",
            str(out),
            "--no-progress",
        ],
        check=True,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    dt = time.perf_counter() - t0
    _reap_orphans()
    return dt, [(out / f"{p.stem}.txt").read_text(encoding="utf-8") for p in paths]


def _become_subreaper() -> bool:
    """Adopt orphaned descendants (a pool's fork server outlives the CLI by a moment), so their CPU
    time reaches RUSAGE_CHILDREN when reaped. Linux only; False if unavailable."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _reap_orphans(timeout: float = 5.0) -> None:
    """Wait for adopted descendants (see :func:`_become_subreaper`) to exit."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.01)


def engine_args() -> list[str]:
    """tesseract's settings as (a) uses them (languages, page segmentation), from the config."""
    from lienthong.digitize.config import load_config

    cfg = load_config()
    return ["-l", cfg.lang, "--psm", str(cfg.ocr.psm)]


def ocrmypdf_cmd() -> list[str] | None:
    exe = shutil.which("ocrmypdf") or str(Path(sys.executable).parent / "ocrmypdf")
    return [exe] if Path(exe).exists() else None


def _children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _tree_rss(pid: int) -> int:
    """Memory in bytes of a process and all its descendants: the sum of their PSS (proportional set
    size), so pages a forked worker shares with its parent count once, not once per process."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
        stack += children.get(p, [])
    return total


def peak_memory(pdf: Path, out: Path) -> tuple[int, float]:
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lienthong.cli",
            "digitize",
            str(pdf),
            "--out",
            str(out),
            "--no-progress",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    t0 = time.perf_counter()
    while proc.poll() is None:
        peak = max(peak, _tree_rss(proc.pid))
        time.sleep(0.05)
    dt = time.perf_counter() - t0
    _reap_orphans()
    return peak, dt


def executors(paths: list[Path], out: Path) -> dict[str, float]:
    """Seconds for the same pages through each pool (in process, after a warm-up)."""
    from lienthong.digitize.config import load_config
    from lienthong.digitize.pipeline import digitize_files
    from lienthong.digitize.pool import reset_pool

    results: dict[str, float] = {}
    for label, ocr in [
        ("ProcessPoolExecutor (fork)", {"executor": "process", "start_method": "fork"}),
        ("ProcessPoolExecutor (forkserver)", {"executor": "process", "start_method": "forkserver"}),
        ("ThreadPoolExecutor", {"executor": "thread"}),
    ]:
        cfg = load_config(ocr=ocr)
        reset_pool()
        t0 = time.perf_counter()
        digitize_files(paths, out / "x", cfg)
        results[label] = time.perf_counter() - t0
    reset_pool()
    results["Prefect ProcessPoolTaskRunner"] = _prefect_runner(paths, out)
    return results


def _prefect_runner(paths: list[Path], out: Path) -> float:
    """Pages as Prefect tasks on ProcessPoolTaskRunner (the OCR function is the same)."""
    from prefect import flow, task
    from prefect.task_runners import ProcessPoolTaskRunner

    from lienthong.digitize.config import load_config
    from lienthong.digitize.intake import open_file
    from lienthong.digitize.ocr import ocr_page
    from lienthong.digitize.pipeline import _params

    cfg = load_config()
    work = tempfile.mkdtemp()
    params = _params(cfg, work, None)
    jobs = [job for i, p in enumerate(paths) for job in open_file(p, cfg, file_index=i).ocr_jobs]
    page_task = task(ocr_page, name="ocr-page", persist_result=False)

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=os.cpu_count() or 1))
    def pages(js: list[Any]) -> list[dict[str, Any]]:
        return [f.result() for f in page_task.map(js, params)]

    pages(jobs[:2])  # warm-up: server, runner processes
    t0 = time.perf_counter()
    res = pages(jobs)
    dt = time.perf_counter() - t0
    assert all(r.error is None for r in res)
    shutil.rmtree(work, ignore_errors=True)
    return dt


SKEW_ANGLES = (0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25)


def _skew_case(case: tuple[str, int, float, float]) -> dict[str, Any]:
    """One generated form at one skew, OCRed straightened and as scanned (in a pool worker)."""
    import random
    import resource
    from dataclasses import replace

    from lienthong.digitize.fields import extract_fields
    from lienthong.digitize.jobs import OcrParams, PageJob
    from lienthong.digitize.ocr import ocr_page
    from samples.forms import Degradation, make_form

    kind, seed, angle, level = case
    work = Path(tempfile.mkdtemp(prefix="bench-skew-"))
    try:
        d = Degradation.random(random.Random(f"scan-{kind}-{seed}"), level=level)
        form = make_form(kind, seed, replace(d, skew_degrees=angle if seed % 2 else -angle))
        page = form.save(work / "p.jpg")
        truth = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in form.fields.items()}
        out: dict[str, Any] = {"angle": angle}
        for mode, min_degrees in (("turned", 0.01), ("as_scanned", 99.0)):
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            s0 = resource.getrusage(resource.RUSAGE_SELF)
            params = OcrParams(workdir=str(work), deskew_min_degrees=min_degrees)
            r = ocr_page(PageJob(0, 0, "image", str(page)), params)
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            s1 = resource.getrusage(resource.RUSAGE_SELF)
            fields = extract_fields(kind, [r])
            out[mode] = {
                "dist": _distance(_norm(r.text), _norm(form.text)),
                "chars": len(_norm(form.text)),
                "right": sum(fields.get(n, {}).get("value") == v for n, v in truth.items()),
                "fields": len(truth),
                "cpu": (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
                + (s1.ru_utime + s1.ru_stime - s0.ru_utime - s0.ru_stime),
            }
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def skew_table(seeds: int) -> None:
    """CER, fields and CPU per skew angle, straightened vs as scanned (typical and poor scans)."""
    from concurrent.futures import ProcessPoolExecutor

    cases = [
        (kind, 700 + 2 * s + (kind == "death_notice"), angle, level)
        for s in range(seeds)
        for kind in ("birth_certificate", "death_notice")
        for angle in SKEW_ANGLES
        for level in (1.0, 1.5)
    ]
    with ProcessPoolExecutor(os.cpu_count() or 1) as ex:
        res = list(ex.map(_skew_case, cases))
    print(f"{len(cases) // len(SKEW_ANGLES)} generated forms per angle (typical and poor scans)")
    print("  angle   CER turned  CER as scanned   fields turned  as scanned   cpu/page turned  as scanned")
    for angle in SKEW_ANGLES:
        rs = [r for r in res if r["angle"] == angle]

        def tot(mode: str, key: str, rs: list[dict[str, Any]] = rs) -> float:
            return sum(r[mode][key] for r in rs)

        print(
            f"  {angle:5.2f}   {tot('turned', 'dist') / tot('turned', 'chars'):10.4f}  "
            f"{tot('as_scanned', 'dist') / tot('as_scanned', 'chars'):14.4f}   "
            f"{tot('turned', 'right'):6.0f}/{tot('turned', 'fields'):<6.0f}  "
            f"{tot('as_scanned', 'right'):6.0f}/{tot('as_scanned', 'fields'):<6.0f}  "
            f"{tot('turned', 'cpu') / len(rs):11.3f} s  {tot('as_scanned', 'cpu') / len(rs):8.3f} s"
        )


def class_pages(per_class: int, out: Path, classes: list[str]) -> list[Page]:
    """``per_class`` generated pages of each class (samples/page_classes.py), saved as the
    scanner's JPEG; seeds differ across classes, so no two pages are the same form."""
    from samples.page_classes import CLASSES

    pages = []
    for c, name in enumerate(classes):
        for k in range(per_class):
            seed = 2000 + 100 * c + k
            form = CLASSES[name](seed)
            path = form.save(out / f"{name}-{k:02d}.jpg")
            truth = {f: (v.isoformat() if hasattr(v, "isoformat") else v) for f, v in form.fields.items()}
            pages.append(Page(name, path, form.kind, form.text, truth))
    return pages


@dataclass
class Page:
    cls: str
    path: Path
    kind: str
    text: str
    fields: dict[str, Any]


@dataclass
class Reading:
    """One contender's reading of the pages: text and fields per page, and whether the review
    gate held the page (only (a) has a gate)."""

    texts: list[str]
    fields: list[dict[str, Any]]
    review: list[bool] | None = None


def _fields_from_words(kind: str, words: list[Any]) -> dict[str, Any]:
    from lienthong.digitize.fields import extract_fields
    from lienthong.digitize.result import PageResult

    return {k: v.get("value") for k, v in extract_fields(kind, [PageResult(0, 0, words=words)]).items()}


def read_a(pages: list[Page], out: Path) -> tuple[float, Reading]:
    import json

    dt, texts = run_a([p.path for p in pages], out)
    fields, review = [], []
    for p in pages:
        data = json.loads((out / f"{p.path.stem}.json").read_text(encoding="utf-8"))
        fields.append({k: v.get("value") for k, v in data["fields"].items()})
        review.append(bool(data["review"]))
    return dt, Reading(texts, fields, review)


def read_b(pages: list[Page], out: Path) -> tuple[float, Reading]:
    """Raw tesseract with the same help as (a): pages batched through a list file (one run per
    core, the language model loaded once a run), orientation detection (``--psm 1``: OSD, then
    automatic segmentation), and the same deliverables (searchable PDF, text, TSV)."""
    from lienthong.digitize.tesseract import parse_tsv_pages

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    lang = engine_args()[1]
    workers = min(os.cpu_count() or 1, len(pages))
    groups = [list(range(w, len(pages), workers)) for w in range(workers)]

    def one(w: int) -> None:
        (out / f"w{w}.list").write_text("".join(f"{pages[i].path}\n" for i in groups[w]), encoding="utf-8")
        subprocess.run(
            ["tesseract", str(out / f"w{w}.list"), str(out / f"w{w}"), "-l", lang, "--psm", "1",
             "--dpi", "300", "txt", "pdf", "tsv"],
            check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, range(workers)))
    dt = time.perf_counter() - t0
    texts, fields = [""] * len(pages), [{}] * len(pages)
    for w, idx in enumerate(groups):
        parts = (out / f"w{w}.txt").read_text(encoding="utf-8").split("\f")
        words = parse_tsv_pages((out / f"w{w}.tsv").read_text(encoding="utf-8"))
        for k, i in enumerate(idx):
            texts[i] = parts[k] if k < len(parts) else ""
            fields[i] = _fields_from_words(pages[i].kind, words.get(k + 1, []))
    return dt, Reading(texts, fields)


def read_c(pages: list[Page], pdf: Path, out: Path) -> tuple[float, Reading]:
    """OCRmyPDF with the same help: ``--rotate-pages --deskew``, all cores, no optimisation pass
    (the others make none). Fields: the project's extractor on OCRmyPDF's text, as lienthong reads
    a text layer."""
    from lienthong.digitize.pipeline import layout_words

    cmd = ocrmypdf_cmd()
    assert cmd
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    subprocess.run(
        [*cmd, "-l", engine_args()[1], "--rotate-pages", "--deskew", "--optimize", "0",
         "--jobs", str(os.cpu_count() or 1), "--output-type", "pdf", "--sidecar", str(out / "c.txt"),
         str(pdf), str(out / "c.pdf")],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    dt = time.perf_counter() - t0
    texts = ((out / "c.txt").read_text(encoding="utf-8").split("\f") + [""] * len(pages))[: len(pages)]
    # pypdf's layout text of OCRmyPDF's invisible glyphs loses the lines, so the fields come from
    # its sidecar text (tesseract's reading order, a line a row), as a text layer would give them.
    fields = [_fields_from_words(p.kind, layout_words(t)) for p, t in zip(pages, texts, strict=True)]
    return dt, Reading(texts, fields)


def scores(pages: list[Page], reading: Reading, cls: str) -> dict[str, float]:
    """CER, fields right of fields, and (with a gate) wrong fields on pages the gate let through."""
    idx = [i for i, p in enumerate(pages) if p.cls == cls or cls == "all"]
    texts = [reading.texts[i] for i in idx]
    out = {"cer": cer(texts, [pages[i].text for i in idx]), "right": 0.0, "fields": 0.0}
    passed_wrong = 0
    for i in idx:
        for name, value in pages[i].fields.items():
            ok = reading.fields[i].get(name) == value
            out["right"] += ok
            out["fields"] += 1
            if not ok and reading.review is not None and not reading.review[i]:
                passed_wrong += 1
    if reading.review is not None:
        out["passed_wrong"] = passed_wrong
        out["held"] = sum(reading.review[i] for i in idx)
    return out


def main(argv: list[str] | None = None) -> int:
    from samples.page_classes import CLASSES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-class", type=int, default=3, help="pages of each class")
    ap.add_argument("--classes", default=",".join(CLASSES), help="page classes (samples/page_classes.py)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory-pages", type=int, default=50)
    ap.add_argument("--executors", action="store_true")
    ap.add_argument("--skew", action="store_true", help="only the skew table (deskew.min_degrees)")
    ap.add_argument("--seeds", type=int, default=5, help="forms per kind, angle and scan level")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    if args.skew:
        skew_table(args.seeds)
        return 0
    from PIL import Image

    from samples.forms import write_pdf

    # (a) starts as an installed package does, from bytecode (pip compiles it on install); an
    # editable checkout under PYTHONDONTWRITEBYTECODE would compile its modules at every start.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "lienthong")], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-digitize-"))
    try:
        classes = args.classes.split(",")
        pages = class_pages(args.per_class, tmp, classes)
        n = len(pages)
        pdf = write_pdf([Image.open(p.path) for p in pages], tmp / "pages.pdf")
        print(
            f"{n} generated A4 pages at 300 DPI, {args.per_class} of each class ({', '.join(classes)}), "
            f"{os.cpu_count()} cores, {args.rounds} paired rounds"
        )
        print("  (a) lienthong digitize: searchable PDF, text, JSON with fields; turns and straightens pages")
        print("  (b) tesseract CLI, list-file batches (one run a core), --psm 1 (OSD), txt+pdf+tsv")
        print("  (c) ocrmypdf --rotate-pages --deskew --optimize 0, all cores, PDF + sidecar text")
        has_c = ocrmypdf_cmd() is not None
        exact_cpu = _become_subreaper()
        contenders: dict[str, Callable[[], tuple[float, Reading]]] = {
            "a": lambda: read_a(pages, tmp / "a"),
            "b": lambda: read_b(pages, tmp / "b"),
            **({"c": lambda: read_c(pages, pdf, tmp / "c")} if has_c else {}),
        }
        names = list(contenders)
        times: dict[str, list[float]] = {k: [] for k in names}
        cpu: dict[str, list[float]] = {k: [] for k in names}
        last: dict[str, Reading] = {}
        for r in range(args.rounds):
            # The order turns every round, so that no contender always runs first (or after the
            # same neighbour) while the shared machine's load drifts.
            for key in names[r % len(names) :] + names[: r % len(names)]:
                c0 = _children_cpu()
                dt, reading = contenders[key]()
                cpu[key].append(_children_cpu() - c0)
                times[key].append(dt)
                last[key] = reading  # the engines are deterministic: every round reads the same
        print()
        print(f"  {'class':14s} {'contender':4s} {'CER':>8s} {'fields right':>14s} {'held for review':>16s} "
              f"{'wrong fields let through':>25s}")
        for cls in [*classes, "all"]:
            for key in names:
                sc = scores(pages, last[key], cls)
                gate = (f"{sc['held']:>10.0f} pages {sc['passed_wrong']:>18.0f}" if "held" in sc else
                        f"{'-':>16s} {'-':>25s}")
                print(f"  {cls:14s} ({key})  {sc['cer']:8.4f} {sc['right']:8.0f}/{sc['fields']:<5.0f} {gate}")
                record(f"CER ({key}) {cls}", sc["cer"], "")
                record(f"fields right ({key}) {cls}", sc["right"] / sc["fields"], "share")
                if "passed_wrong" in sc and cls == "all":
                    record("wrong fields not held for review (a), all classes", sc["passed_wrong"], "fields")
        print()
        for key in names:
            best = min(times[key])
            print(f"  ({key}) best round {best:6.2f} s ({n / best:5.2f} pages/s), "
                  f"least CPU {min(cpu[key]):6.2f} s")
            record(f"({key}) best round", n / best, "pages/s")

        def per_round(anchor: str, series: dict[str, list[float]]) -> list[float]:
            return [x / y for x, y in zip(series["a"], series[anchor], strict=True)]

        print(paired("time a/b (raw tesseract, batched, --psm 1)", per_round("b", times), "<= 1.10"))
        note = "" if exact_cpu else " (fork server's CPU not counted: no subreaper)"
        print(paired(f"CPU a/b{note}", per_round("b", cpu), ""))
        if has_c:
            print(paired("time a/c (ocrmypdf --rotate-pages --deskew)", per_round("c", times), ""))
        else:
            print("  ratio a/c: ocrmypdf not installed (make bench installs it)")
        mp = args.memory_pages
        big = write_pdf([Image.open(pages[i % n].path) for i in range(mp)], tmp / "big.pdf")
        peak, secs = peak_memory(big, tmp / "mem")
        record(f"peak memory of (a), {mp}-page PDF", peak / 2**20, "MB", target="< 500 MB")
        print(
            f"  peak memory of (a) on a {mp}-page PDF: {peak / 2**20:.0f} MB (PSS of the process tree; "
            f"target < 500 MB), {mp / secs:.2f} pages/s"
        )
        if args.executors:
            res = executors([p.path for p in pages], tmp)
            base = res["ProcessPoolExecutor (fork)"]
            for label, dt in res.items():
                print(f"  pool {label:34s} {dt:6.2f} s  ratio {dt / base:.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    from bench.common import standalone

    sys.exit(standalone("bench_digitize", main))
