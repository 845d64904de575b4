"""The demo job as a flow: receive synthetic dossiers of every procedure at their (simulated)
reception times, start each one's deployment, wait for all of them, and publish the summary.

Its progress and summary are artifacts of the ``demo`` run in the UI; the terminal gets a bar.
"""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prefect import flow
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select

from flows.procedure import start_run
from infra.demo import DEMO_START
from lienthong.clock import SimulatedClock, get_clock, localize
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, StepRow
from lienthong.dossier import Status
from lienthong.reception import receive
from samples.dossiers import make_submission

PROCEDURES = ["lien-thong-khai-sinh", "lien-thong-khai-tu", "chuyen-nhuong-dat"]
TERMINAL = [int(s) for s in (Status.RETURNED, Status.STOPPED, Status.REFUSED_AT_RECEPTION, Status.WITHDRAWN)]


@dataclass
class Planned:
    index: int
    procedure_id: str
    received_at: datetime


def plan_dossiers(n: int, seed: int) -> list[Planned]:
    """Receptions spread over two working days, some after the 15:00 cut-off."""
    rng = random.Random(seed)
    day1 = localize(DEMO_START.replace(hour=7, minute=30))
    slots = []
    for i, proc in zip(range(n), itertools.cycle(PROCEDURES), strict=False):
        day = day1 + timedelta(days=rng.choice([0, 0, 1]))
        slots.append(Planned(i, proc, day + timedelta(minutes=rng.randint(0, 9 * 60))))
    return sorted(slots, key=lambda p: p.received_at)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


@flow(name="demo", flow_run_name="demo · {dossiers} dossiers · seed {seed}")
def demo(dossiers: int = 15, seed: int = 2026, timeout_s: float = 900.0) -> dict[str, Any]:
    """Receive, route and summarise synthetic dossiers on the shared simulated clock."""
    console = Console()
    clock = get_clock()
    rng = random.Random(seed)
    planned = plan_dossiers(dossiers, seed)
    artifact = create_progress_artifact(progress=0.0, description="Demo: dossiers received and finished")
    codes: list[str] = []
    if isinstance(clock, SimulatedClock):
        clock.wait_for_start()
    with _progress(console) as progress:
        task = progress.add_task("Receiving dossiers", total=len(planned))
        for p in planned:
            if isinstance(clock, SimulatedClock):
                time.sleep(clock.real_seconds_until(p.received_at))
            sub = make_submission(p.procedure_id, rng, p.received_at)
            receipt = receive(sub, idempotency_key=f"demo:{seed}:{p.index}:{p.received_at.isoformat()}")
            start_run(receipt.dossier_code)
            codes.append(receipt.dossier_code)
            progress.update(task, advance=1, description=f"Received {receipt.dossier_code}")
            update_progress_artifact(artifact, progress=50.0 * len(codes) / len(planned))
    finished = _wait(console, codes, timeout_s, artifact)
    summary = summarize(codes)
    create_table_artifact(key="demo-procedures", table=[{"procedure": k, **v} for k, v in
                                                        sorted(summary["procedures"].items())],
                          description="Dossiers per procedure")
    create_table_artifact(key="demo-agencies", table=[{"agency": k, **v} for k, v in
                                                      sorted(summary["agencies"].items())],
                          description="Agency steps and Form 05 verdicts")
    return {**summary, "codes": codes, "all_finished": finished}


def _wait(console: Console, codes: list[str], timeout_s: float, artifact: Any) -> bool:
    deadline = time.time() + timeout_s
    done = 0
    with _progress(console) as progress:
        task = progress.add_task("Dossiers through their agencies", total=len(codes))
        while time.time() < deadline:
            with session_scope() as s:
                done = s.execute(select(func.count()).where(
                    DossierRow.code.in_(codes), DossierRow.status.in_(TERMINAL))).scalar_one()
            progress.update(task, completed=done)
            update_progress_artifact(artifact, progress=50.0 + 50.0 * done / max(len(codes), 1))
            if done == len(codes):
                return True
            time.sleep(1.0)
    return False


def summarize(codes: list[str]) -> dict[str, Any]:
    """Per procedure: dossiers, done, on time, late, refused, open; per agency: steps and verdicts."""
    with session_scope() as s:
        rows = s.execute(select(DossierRow).where(DossierRow.code.in_(codes))).scalars().all()
        steps = s.execute(select(StepRow).join(DossierRow).where(DossierRow.code.in_(codes))).scalars().all()
        per_proc: dict[str, dict[str, int]] = {}
        for r in rows:
            d = per_proc.setdefault(r.procedure_id, dict.fromkeys(
                ("dossiers", "done", "on_time", "late", "refused", "open"), 0))
            d["dossiers"] += 1
            if r.status == Status.RETURNED:
                d["done"] += 1
                d["late" if r.late else "on_time"] += 1
            elif r.status in (Status.STOPPED, Status.REFUSED_AT_RECEPTION):
                d["refused"] += 1
            else:
                d["open"] += 1
        per_agency: dict[str, dict[str, Any]] = {}
        for st in steps:
            if st.verdict is None:
                continue
            a = per_agency.setdefault(st.agency, {"steps": 0, "early": 0, "on_time": 0, "late": 0})
            a["steps"] += 1
            a[st.verdict] += 1
        for a in per_agency.values():
            a["on_time_rate"] = round(100.0 * (a["early"] + a["on_time"]) / a["steps"], 1)
    return {"procedures": per_proc, "agencies": per_agency}
