"""Dossiers per minute through the procedure flow (agency simulator at zero latency) on a real
Prefect server backed by PostgreSQL, beside the same core pipeline run without Prefect in the same
process (bench.anchor): the ratio is what orchestration costs.

    python -m bench.bench_procedure [--dossiers 30]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from bench.common import line, machine, prefect_server_on_postgres, scratch_database

T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")
PROCS = ["lien-thong-khai-sinh", "lien-thong-khai-tu", "chuyen-nhuong-dat"]


def _receive_batch(n: int, seed: int) -> list[str]:
    from lienthong.reception import receive
    from samples.dossiers import make_submission

    rng = random.Random(seed)
    return [receive(make_submission(PROCS[i % 3], rng, T)).dossier_code for i in range(n)]


def _rate(n: int, seconds: float) -> float:
    return n / seconds * 60


def run(dossiers: int) -> dict[str, float]:
    os.environ["LIENTHONG_VAR_DIR"] = tempfile.mkdtemp(prefix="bench-var-")
    os.environ["LIENTHONG_CLOCK"] = "fixed:2026-03-10T10:00:00+07:00"
    from infra.processes import LiveServer
    from lienthong.agencies.client import HttpAgencyClient
    from lienthong.settings import reset_settings
    from lienthong.simulators.agency import Simulator, Switches, create_app

    results: dict[str, float] = {}
    with scratch_database(), LiveServer(create_app(Simulator(Switches(mode="instant")))) as sim, \
            prefect_server_on_postgres() as api:
        os.environ["LIENTHONG_AGENCY_API_URL"] = sim.url
        reset_settings()
        from bench.anchor import Pipeline

        pipeline = Pipeline(HttpAgencyClient(sim.url))
        pipeline.run(_receive_batch(1, 98)[0])  # warm-up: suites, fonts, keys
        codes = _receive_batch(dossiers, 1)
        t0 = time.perf_counter()
        for code in codes:
            pipeline.run(code)
        results["core"] = _rate(dossiers, time.perf_counter() - t0)

        # Before Prefect is first imported, so that every thread's client talks to this server.
        os.environ["PREFECT_API_URL"] = api
        from flows.procedure import procedure

        procedure(dossier_code=_receive_batch(1, 99)[0])  # warm-up: flow registration
        codes = _receive_batch(dossiers, 2)
        t0 = time.perf_counter()
        for code in codes:
            procedure(dossier_code=code)
        results["flow_sequential"] = _rate(dossiers, time.perf_counter() - t0)
        codes = _receive_batch(dossiers, 3)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda c: procedure(dossier_code=c), codes))
        results["flow_4_concurrent"] = _rate(dossiers, time.perf_counter() - t0)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dossiers", type=int, default=30)
    args = ap.parse_args(argv)
    r = run(args.dossiers)
    print(f"# procedure flow throughput ({args.dossiers} dossiers over 3 procedures; {machine()})")
    print(line("core pipeline without Prefect (anchor)", r["core"], "dossiers/min"))
    print(line("procedure flow, one run at a time", r["flow_sequential"], "dossiers/min", r["core"], "core"))
    print(line("procedure flow, 4 runs in parallel", r["flow_4_concurrent"], "dossiers/min", r["core"], "core"))
    return 0


if __name__ == "__main__":
    from bench.common import standalone

    sys.exit(standalone("bench_procedure", main))
