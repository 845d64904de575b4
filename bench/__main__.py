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
from bench.common import machine
from lienthong.settings import get_settings


def main() -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    only = sys.argv[1:]
    out = [f"# Benchmarks\n\nMachine: {machine()}\n"]
    failed = 0
    for name in names:
        if only and name not in only:
            continue
        module = importlib.import_module(f"bench.{name}")
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
        out.append(f"## {name} ({time.perf_counter() - t0:.0f} s)\n\n```\n{buf.getvalue()}```\n")
    report = get_settings().var_dir / "bench" / "report.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(out), encoding="utf-8")
    print(f"report: {Path(report)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
