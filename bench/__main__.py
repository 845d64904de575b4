"""Run every benchmark in bench/ (``make bench``): each writes its own report under bench/results/,
and this run writes one more there with the table of every figure, pointing at the others.

    python -m bench [NAME ...]      # only these (e.g. bench_vault province_day)
"""

from __future__ import annotations

import pkgutil
import shlex
import sys
import time
from pathlib import Path

import bench
from bench.common import FIGURES, RESULTS, Figure, commit, figures_table, load, machine, run_and_report


def main(argv: list[str] | None = None) -> int:
    only = sys.argv[1:] if argv is None else argv
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    names.append("province_day")
    table: list[tuple[str, Figure]] = []
    reports: list[tuple[str, int, Path]] = []
    started, load_at_start = time.gmtime(), load()
    for name in names:
        if only and name not in only:
            continue
        import importlib

        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}", flush=True)
        code, path = run_and_report(name, module.main, [])
        table += [(name, f) for f in FIGURES]
        reports.append((name, code, path))
    summary = RESULTS / f"make-bench-{time.strftime('%Y%m%d-%H%M%S', started)}-{commit().split('-')[0]}.md"
    summary.write_text("\n".join([
        "# make bench\n", f"- commit: `{commit()}`", f"- machine: {machine()}",
        f"- command: `{shlex.join(['python', '-m', 'bench', *only])}`",
        f"- started: {time.strftime('%Y-%m-%d %H:%M:%S UTC', started)}", f"- load average at start: {load_at_start}\n",
        figures_table(table), "Reports of each benchmark:\n",
        *[f"- `{name}`: [{p.name}]({p.name}) (exit code {code})" for name, code, p in reports], "",
    ]), encoding="utf-8")
    print(f"summary: {summary}")
    return 1 if any(code for _, code, _ in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
