"""``make demo`` / ``lienthong demo``: start the embedded stack on a simulated clock, run the demo
flow, print the summary. Prefect is imported only after its environment points at the local server."""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from infra.local import (
    Stack,
    agency_simulator,
    deployments_server,
    prefect_env,
    prefect_server,
    stop_recorded_named,
)
from lienthong.clock import SimulatedClock
from lienthong.db import dispose_engines
from lienthong.db.migrate import upgrade
from lienthong.settings import get_settings, reset_settings
from samples.dossiers import DEMO_START


def run_demo(*, dossiers: int = 9, seed: int = 2026, speed: float = 3000.0,
             keep_running: bool = False, timeout_s: float = 900.0) -> int:
    # Wide enough for the tables when the output is a file or a CI log, not a terminal.
    console = Console() if sys.stdout.isatty() else Console(width=120)
    settings = get_settings()
    upgrade()
    # Office time only (a working day lasts 9.5 h / speed real seconds). It stands still until the
    # demo flow starts it, and again whenever the orchestrator owes work (flows.demo.ClockSteering):
    # starting processes and running flows take real seconds, never simulated time.
    pause_file = settings.var_dir / "run" / "clock.json"
    pause_file.parent.mkdir(parents=True, exist_ok=True)
    pause_file.unlink(missing_ok=True)
    clock = SimulatedClock(DEMO_START, time.time(), speed, working_hours=True, pause_file=pause_file)
    clock.set_paused(True)
    # Ports may be moved (tests run a demo beside a developer's stack): LIENTHONG_PREFECT_PORT,
    # LIENTHONG_SIM_PORT, LIENTHONG_SERVE_HEALTH_PORT.
    sim_port = int(os.environ.get("LIENTHONG_SIM_PORT", "8710"))
    serve_port = int(os.environ.get("LIENTHONG_SERVE_HEALTH_PORT", "8711"))
    env = {
        **prefect_env(settings.var_dir),
        "LIENTHONG_CLOCK": clock.spec(),
        "LIENTHONG_AGENCY_API_URL": f"http://127.0.0.1:{sim_port}",
        "LIENTHONG_AGENCY_POLL_SECONDS": "0.1",
        # Steps wait for agencies inside their runs: every dossier in flight needs a slot.
        "LIENTHONG_SERVE_LIMIT": str(min(max(dossiers, 4), 40)),
        "LIENTHONG_SIM_MODE": "realistic",
        "LIENTHONG_SIM_REFUSAL_RATE": "0.03",
        "LIENTHONG_SIM_LATE_SHARE": "0.12",
        # Served runs are picked up within a second (Prefect's default poll is 10 s).
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "LIENTHONG_SIM_SEED": str(seed),
    }
    os.environ.update(env)
    reset_settings()
    dispose_engines()
    stop_recorded_named("agency-sim", "serve")  # never reuse processes running on an old clock
    stack = Stack()
    try:
        with console.status("Starting the Prefect server, the agency simulator and the deployments…"):
            stack.start(prefect_server(env), timeout=150)
            stack.start(agency_simulator(env, port=sim_port))
            stack.start(deployments_server(env, health_port=serve_port), timeout=150)
        from flows.demo import demo

        result = demo(dossiers=dossiers, seed=seed, timeout_s=timeout_s)
        print_summary(console, result)
        print_citizens(console, result["codes"], seed)  # citizen (#19): messages sent, a few ratings
        print_index(console)
        console.print(
            "\nOpen the Prefect UI to see every run, its timeline and the demo's artifacts: "
            f"[bold]make ui[/bold], then http://127.0.0.1:{env['PREFECT_SERVER_API_PORT']}"
            + ("  (still running; stop with [bold]make down[/bold])" if keep_running else "")
        )
        return 0 if result["all_finished"] else 1
    finally:
        if not keep_running:
            stack.stop()


def print_summary(console: Console, result: dict[str, Any]) -> None:
    t = Table(title="Dossiers per procedure")
    cols = ("dossiers", "done", "on_time", "late", "refused", "open", "reused")
    t.add_column("procedure")
    for c in cols:
        t.add_column(c.replace("_", " "), justify="right")
    for proc, d in sorted(result["procedures"].items()):
        t.add_row(proc, *(str(d[c]) for c in cols))
    console.print(t)
    a = Table(title="Agency steps (Form 05 verdicts)")
    a.add_column("agency")
    for c in ("steps", "early", "on time", "late", "on-time rate"):
        a.add_column(c, justify="right")
    for agency, d in sorted(result["agencies"].items()):
        a.add_row(agency, str(d["steps"]), str(d["early"]), str(d["on_time"]), str(d["late"]),
                  f"{d['on_time_rate']:.1f}%")
    console.print(a)
    gap = result.get("largest_gap")
    if gap is not None:
        console.print(
            f"Largest hand-over gap: {gap['office_hours'] * 60:.0f} office minutes ({gap['dossier']}, "
            f"{gap['step']}). The simulated clock stood still {result.get('clock_stopped_s', 0):.0f} real "
            "seconds while the orchestrator worked, so the dossiers' times hold the agencies' time only.")


def print_citizens(console: Console, codes: list[str], seed: int) -> None:
    """What the demo's citizens heard (the messages relayed to the local sink) and a few of them
    rating their delivered dossiers, as from the status page; the index below counts the ratings."""
    from lienthong.notify import relay
    from samples.ratings import rate_delivered

    sent = relay()
    rated = rate_delivered(codes, seed=seed)
    console.print(f"\nCitizen messages sent: {sent['sent']} (local sink); dossiers rated by their citizens: {rated}")


def print_index(console: Console) -> None:
    """The service-quality index (Decision 766) and per-agency on-time table of the demo period."""
    from lienthong.clock import get_clock
    from lienthong.index.report import build_report, summary_table

    day = DEMO_START.date()
    report = build_report(day, day + timedelta(days=1), as_of=get_clock().now())
    console.print("\n[bold]Service-quality index (Decision 766), dossiers received in the demo period[/bold]")
    groups = Table()
    for col in ("group", "points", "max"):
        groups.add_column(col, justify="left" if col == "group" else "right")
    for g in report.province.groups:
        groups.add_row(g.name, f"{g.points:.2f}", f"{g.max_points:g}")
    groups.add_row("[bold]total[/bold]", f"[bold]{report.province.points:.2f}[/bold]", "100")
    console.print(groups)
    console.print(summary_table(report))
    if "html" in report.files:
        console.print(f"Report with charts: {report.files['html']}")
