"""Benchmark of the data-quality suites: dossiers validated per second with Great Expectations,
beside the plain-Python validation of the same rules measured in the same run (the anchor).

The ratio plain/GX shows what GX costs per dossier. Target: 10,000 dossiers in under 30 s with GX
(suites built once per process, one validation per asset per batch).
    python -m bench.bench_quality [--dossiers 10000] [--defect-rate 0.2] [--seed 7]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime

from bench.common import record

TARGET_SECONDS = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=10_000)
    parser.add_argument("--defect-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from lienthong.clock import VN_TZ
    from lienthong.quality.validator import get_engine, validate_submissions
    from samples.dossiers import make_batch

    start = datetime(2025, 9, 10, 7, 30, tzinfo=VN_TZ)
    t0 = time.perf_counter()
    batch = make_batch(args.dossiers, args.seed, start, defect_rate=args.defect_rate)
    t_gen = time.perf_counter() - t0

    t0 = time.perf_counter()
    get_engine("gx")  # the one-off cost of a process: context and suites
    t_build = time.perf_counter() - t0

    t0 = time.perf_counter()
    plain = validate_submissions(batch, engine="plain")
    t_plain = time.perf_counter() - t0

    t0 = time.perf_counter()
    gx = validate_submissions(batch, engine="gx")
    t_gx = time.perf_counter() - t0

    agree = [(o.failed_rules, o.flags) for o in gx] == [(o.failed_rules, o.flags) for o in plain]
    n = len(batch)
    invalid = sum(not o.ok for o in gx)
    print(f"dossiers: {n} ({invalid} invalid, defect rate {args.defect_rate}); "
          f"generated in {t_gen:.2f} s")
    print(f"GX context + suites, once per process: {t_build:.2f} s")
    print(f"plain Python (anchor): {n / t_plain:,.0f} dossiers/s ({t_plain:.2f} s)")
    print(f"Great Expectations:    {n / t_gx:,.0f} dossiers/s ({t_gx:.2f} s)")
    print(f"ratio GX/plain throughput: {t_plain / t_gx:.3f} (GX costs {t_gx / t_plain:.1f}x)")
    total = t_build + t_gx
    verdict = "met" if total < TARGET_SECONDS * n / 10_000 else "MISSED"
    print(f"target {n} dossiers < {TARGET_SECONDS * n / 10_000:.0f} s incl. suite build: "
          f"{total:.2f} s, {verdict}")
    print(f"GX and plain Python agree on every dossier: {agree}")
    record("Great Expectations validation", n / t_gx, "dossiers/s", n / t_plain, "plain Python")
    record("GX incl. suite build", total, "s", None, "", f"< {TARGET_SECONDS * n / 10_000:.0f} s")
    return 0 if agree else 1


if __name__ == "__main__":
    from bench.common import standalone

    sys.exit(standalone("bench_quality", main))
