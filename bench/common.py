"""Shared pieces of the benchmarks: a scratch PostgreSQL database, a live server, a report line,
and the committed report each run writes under ``bench/results/``."""

from __future__ import annotations

import contextlib
import io
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from infra.processes import PG_ADMIN


@contextmanager
def scratch_database(prefix: str = "lienthong_bench") -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one benchmark run (infra.processes'), which this
    process's settings point at; dropped afterwards."""
    from infra.processes import scratch_database as scratch
    from lienthong.settings import reset_settings

    with scratch(PG_ADMIN, prefix) as url:
        os.environ["LIENTHONG_DATABASE_URL"] = url
        reset_settings()
        yield url


def machine() -> str:
    """The machine a figure was measured on: CPU model, cores, memory, OS and Python."""
    cpu, mem = platform.machine(), ""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8")
        cpu = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), cpu)
        meminfo = Path("/proc/meminfo").read_text(encoding="utf-8")
        kib = next(int(ln.split()[1]) for ln in meminfo.splitlines() if ln.startswith("MemTotal"))
        mem = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return (f"{cpu}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


@dataclass
class Figure:
    """One measured figure, with the anchor measured in the same run and the issue's target."""

    name: str
    value: float
    unit: str
    anchor: float | None = None
    anchor_name: str = ""
    target: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.anchor if self.anchor else None


# Figures recorded by the running benchmark; ``python -m bench`` turns them into the report's table.
FIGURES: list[Figure] = []


def record(name: str, value: float, unit: str, anchor: float | None = None, anchor_name: str = "",
           target: str = "") -> Figure:
    """Keep a figure for the report's table (and return it, to print)."""
    fig = Figure(name, value, unit, anchor, anchor_name, target)
    FIGURES.append(fig)
    return fig


def line(name: str, value: float, unit: str, anchor: float | None = None, anchor_name: str = "",
         target: str = "") -> str:
    """A printed report line; the figure is recorded for the table as well."""
    fig = record(name, value, unit, anchor, anchor_name, target)
    ratio = f"  ratio {fig.ratio:.3f} vs {anchor_name}" if fig.ratio is not None else ""
    return f"{name:<52} {value:>10.2f} {unit}{ratio}" + (f"  (target {target})" if target else "")


@dataclass(frozen=True)
class Pairs:
    """Paired rounds of two contenders: what each measured in every round and their ratio a/b."""

    a: list[float]
    b: list[float]

    @property
    def ratios(self) -> list[float]:
        return [x / y for x, y in zip(self.a, self.b, strict=True)]

    @property
    def median(self) -> float:
        """The median of the per-round ratios, taken on their logarithms: with an even number of
        rounds the two middle ratios meet at their geometric mean, so a ratio r and its inverse
        1/r weigh alike (an order bias that makes one round r*k and the next r/k cancels to r)."""
        return math.exp(statistics.median(math.log(r) for r in self.ratios))


def alternating_pairs(a: Callable[[], float], b: Callable[[], float], rounds: int) -> Pairs:
    """Run ``rounds`` paired rounds of ``a`` and ``b``, each returning what it measured (its
    seconds, say), round i running a then b and round i+1 b then a. Whatever running first or
    second does to a contender (a cache warmed or a disk flushed by its neighbour, the load
    drifting within a round) falls on both alike, and the median of the per-round ratios
    (:attr:`Pairs.median`) is not at the mercy of the rounds a hiccup of the machine hit."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    xs: list[float] = []
    ys: list[float] = []
    for i in range(rounds):
        if i % 2 == 0:
            xs.append(a())
            ys.append(b())
        else:
            ys.append(b())
            xs.append(a())
    return Pairs(xs, ys)


def paired(name: str, ratios: list[float] | Pairs, target: str) -> str:
    """The ratio of each paired round (the same work for both sides, moments apart), summarised by
    its median and quartiles. A ratio of totals or of best times is at the mercy of the few rounds
    a hiccup of the shared virtual machine (another tenant's burst, an fsync taking ten times its
    usual time) fell on; the median of paired rounds is not. Quartiles are taken on the
    logarithms, as :attr:`Pairs.median` is, so r and 1/r weigh alike."""
    ratios = ratios.ratios if isinstance(ratios, Pairs) else list(ratios)
    logs = sorted(math.log(r) for r in ratios)
    q = [math.exp(x) for x in (statistics.quantiles(logs, n=4) if len(logs) > 1 else logs * 3)]
    fig = record(f"{name}, median of paired rounds", q[1], "ratio", target=target)
    return (f"{'  ' + fig.name:<52} {fig.value:>10.3f} ratio (quartiles {q[0]:.3f}-{q[2]:.3f}, "
            f"{len(ratios)} rounds)" + (f"  (target {target})" if target else ""))


@contextmanager
def prefect_server_on_postgres() -> Iterator[str]:
    """A real ``prefect server start`` on a scratch PostgreSQL database; yields its API URL."""
    from infra.processes import prefect_server_on_postgres as start

    with start(PG_ADMIN, name="bench-prefect-server") as server:
        yield server.env["PREFECT_API_URL"]


RESULTS = Path(__file__).resolve().parent / "results"


def commit() -> str:
    """The commit measured, with ``-dirty`` when the work tree had uncommitted changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                              cwd=Path(__file__).resolve().parent).stdout.strip()
    head = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return head + ("-dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def load() -> str:
    """The machine's load average at the start: a figure measured beside other work says so."""
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


class _Tee(io.TextIOBase):
    """Writes to the terminal and keeps a copy for the report."""

    def __init__(self, out: io.TextIOBase) -> None:
        self.out, self.buf = out, io.StringIO()

    def write(self, s: str) -> int:
        self.out.write(s)
        self.out.flush()
        return self.buf.write(s)

    def flush(self) -> None:
        self.out.flush()


def run_and_report(name: str, main: Callable[[Sequence[str]], int], argv: Sequence[str],
                   command: str | None = None, results: Path | None = None) -> tuple[int, Path]:
    """Run one benchmark's ``main(argv)``, showing its output as it comes, and write its report
    ``bench/results/<name>-<UTC date and time>-<commit>.md``: the commit, the machine, the command,
    the load when it started, the table of its figures and its whole output. Returns the exit code
    and the report's path."""
    FIGURES.clear()
    command = command or shlex.join([Path(sys.executable).name, "-m", f"bench.{name}", *argv])
    started, t0, load_at_start, measured = time.gmtime(), time.perf_counter(), load(), commit()
    tee = _Tee(sys.stdout)  # type: ignore[arg-type]
    with contextlib.redirect_stdout(tee):
        try:
            code = main(list(argv))
        except Exception as exc:  # noqa: BLE001 - the report says how it failed
            code = 1
            print(f"FAILED: {exc!r}")
    took = time.perf_counter() - t0
    out_dir = results or RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}-{time.strftime('%Y%m%d-%H%M%S', started)}-{measured.split('-')[0]}.md"
    path.write_text("\n".join([
        f"# {name}\n",
        f"- commit: `{measured}`",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        f"- started: {time.strftime('%Y-%m-%d %H:%M:%S UTC', started)}, took {took:.0f} s, exit code {code}",
        f"- load average at start: {load_at_start}\n",
        figures_table([(name, f) for f in FIGURES]),
        "## Output\n", "```", tee.buf.getvalue().rstrip(), "```", "",
    ]), encoding="utf-8")
    print(f"report: {path}")
    return int(code or 0), path


def standalone(name: str, main: Callable[[Sequence[str]], int]) -> int:
    """``python -m bench.<name> ARGS``: run it and write its report (the ``__main__`` of each benchmark)."""
    return run_and_report(name, main, sys.argv[1:])[0]


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
