"""Benchmark of the data-quality suites: dossiers validated per second with Great Expectations,
beside the plain-Python validation of the same rules measured in the same run (the anchor).

The batch is flattened once, outside the clock: flattening is the same work for both engines, and
timing it with each would shrink the gap between them. The ratio plain/GX is then the median of
paired rounds in alternating order (bench.common.alternating_pairs), each engine validating the
same flattened rows: what GX costs per dossier over plain Python. Target: 10,000 dossiers in under
30 s with GX, flattening and the one-off suite build included (suites built once per process, one
validation per asset per batch).
    python -m bench.bench_quality [--dossiers 10000] [--rounds 5] [--defect-rate 0.2] [--seed 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime

from bench.common import alternating_pairs, paired, record

TARGET_SECONDS = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dossiers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="paired rounds, order alternating")
    parser.add_argument("--defect-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from lienthong.clock import VN_TZ
    from lienthong.quality.validator import (
        EngineName,
        Outcome,
        flatten_batch,
        get_engine,
        validate_flattened,
    )
    from samples.dossiers import make_batch

    start = datetime(2025, 9, 10, 7, 30, tzinfo=VN_TZ)
    t0 = time.perf_counter()
    batch = make_batch(args.dossiers, args.seed, start, defect_rate=args.defect_rate)
    t_gen = time.perf_counter() - t0

    t0 = time.perf_counter()
    get_engine("gx")  # the one-off cost of a process: context and suites
    t_build = time.perf_counter() - t0

    t0 = time.perf_counter()
    rows = flatten_batch(batch)  # shared by both engines: not in the ratio
    t_flat = time.perf_counter() - t0

    verdicts: dict[str, list[Outcome]] = {}

    def timed(engine: EngineName) -> float:
        t0 = time.perf_counter()
        verdicts[engine] = validate_flattened(rows, engine=engine)
        return time.perf_counter() - t0

    # a = plain, b = GX: a/b of seconds is the throughput ratio GX/plain.
    pairs = alternating_pairs(lambda: timed("plain"), lambda: timed("gx"), args.rounds)
    t_plain, t_gx = statistics.median(pairs.a), statistics.median(pairs.b)
    gx, plain = verdicts["gx"], verdicts["plain"]

    agree = [(o.failed_rules, o.flags) for o in gx] == [(o.failed_rules, o.flags) for o in plain]
    n = len(batch)
    invalid = sum(not o.ok for o in gx)
    print(f"dossiers: {n} ({invalid} invalid, defect rate {args.defect_rate}); "
          f"generated in {t_gen:.2f} s")
    print(f"GX context + suites, once per process: {t_build:.2f} s")
    print(f"flattening, once, shared by both engines (not timed in the ratio): {t_flat:.2f} s")
    print(f"plain Python (anchor): {n / t_plain:,.0f} dossiers/s ({t_plain:.3f} s, median of rounds)")
    print(f"Great Expectations:    {n / t_gx:,.0f} dossiers/s ({t_gx:.3f} s, median of rounds)")
    for i, (p, g) in enumerate(zip(pairs.a, pairs.b, strict=True), 1):
        first = "plain" if i % 2 else "GX"
        print(f"  round {i} ({first} first): plain {p:.3f} s, GX {g:.3f} s, ratio {p / g:.3f}")
    print(paired("ratio GX/plain throughput (plain s / GX s)", pairs, ""))
    print(f"  GX costs {1 / pairs.median:.1f}x plain Python per dossier, engines only")
    total = t_build + t_flat + t_gx
    verdict = "met" if total < TARGET_SECONDS * n / 10_000 else "MISSED"
    print(f"target {n} dossiers < {TARGET_SECONDS * n / 10_000:.0f} s incl. suite build and flattening: "
          f"{total:.2f} s, {verdict}")
    print(f"GX and plain Python agree on every dossier: {agree}")
    # The ratio is the paired() figure above (median of per-round ratios), not one of these medians.
    record("Great Expectations validation, engines only (median round)", n / t_gx, "dossiers/s")
    record("plain Python validation, engines only (median round)", n / t_plain, "dossiers/s")
    record("GX incl. suite build and flattening", total, "s", None, "", f"< {TARGET_SECONDS * n / 10_000:.0f} s")
    return 0 if agree else 1


if __name__ == "__main__":
    from bench.common import standalone

    sys.exit(standalone("bench_quality", main))
