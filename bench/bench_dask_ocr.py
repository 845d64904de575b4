"""OCR of a backlog fanned out on Dask: the ``digitize-backlog`` flow end to end (a real Prefect
server on PostgreSQL, the components' rows, every page an ``ocr-page`` task on a Dask
LocalCluster of 1 and then 2 single-threaded worker processes, outputs written and recorded),
against the raw ``tesseract`` CLI on the same pages with the same number of processes
(OMP_THREAD_LIMIT=1, ``txt pdf``), measured in the same run.

The cluster is started before the clock starts (a production scheduler outlives a run); its
start-up is printed separately. Prints pages/s of each (best round) and, per worker count, the
ratio flow/raw throughput as the median of paired rounds in alternating order
(bench.common.alternating_pairs: round i runs the flow then raw tesseract, round i+1 the reverse).

    python -m bench.bench_dask_ocr [--pages 12] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parent.parent


def _pages(n: int, out: Path) -> list[Path]:
    from bench.bench_digitize import _pages as pages

    return pages(n, out)[0]


def raw_tesseract(paths: list[Path], out: Path, procs: int) -> float:
    """Seconds for the raw tesseract CLI over ``procs`` processes at a time (the anchor)."""
    from bench.bench_digitize import engine_args

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    engine = engine_args()

    def one(p: Path) -> None:
        subprocess.run(["tesseract", str(p), str(out / p.stem), *engine, "--dpi", "300", "txt", "pdf"],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(procs) as ex:
        list(ex.map(one, paths))
    return time.perf_counter() - t0


def _dossier(refs: list[str]) -> str:
    """A dossier whose paper components are ``refs`` (files under the var dir); its code."""
    from lienthong.db import session_scope
    from lienthong.db.models import ComponentRow, DossierRow

    now = datetime.now(UTC)
    code = f"000.00.06.H56-260310-{uuid.uuid4().int % 10_000:04d}"
    with session_scope() as s:
        d = DossierRow(code=code, uid=uuid.uuid4().hex, unit_id="000.00.06.H56",
                       procedure_id="lien-thong-khai-sinh", procedure_code="2.002621",
                       procedure_version="2024-06-10", time_limit_days=3, channel="in_person", status=2,
                       received_at=now, payload={}, created_at=now, updated_at=now)
        s.add(d)
        s.flush()
        # The generated pages alternate birth certificates (GCS) and death notices (GBT).
        s.add_all([ComponentRow(dossier_id=d.id, code=("GCS", "GBT")[i % 2], name=("GCS", "GBT")[i % 2],
                                file_ref=ref, paper=True) for i, ref in enumerate(refs)])
    return code


def backlog_on_dask(address: str, refs: list[str]) -> tuple[float, dict[str, int]]:
    """Seconds for one digitize-backlog run over a fresh dossier holding ``refs``."""
    from flows.digitize_backlog import OcrDaskRunner, digitize_backlog

    code = _dossier(refs)
    run = digitize_backlog.with_options(task_runner=OcrDaskRunner(address=address))
    t0 = time.perf_counter()
    totals = run(dossier_codes=[code])
    dt = time.perf_counter() - t0
    assert totals["pages"] == len(refs), totals
    return dt, totals


def _warm(client: object) -> None:
    """Load the page reader in every worker (what a long-lived production worker has done)."""
    def load() -> None:
        import lienthong.digitize.ocr  # noqa: F401

    client.run(load)  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", default="1,2", help="worker process counts to measure")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from distributed import Client, LocalCluster

    from bench.common import alternating_pairs, line, paired, prefect_server_on_postgres, scratch_database
    from lienthong.settings import reset_settings

    tmp = Path(tempfile.mkdtemp(prefix="bench-dask-"))
    environ = mock.patch.dict(os.environ, {"LIENTHONG_VAR_DIR": str(tmp / "var")})
    environ.start()  # stopped below: every variable set here or later is put back as it was
    try:
        reset_settings()
        uploads = tmp / "var" / "uploads"
        uploads.mkdir(parents=True)
        paths = _pages(args.pages, uploads)
        refs = [f"uploads/{p.name}" for p in paths]
        n = len(paths)
        print(f"{n} generated A4 pages at 300 DPI (mixed degradation, one upside down), {os.cpu_count()} cores, "
              f"{args.rounds} paired rounds; digitize-backlog end to end on a Prefect server (PostgreSQL)")
        with scratch_database("lienthong_bench_dask"), prefect_server_on_postgres() as api:
            os.environ["PREFECT_API_URL"] = api
            for k in [int(x) for x in args.workers.split(",")]:
                t0 = time.perf_counter()
                with LocalCluster(n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, Client(cluster) as client:
                    _warm(client)
                    started = time.perf_counter() - t0
                    last: dict[str, int] = {}

                    def flow(address: str = cluster.scheduler_address, seen: dict[str, int] = last) -> float:
                        dt, totals = backlog_on_dask(address, refs)
                        seen.update(totals)  # the last run's counts, printed below
                        return dt

                    # a = raw, b = flow: raw seconds over flow seconds is the throughput ratio flow/raw.
                    pairs = alternating_pairs(lambda k=k: raw_tesseract(paths, tmp / "raw", k), flow,
                                              args.rounds)
                    flow_best, raw_best, totals = min(pairs.b), min(pairs.a), last
                print(line(f"raw tesseract, {k} process(es) (anchor)", n / raw_best, "pages/s"))
                print(line(f"digitize-backlog on Dask, {k} worker(s), best round", n / flow_best, "pages/s"))
                print(paired(f"ratio flow/raw x{k}, throughput", pairs, ""))
                print(f"  cluster of {k} started and warmed in {started:.1f} s (not in the figure); "
                      f"last run: {totals['digitized']} digitized, {totals['needs_review']} to review")
    finally:
        environ.stop()
        reset_settings()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    from bench.common import standalone

    sys.exit(standalone("bench_dask_ocr", main))
