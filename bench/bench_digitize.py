"""Digitization against its anchors, on the same generated pages in the same run.

(a) ``lienthong digitize`` (the command an operator runs, a fresh process each time, start-up
included), writing per input a searchable PDF, the text and a JSON (per-page text, confidence,
timings, fields); (b) the raw ``tesseract`` CLI per page with OMP_THREAD_LIMIT=1 over all cores
(the physical limit), with the same engine settings as (a) (``--psm``, ``--dpi``, languages from
config/digitize.yaml) and asked for the same deliverables tesseract can make: the searchable PDF
and the text (``txt pdf``); rows for ``txt`` only and for ``txt pdf tsv`` (what (a) asks tesseract
for: the TSV carries the word confidences) are printed too, each with its ratio; (c) ``ocrmypdf -l
vie`` if installed. Only (a) turns an upside-down page and straightens skewed ones; the anchors
read the pages as they are. (a) hands each worker its pages in batches, one tesseract run a batch
(``ocr.batch_pages``), so it loads the language model once a batch where (b) loads it once a page.

Prints pages/s (best round), the ratios a/b (target <= 1.10) and a/c as the median of paired rounds
(each round runs every contender once, in a turning order), the CPU seconds of each side's whole
process tree (the benchmark is a child subreaper, so a pool's fork server and its workers are
counted too), each one's character error rate against the generator's text, and the peak memory
(PSS of the process tree) of (a) on a 50-page PDF (target < 500 MB). ``--executors`` also compares
the page pools (own ProcessPoolExecutor, threads, forkserver, Prefect's ProcessPoolTaskRunner).

``--skew`` instead reads generated forms at several skew angles twice, straightened and as scanned,
and prints the character error rate, the fields read right and the CPU seconds of each: the
evidence for ``deskew.min_degrees`` in config/digitize.yaml.

    python -m bench.bench_digitize [--pages 16] [--rounds 7] [--executors]
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
from concurrent.futures import ThreadPoolExecutor
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


def run_b(paths: list[Path], out: Path, extra: tuple[str, ...] = ()) -> tuple[float, list[str]]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    engine = engine_args()

    def one(p: Path) -> None:
        subprocess.run(
            ["tesseract", str(p), str(out / p.stem), *engine, "--dpi", "300", *extra],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    t0 = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count() or 1) as ex:
        list(ex.map(one, paths))
    dt = time.perf_counter() - t0
    return dt, [(out / f"{p.stem}.txt").read_text(encoding="utf-8") for p in paths]


def ocrmypdf_cmd() -> list[str] | None:
    exe = shutil.which("ocrmypdf") or str(Path(sys.executable).parent / "ocrmypdf")
    return [exe] if Path(exe).exists() else None


def run_c(pdf: Path, out: Path, n: int) -> tuple[float, list[str]]:
    cmd = ocrmypdf_cmd()
    assert cmd
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    subprocess.run(
        [
            *cmd,
            "-l",
            "vie",
            "--jobs",
            str(os.cpu_count() or 1),
            "--output-type",
            "pdf",
            "--sidecar",
            str(out / "c.txt"),
            str(pdf),
            str(out / "c.pdf"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    dt = time.perf_counter() - t0
    texts = (out / "c.txt").read_text(encoding="utf-8").split("\f")
    return dt, (texts + [""] * n)[:n]


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=7)
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
        paths, truths = _pages(max(12, args.pages), tmp)
        n = len(paths)
        pdf = write_pdf([Image.open(p) for p in paths], tmp / "pages.pdf")
        print(
            f"{n} generated A4 pages at 300 DPI (mixed degradation, one upside down), "
            f"{os.cpu_count()} cores, {args.rounds} rounds"
        )
        best: dict[str, tuple[float, list[str]]] = {}
        cpu: dict[str, float] = {}  # CPU seconds of the whole process tree: robust to other load
        times: dict[str, list[float]] = {}
        has_c = ocrmypdf_cmd() is not None
        exact_cpu = _become_subreaper()
        contenders = {
            "a": lambda: run_a(paths, tmp / "a"),
            "b": lambda: run_b(paths, tmp / "b", ("txt", "pdf")),
            "b_txt": lambda: run_b(paths, tmp / "bt"),
            "b_tsv": lambda: run_b(paths, tmp / "bs", ("txt", "pdf", "tsv")),
            **({"c": lambda: run_c(pdf, tmp / "c", n)} if has_c else {}),
        }
        names = list(contenders)
        for r in range(args.rounds):
            # The order turns every round, so that no contender always runs first (or after the
            # same neighbour) while the shared machine's load drifts.
            for key in names[r % len(names) :] + names[: r % len(names)]:
                c0 = _children_cpu()
                dt, texts = contenders[key]()
                used = _children_cpu() - c0
                cpu[key] = min(cpu.get(key, used), used)
                times.setdefault(key, []).append(dt)
                if key not in best or dt < best[key][0]:
                    best[key] = (dt, texts)
        rows = [
            ("a", "lienthong digitize (pdf, txt, json)"),
            ("b", "tesseract CLI per page (txt, pdf)"),
            ("b_txt", "tesseract CLI per page (txt)"),
            ("b_tsv", "tesseract CLI per page (txt, pdf, tsv)"),
            ("c", "ocrmypdf -l vie (pdf, txt)"),
        ]
        for key, label in rows:
            if key not in best:
                print(f"  ({key}) {label:40s} not installed")
                continue
            dt, texts = best[key]
            print(
                f"  ({key:5s}) {label:40s} {n / dt:6.2f} pages/s  {dt:6.2f} s  "
                f"cpu {cpu[key]:6.2f} s  CER {cer(texts, truths):.4f}"
            )
            record(f"({key}) {label}, best round", n / dt, "pages/s")
        a = best["a"][0]

        def per_round(anchor: str) -> list[float]:
            return [x / y for x, y in zip(times["a"], times[anchor], strict=True)]

        print(paired("ratio a/b, wall time (b = txt+pdf)", per_round("b"), "<= 1.10"))
        print(paired("ratio a/b(txt only)", per_round("b_txt"), ""))
        print(paired("ratio a/b(txt+pdf+tsv)", per_round("b_tsv"), ""))
        print(f"  ratio of best rounds a/b = {a / best['b'][0]:.3f}")
        note = "" if exact_cpu else " (fork server's CPU not counted: no subreaper)"
        print(f"  ratio a/b in CPU seconds (least of each) = {cpu['a'] / cpu['b']:.3f}{note}")
        if "c" in best:
            print(paired("ratio a/c", per_round("c"), ""))
        else:
            print("  ratio a/c: ocrmypdf not installed")
        mp = args.memory_pages
        big = write_pdf([Image.open(paths[i % n]) for i in range(mp)], tmp / "big.pdf")
        peak, secs = peak_memory(big, tmp / "mem")
        record(f"peak memory of (a), {mp}-page PDF", peak / 2**20, "MB", target="< 500 MB")
        print(
            f"  peak memory of (a) on a {mp}-page PDF: {peak / 2**20:.0f} MB "
            "(PSS of the process tree; "
            f"target < 500 MB), {mp / secs:.2f} pages/s"
        )
        if args.executors:
            res = executors(paths, tmp)
            base = res["ProcessPoolExecutor (fork)"]
            for label, dt in res.items():
                print(f"  pool {label:34s} {dt:6.2f} s  ratio {dt / base:.3f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    from bench.common import standalone

    sys.exit(standalone("bench_digitize", main))
