"""Run every benchmark in bench/ (``make bench``) and write var/bench/report.md."""

from __future__ import annotations

import contextlib
import importlib
import io
import pkgutil
import sys
import time
from pathlib import Path

import bench
from bench.common import FIGURES, Figure, machine
from lienthong.settings import get_settings


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    names.append("province_day")  # bench/province_day.py (size: LIENTHONG_PROVINCE_DOSSIERS, default 5000)
    only = sys.argv[1:]
    sections: list[str] = []
    table: list[tuple[str, Figure]] = []
    failed = 0
    for name in names:
        if only and name not in only:
            continue
        module = importlib.import_module(f"bench.{name}")
        FIGURES.clear()
        buf = io.StringIO()
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            with contextlib.redirect_stdout(buf):
                code = module.main([])
        except Exception as exc:  # noqa: BLE001 - one failing benchmark must not hide the others
            code = 1
            buf.write(f"FAILED: {exc!r}\n")
        print(buf.getvalue(), flush=True)
        failed += bool(code)
        table += [(name, f) for f in FIGURES]
        sections.append(f"## {name} ({time.perf_counter() - t0:.0f} s)\n\n```\n{buf.getvalue()}```\n")
    out = [f"# Benchmarks\n\nMachine: {machine()}, {time.strftime('%Y-%m-%d %H:%M %z')}\n",
           figures_table(table), "\nEach benchmark's full output follows.\n", *sections]
    report = get_settings().var_dir / "bench" / "report.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(out), encoding="utf-8")
    print(f"report: {Path(report)}")
    return 1 if failed else 0


def figures_table(rows: list[tuple[str, Figure]]) -> str:
    """One table of every recorded figure, its anchor (measured in the same run) and the ratio."""
    lines = ["| benchmark | figure | value | anchor | ratio | target |", "|---|---|---:|---|---:|---|"]
    for bench_name, f in rows:
        anchor = f"{f.anchor_name} {f.anchor:,.2f}" if f.anchor else ""
        ratio = f"{f.ratio:.3f}" if f.ratio is not None else ""
        lines.append(f"| {bench_name} | {f.name} | {f.value:,.2f} {f.unit} | {anchor} | {ratio} | {f.target} |")
    if not rows:
        lines.append("| (no figures recorded) | | | | | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
