"""The demo job as a flow: receive synthetic dossiers of every procedure at their (simulated)
reception times, start each one's deployment, wait for all of them, and publish the summary.

Its progress and summary are artifacts of the ``demo`` run in the UI; the terminal gets a bar.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
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
from lienthong.calendar import get_calendar
from lienthong.catalog import get_catalog
from lienthong.clock import Clock, SimulatedClock, get_clock, localize
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, StatusHistory, StepRow
from lienthong.dossier import Status
from lienthong.payloads import Submission
from lienthong.reception import receive
from lienthong.routing import APPROVAL, CLOSED
from lienthong.settings import get_settings
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


@dataclass(frozen=True)
class Owed:
    """Work the orchestrator owes on a dossier: it takes real seconds, and on the demo's compressed
    clock it must take no simulated time (at the desk it takes minutes, not the days that seconds
    of a busy machine compress into)."""

    dossier_code: str
    what: str  # intake | hand over <step> | send <step> | take in <step> | close


def orchestration_owed(codes: list[str], now: datetime,
                       at_agencies: Mapping[str, datetime] | None) -> list[Owed]:
    """What the orchestrator owes on ``codes`` at simulated time ``now``. A dossier owes nothing
    while it waits for someone else: an agency still at work on a step (its result is not ready on
    the shared clock), a citizen's supplement, an operator's decision. ``at_agencies`` maps a step's
    request id to the time the agency's result is ready (the simulator's ``/admin/steps``); with
    None, a step handed over counts as waiting for its agency."""
    owed: list[Owed] = []
    catalog = get_catalog()
    with session_scope() as s:
        rows = s.execute(select(DossierRow).where(DossierRow.code.in_(codes))).scalars().all()
        for row in rows:
            status = Status(row.status)
            if status.terminal or status == Status.SUPPLEMENT_REQUESTED:
                continue
            if status in (Status.SUBMITTED, Status.ACCEPTED):
                owed.append(Owed(row.code, "intake"))
                continue
            plan = catalog.for_dossier(row).plan(row.options)
            steps = {st.step_key: st for st in row.steps}
            waiting, reasons = False, []
            for spec in plan.steps:
                st = steps.get(spec.id)
                if st is None:
                    ups = [steps.get(u) for u in plan.upstream[spec.id]]
                    if all(u is not None and u.status == "done" for u in ups):
                        reasons.append(f"hand over {spec.id}")
                    continue
                if st.status in CLOSED:
                    continue
                if APPROVAL in (st.outputs or {}):
                    waiting = True  # held for an operator's decision
                    continue
                ready = at_agencies.get(f"{row.code}:{spec.id}") if at_agencies is not None else None
                if at_agencies is not None and ready is None:
                    reasons.append(f"send {spec.id}")
                elif ready is not None and ready <= now:
                    reasons.append(f"take in {spec.id}")
                else:
                    waiting = True
            if not reasons and not waiting:
                reasons.append("close")  # every step closed (or none can start): resolve, return
            owed += [Owed(row.code, r) for r in reasons]
    return owed


class ClockSteering:
    """Stops the demo's shared clock (every process reads it) whenever the orchestrator owes work,
    and starts it again once every dossier waits for an agency, a citizen or its reception time:
    the dossiers' times then hold the agencies' time only, however slow the machine. It needs the
    bundled simulator, which says when each step's result is ready."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock if isinstance(clock, SimulatedClock) and clock.pause_file is not None else None
        self._http = httpx.Client(base_url=get_settings().agency_api_url, timeout=5.0)
        self.next_ready: datetime | None = None  # the soonest result an agency will have ready
        self.stopped_for = 0.0  # real seconds the clock stood still for the orchestrator
        self._stopped_since: float | None = None

    def at_agencies(self) -> dict[str, datetime] | None:
        try:
            steps = self._http.get("/admin/steps").raise_for_status().json()
        except (httpx.HTTPError, ValueError):
            return None
        return {rid: datetime.fromisoformat(v["ready_at"]) for rid, v in steps.items()}

    def steer(self, codes: list[str]) -> list[Owed]:
        """Stop or start the clock for what is owed now; returns it."""
        if self.clock is None:
            return []
        mono = time.monotonic()
        if self._stopped_since is not None:
            self.stopped_for += mono - self._stopped_since
        now = self.clock.now()
        agencies = self.at_agencies()
        # Not knowing when the agencies' results are ready (a simulator too busy to answer), time
        # waits: it might pass a result by.
        owed = (orchestration_owed(codes, now, agencies) if agencies is not None
                else [Owed("", "ask the agencies")])
        self.clock.set_paused(bool(owed))
        self._stopped_since = mono if owed else None
        later = [at for at in (agencies or {}).values() if at > now]
        self.next_ready = min(later) if later else None
        return owed

    def hold(self) -> None:
        """Stop the clock now, before work the next ``steer`` cannot see yet (a reception)."""
        if self.clock is not None:
            self.clock.set_paused(True)
            if self._stopped_since is None:
                self._stopped_since = time.monotonic()

    def sleep(self, until: datetime | None = None, most: float = 0.1) -> None:
        """Sleep ``most`` real seconds, or less when an agency's result (or ``until``) is due
        sooner: the clock is stopped right then, not some simulated minutes later."""
        wait = most
        if self.clock is not None:
            for at in (self.next_ready, until):
                if at is not None:
                    wait = min(wait, self.clock.real_seconds_until(at))
        time.sleep(max(0.005, wait))

    def close(self) -> None:
        self._http.close()


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


@flow(name="demo", flow_run_name="demo · {dossiers} dossiers · seed {seed}")
def demo(dossiers: int = 9, seed: int = 2026, timeout_s: float = 900.0) -> dict[str, Any]:
    """Receive, route and summarise synthetic dossiers on the shared simulated clock, which stands
    still whenever the orchestrator owes work (``ClockSteering``)."""
    console = Console() if sys.stdout.isatty() else Console(width=120)
    clock = get_clock()
    rng = random.Random(seed)
    planned = plan_dossiers(dossiers, seed)
    artifact = create_progress_artifact(progress=0.0, description="Demo: dossiers received and finished")
    codes: list[str] = []
    awaiting_allowance: dict[str, Submission] = {}
    steering = ClockSteering(clock)
    deadline = time.time() + timeout_s
    try:
        with _progress(console) as progress:
            task = progress.add_task("Receiving dossiers", total=len(planned))
            for p in planned:
                while clock.now() < p.received_at and time.time() < deadline:
                    steering.steer(codes)
                    steering.sleep(until=p.received_at)
                steering.hold()  # the desk receives and starts the run: orchestration time
                sub = make_submission(p.procedure_id, rng, p.received_at, options=p.options)
                receipt = receive(sub, idempotency_key=f"demo:{seed}:{p.index}:{p.received_at.isoformat()}")
                start_run(receipt.dossier_code)
                codes.append(receipt.dossier_code)
                if p.options == {"procedures": 2}:
                    awaiting_allowance[receipt.dossier_code] = sub
                progress.update(task, advance=1, description=f"Received {receipt.dossier_code}")
                update_progress_artifact(artifact, progress=50.0 * len(codes) / len(planned))
        finished = _wait(console, codes, deadline, artifact, awaiting_allowance, rng, steering)
    finally:
        steering.close()
    summary = summarize(codes)
    summary["clock_stopped_s"] = round(steering.stopped_for, 1)
    gaps = hand_over_gaps(codes)
    worst = max(gaps, key=lambda g: g.office_hours, default=None)
    summary["largest_gap"] = (None if worst is None else
                              {"dossier": worst.dossier_code, "step": worst.step, "office_hours": worst.office_hours})
    create_table_artifact(key="demo-procedures", table=[{"procedure": k, **v} for k, v in
                                                        sorted(summary["procedures"].items())],
                          description="Dossiers per procedure")
    create_table_artifact(key="demo-agencies", table=[{"agency": k, **v} for k, v in
                                                      sorted(summary["agencies"].items())],
                          description="Agency steps and Form 05 verdicts")
    return {**summary, "codes": codes, "all_finished": finished}


def _wait(console: Console, codes: list[str], deadline: float, artifact: Any,
          awaiting_allowance: dict[str, Submission], rng: random.Random, steering: ClockSteering) -> bool:
    """Wait for every dossier (``codes`` grows as follow-up dossiers are filed), steering the clock."""
    shown = -1
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
                steering.hold()
                original = awaiting_allowance.pop(code)
                receipt = receive(follow_up(original, get_clock().now(), rng),
                                  idempotency_key=f"demo-follow-up:{code}")
                start_run(receipt.dossier_code)
                codes.append(receipt.dossier_code)
                progress.update(task, total=len(codes))
            if done != shown:
                shown = done
                progress.update(task, completed=done)
                update_progress_artifact(artifact, progress=50.0 + 50.0 * done / max(len(codes), 1))
            if done == len(codes) and not returned:
                return True
            steering.steer(codes)
            steering.sleep()
    return False


@dataclass(frozen=True)
class Gap:
    """Office time between a step becoming ready and its hand-over to the agency (or, for
    ``return``, between the last result and the dossier's resolution): orchestration time as the
    dossier's record shows it."""

    dossier_code: str
    step: str
    ready_at: datetime
    handed_at: datetime
    office_hours: float


def hand_over_gaps(codes: list[str]) -> list[Gap]:
    """Every hand-over gap of ``codes``, read from the database. A step is ready when the steps
    before it are done (a payment is a step), and a first step when the dossier was accepted
    (its reception, or the supplement that completed it)."""
    cal, catalog = get_calendar(), get_catalog()
    gaps: list[Gap] = []
    with session_scope() as s:
        rows = s.execute(select(DossierRow).where(DossierRow.code.in_(codes))).scalars().all()
        for row in rows:
            history = s.execute(select(StatusHistory).where(StatusHistory.dossier_id == row.id)
                                .order_by(StatusHistory.id)).scalars().all()
            accepted = [h.at for h in history if h.to_status == Status.ACCEPTED]
            plan = catalog.for_dossier(row).plan(row.options)
            steps = {st.step_key: st for st in row.steps}

            def gap(step: str, ready: datetime, handed: datetime) -> None:
                hours = cal.working_seconds_between(ready, handed) / 3600
                gaps.append(Gap(row.code, step, ready, handed, round(hours, 3)))  # noqa: B023

            for spec in plan.steps:
                st = steps.get(spec.id)
                if st is None or st.started_at is None:
                    continue
                ups = [steps[u].finished_at for u in plan.upstream[spec.id] if u in steps]
                before = [a for a in accepted if a <= st.started_at] or accepted
                ready = max(ups) if ups and all(ups) else (max(before) if before else None)
                if ready is not None:
                    gap(spec.id, ready, st.started_at)
            ended = [h.at for h in history if h.to_status in (Status.RESOLVED, Status.STOPPED)]
            finished = [st.finished_at for st in row.steps if st.finished_at is not None]
            if ended and finished:
                gap("return", max(finished), ended[0])
    return gaps


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
