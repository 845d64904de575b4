"""Dossiers per minute through the procedure flow (agency simulator at zero latency), beside the same
core steps run without Prefect in the same process: the ratio is the orchestration overhead.

    python -m bench.bench_procedure [--dossiers 30]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from bench.common import line, machine, scratch_database

T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")
PROCS = ["lien-thong-khai-sinh", "lien-thong-khai-tu", "chuyen-nhuong-dat"]


def _receive_batch(n: int, seed: int) -> list[str]:
    from lienthong.reception import receive
    from samples.dossiers import make_submission

    rng = random.Random(seed)
    return [receive(make_submission(PROCS[i % 3], rng, T)).dossier_code for i in range(n)]


def run(dossiers: int) -> dict[str, float]:
    from prefect.testing.utilities import prefect_test_harness

    from lienthong.agencies.client import HttpAgencyClient
    from lienthong.agencies.simulator import Simulator, Switches, create_app
    from lienthong.routing import Routing
    from lienthong.settings import reset_settings
    from tests.conftest import LiveServer

    results: dict[str, float] = {}
    with scratch_database(), LiveServer(create_app(Simulator(Switches(mode="instant")))) as sim:
        os.environ["LIENTHONG_AGENCY_API_URL"] = sim.url
        reset_settings()
        # Anchor: the same core functions, no Prefect.
        codes = _receive_batch(dossiers, 1)
        routing = Routing(client=HttpAgencyClient(sim.url), poll_seconds=0.0)
        t0 = time.perf_counter()
        for code in codes:
            routing.begin(code)
            outcomes = [routing.run_step(code, s.id) for s in routing.plan(code).steps]
            routing.finish(code, outcomes)
        results["core"] = dossiers / (time.perf_counter() - t0) * 60
        with prefect_test_harness(server_startup_timeout=90):
            from flows.procedure import procedure

            procedure(dossier_code=_receive_batch(1, 99)[0])  # warm-up: flow registration
            codes = _receive_batch(dossiers, 2)
            t0 = time.perf_counter()
            for code in codes:
                procedure(dossier_code=code)
            results["flow_sequential"] = dossiers / (time.perf_counter() - t0) * 60
            codes = _receive_batch(dossiers, 3)
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda c: procedure(dossier_code=c), codes))
            results["flow_4_concurrent"] = dossiers / (time.perf_counter() - t0) * 60
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dossiers", type=int, default=30)
    args = ap.parse_args(argv)
    r = run(args.dossiers)
    print(f"# procedure flow throughput ({args.dossiers} dossiers, 3 procedures; {machine()})")
    print(line("core steps without Prefect (anchor)", r["core"], "dossiers/min"))
    print(line("procedure flow, one run at a time", r["flow_sequential"], "dossiers/min", r["core"], "core"))
    print(line("procedure flow, 4 runs in parallel", r["flow_4_concurrent"], "dossiers/min", r["core"], "core"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
