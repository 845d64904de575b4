"""The demo job as a flow: receive synthetic dossiers of every procedure at their (simulated)
reception times, start each one's deployment, wait for all of them, and publish the summary.

Its progress and summary are artifacts of the ``demo`` run in the UI; the terminal gets a bar.
"""

from __future__ import annotations

import itertools
import random
import sys
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
from lienthong.clock import SimulatedClock, get_clock, localize
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, StepRow
from lienthong.dossier import Status
from lienthong.payloads import Submission
from lienthong.reception import receive
from samples.dossiers import DEMO_START, make_submission

PROCEDURES = ["lien-thong-khai-sinh", "lien-thong-khai-tu", "chuyen-nhuong-dat"]
FOLLOW_UP = "tro-cap-mai-tang"
TERMINAL = [int(s) for s in (Status.RETURNED, Status.STOPPED, Status.REFUSED_AT_RECEPTION, Status.WITHDRAWN)]


@dataclass
class Planned:
    index: int
    procedure_id: str
    received_at: datetime
    options: dict[str, Any] | None = None


def plan_dossiers(n: int, seed: int) -> list[Planned]:
    """Receptions spread over two working days, some after the 15:00 cut-off. Every second death
    registration chooses 2 procedures: that family files the funeral allowance later (once-only)."""
    rng = random.Random(seed)
    day1 = localize(DEMO_START.replace(hour=7, minute=30))
    slots = []
    deaths = 0
    for i, proc in zip(range(n), itertools.cycle(PROCEDURES), strict=False):
        day = day1 + timedelta(days=rng.choice([0, 0, 1]))
        options = None
        if proc == "lien-thong-khai-tu":
            deaths += 1
            options = {"procedures": 2} if deaths % 2 else None
        slots.append(Planned(i, proc, day + timedelta(minutes=rng.randint(0, 9 * 60)), options))
    return sorted(slots, key=lambda p: p.received_at)


def follow_up(original: Submission, at: datetime, rng: random.Random) -> Submission:
    """The family of a death registered with 2 procedures files the funeral allowance on its own,
    without the death extract: the vault holds it."""
    later = make_submission(FOLLOW_UP, rng, at)
    return later.model_copy(update={
        "deceased": original.deceased, "death_notice": original.death_notice,
        "applicant": original.applicant,
        "components": [c for c in later.components if c.code != "TLKT"],
    })


def steer_clock(clock: Any, codes: list[str]) -> None:
    """Stop simulated time while any dossier is still in intake (received, not yet with an agency).

    Intake takes real seconds (a process starts, the suites load, forms render) that compressed time
    would turn into working days charged to the agencies; at the desk it takes minutes."""
    if not isinstance(clock, SimulatedClock) or clock.pause_file is None:
        return
    with session_scope() as s:
        in_intake = s.execute(select(func.count()).where(
            DossierRow.code.in_(codes), DossierRow.status.in_([int(Status.SUBMITTED),
                                                              int(Status.ACCEPTED)]))).scalar_one()
    clock.set_paused(in_intake > 0)


def _real_wait(clock: SimulatedClock, at: datetime) -> float:
    return clock.real_seconds_until(at)


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


@flow(name="demo", flow_run_name="demo · {dossiers} dossiers · seed {seed}")
def demo(dossiers: int = 9, seed: int = 2026, timeout_s: float = 900.0) -> dict[str, Any]:
    """Receive, route and summarise synthetic dossiers on the shared simulated clock."""
    console = Console() if sys.stdout.isatty() else Console(width=120)
    clock = get_clock()
    rng = random.Random(seed)
    planned = plan_dossiers(dossiers, seed)
    artifact = create_progress_artifact(progress=0.0, description="Demo: dossiers received and finished")
    codes: list[str] = []
    awaiting_allowance: dict[str, Submission] = {}
    if isinstance(clock, SimulatedClock):
        clock.wait_for_start()
    with _progress(console) as progress:
        task = progress.add_task("Receiving dossiers", total=len(planned))
        for p in planned:
            while clock.now() < p.received_at:
                steer_clock(clock, codes)
                time.sleep(min(0.2, max(0.01, _real_wait(clock, p.received_at))))
            sub = make_submission(p.procedure_id, rng, p.received_at, options=p.options)
            receipt = receive(sub, idempotency_key=f"demo:{seed}:{p.index}:{p.received_at.isoformat()}")
            start_run(receipt.dossier_code)
            codes.append(receipt.dossier_code)
            if p.options == {"procedures": 2}:
                awaiting_allowance[receipt.dossier_code] = sub
            progress.update(task, advance=1, description=f"Received {receipt.dossier_code}")
            update_progress_artifact(artifact, progress=50.0 * len(codes) / len(planned))
    finished = _wait(console, codes, timeout_s, artifact, awaiting_allowance, rng)
    summary = summarize(codes)
    create_table_artifact(key="demo-procedures", table=[{"procedure": k, **v} for k, v in
                                                        sorted(summary["procedures"].items())],
                          description="Dossiers per procedure")
    create_table_artifact(key="demo-agencies", table=[{"agency": k, **v} for k, v in
                                                      sorted(summary["agencies"].items())],
                          description="Agency steps and Form 05 verdicts")
    return {**summary, "codes": codes, "all_finished": finished}


def _wait(console: Console, codes: list[str], timeout_s: float, artifact: Any,
          awaiting_allowance: dict[str, Submission], rng: random.Random) -> bool:
    """Wait for every dossier (``codes`` grows as follow-up dossiers are filed)."""
    deadline = time.time() + timeout_s
    done = 0
    with _progress(console) as progress:
        task = progress.add_task("Dossiers through their agencies", total=len(codes))
        while time.time() < deadline:
            with session_scope() as s:
                done = s.execute(select(func.count()).where(
                    DossierRow.code.in_(codes), DossierRow.status.in_(TERMINAL))).scalar_one()
                returned = set(s.execute(select(DossierRow.code).where(
                    DossierRow.code.in_(list(awaiting_allowance)),
                    DossierRow.status == Status.RETURNED)).scalars())
            for code in sorted(returned):
                original = awaiting_allowance.pop(code)
                receipt = receive(follow_up(original, get_clock().now(), rng),
                                  idempotency_key=f"demo-follow-up:{code}")
                start_run(receipt.dossier_code)
                codes.append(receipt.dossier_code)
                progress.update(task, total=len(codes))
            progress.update(task, completed=done)
            steer_clock(get_clock(), codes)
            update_progress_artifact(artifact, progress=50.0 + 50.0 * done / max(len(codes), 1))
            if done == len(codes) and not returned:
                return True
            time.sleep(0.5)
    return False


def summarize(codes: list[str]) -> dict[str, Any]:
    """Per procedure: dossiers, done, on time, late, refused, open; per agency: steps and verdicts."""
    with session_scope() as s:
        rows = s.execute(select(DossierRow).where(DossierRow.code.in_(codes))).scalars().all()
        steps = s.execute(select(StepRow).join(DossierRow).where(DossierRow.code.in_(codes))).scalars().all()
        per_proc: dict[str, dict[str, int]] = {}
        for r in rows:
            d = per_proc.setdefault(r.procedure_id, dict.fromkeys(
                ("dossiers", "done", "on_time", "late", "refused", "open", "reused"), 0))
            d["dossiers"] += 1
            d["reused"] += any(c.reused for c in r.components)
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
