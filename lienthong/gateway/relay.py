"""The inbox relay: every accepted request becomes exactly one effect on its flow run.

- a new dossier starts its procedure's deployment (the run is keyed on the dossier's UID, so a
  second start after a crash returns the same run);
- a supplement resumes the dossier's run when it is suspended on ``supplement-<round>``;
- an agency's step result resumes the run suspended on a wave of agencies that holds its step
  (``agency-<step ref>[-<step ref>...]``, :func:`agency_wait_key`), and stays readable with
  :func:`lienthong.gateway.views.stored_step_result`, where the run reads every result of the
  wave that came meanwhile.

While the orchestrator (the Prefect API) is down, rows stay pending and nothing is dropped: the
first call that finds it unreachable (:class:`OrchestratorUnavailable`) ends the pass, and the relay
probes again after a pause that doubles up to ``max_pause`` and resets once a call succeeds. Every
other row would fail the same way, so they are neither tried nor charged an attempt; when the
API is back they go at once, oldest first. A failure of one row only (a missing deployment, a
refused resume) backs off that row alone. The orchestrator is injected: this module never imports
Prefect (the Prefect implementation is ``infra.gateway_relay.PrefectOrchestrator``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienthong.clock import get_clock
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, InboxRow, StepRow, SupplementRow
from lienthong.gateway.inbox import prune_nonces
from lienthong.gateway.settings import get_gateway_settings
from lienthong.privacy import mask_ids_in_text

log = logging.getLogger("lienthong.gateway.relay")


@dataclass(frozen=True)
class RunView:
    """What the relay needs to know of a flow run."""

    state: str  # the orchestrator's state type, e.g. RUNNING, PAUSED, COMPLETED
    pause_key: str | None  # the key of the suspend/pause it waits on, if paused
    final: bool


class OrchestratorUnavailable(Exception):
    """The orchestrator could not be reached, or answered that it cannot serve now (5xx): not
    this row's fault, and every other row would fail the same way."""


class Orchestrator(Protocol):
    """May also have ``pass_scope()``, a context manager, entered around each pass that has rows
    to relay (the Prefect implementation keeps one API client for the whole pass)."""

    def start(self, dossier_code: str) -> str:
        """Start (or find, when already started) the dossier's run; returns the flow run id."""
        ...

    def view(self, flow_run_id: str) -> RunView: ...

    def resume(self, flow_run_id: str, run_input: dict[str, Any]) -> None: ...


@dataclass
class RelayReport:
    started: list[str] = field(default_factory=list)  # dossier codes
    resumed: list[str] = field(default_factory=list)  # "<code> <key>"
    waiting: int = 0  # rows whose run is not (yet) waiting for them
    failed: int = 0  # rows whose orchestrator call failed (retried later)
    closed: int = 0  # rows with nothing left to do (run ended, step closed elsewhere)
    unavailable: bool = False  # the orchestrator was unreachable: the pass stopped (or was skipped)

    def merge(self, other: RelayReport) -> None:
        self.started += other.started
        self.resumed += other.resumed
        self.waiting += other.waiting
        self.failed += other.failed
        self.closed += other.closed
        self.unavailable |= other.unavailable


class _Wait(Exception):
    """The run is not waiting for this row yet: look again later (not an error)."""


class Relay:
    def __init__(
        self,
        orchestrator: Orchestrator,
        *,
        batch: int = 200,
        workers: int = 1,
        max_backoff: float = 60.0,
        first_pause: float = 0.25,
        max_pause: float = 10.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.orchestrator, self.batch, self.max_backoff, self.max_pause, self._now = (
            orchestrator,
            batch,
            max_backoff,
            max_pause,
            now,
        )
        # Back-off lives in memory: after a restart every pending row is tried again at once.
        self._not_before: dict[int, float] = {}
        self._waits: dict[int, int] = {}
        # Rows relayed at once. Measured on 200 starts: against a Prefect server on PostgreSQL
        # 4 workers take 26 ms a row, one 54 ms; on SQLite (the embedded default) concurrent
        # writes collide ("database is locked", answered 503, on which Prefect's client sleeps 2 s
        # even without retries), so 2 workers take 250 ms a row and one 85 ms. Hence 1 by default.
        self.workers = workers
        self.first_pause = first_pause
        self._outages = 0  # consecutive passes that found the orchestrator unreachable
        self._paused_until = 0.0
        self._last_unavailable = ""

    def run_once(self) -> RelayReport:
        """One pass over the pending rows whose back-off has elapsed, oldest first; none while
        the relay pauses after finding the orchestrator unreachable."""
        report = RelayReport()
        if self._now() < self._paused_until:
            report.unavailable = True
            return report
        with session_scope() as s:
            ids = (
                s.execute(
                    select(InboxRow.id).where(InboxRow.state == "pending").order_by(InboxRow.id).limit(self.batch)
                )
                .scalars()
                .all()
            )
        now = self._now()
        due = [i for i in ids if self._not_before.get(i, 0.0) <= now]
        if not due:
            return report
        scope: Callable[[], contextlib.AbstractContextManager[Any]] = getattr(
            self.orchestrator, "pass_scope", contextlib.nullcontext
        )
        with scope():
            if self.workers <= 1 or len(due) == 1:
                for inbox_id in due:
                    self._relay(inbox_id, report)
                    if report.unavailable:
                        break
            else:
                self._relay_concurrently(due, report)
        if report.unavailable:
            # Consecutive outages lengthen the pause; a pass that got anything done first was a
            # busy answer amid service (a SQLite Prefect's 503 now and then), not an outage.
            served = report.started or report.resumed or report.waiting or report.closed
            self._outages = 1 if served else self._outages + 1
            pause = min(self.max_pause, self.first_pause * 2 ** min(self._outages - 1, 8))
            self._paused_until = self._now() + pause
            # One busy answer (a 503) is routine; a run of them is an outage worth a warning.
            log.log(
                logging.WARNING if self._outages > 1 else logging.INFO,
                "orchestrator unavailable (%s): relay paused %.2f s",
                self._last_unavailable,
                pause,
            )
        else:
            self._outages = 0
        return report

    def _relay_concurrently(self, due: list[int], report: RelayReport) -> None:
        """Up to ``workers`` rows at once, each in its own transaction; once one finds the
        orchestrator unavailable the rows not begun yet are left for after the pause."""
        lock = threading.Lock()

        def one(inbox_id: int) -> None:
            if report.unavailable:
                return
            mine = RelayReport()
            self._relay(inbox_id, mine)
            with lock:
                report.merge(mine)

        with ThreadPoolExecutor(self.workers, thread_name_prefix="relay") as pool:
            # Each row runs in a copy of this context: the orchestrator's pass settings hold there.
            futures = [pool.submit(contextvars.copy_context().run, one, inbox_id) for inbox_id in due]
            for future in futures:
                future.result()

    def run_forever(self, stop: threading.Event | None = None, idle_seconds: float = 1.0) -> None:
        stop = stop or threading.Event()
        pruned = 0.0
        while not stop.is_set():
            if self._now() - pruned > 60:  # old nonces fail the timestamp check anyway
                pruned = self._now()
                try:
                    prune_nonces(timedelta(seconds=2 * get_gateway_settings().timestamp_window_seconds + 60))
                except Exception as exc:
                    log.warning("nonce pruning failed: %s", type(exc).__name__)
            try:
                report = self.run_once()
            except Exception as exc:  # the database itself is down: wait, then try again
                log.warning("relay pass failed: %s", type(exc).__name__)
                report = RelayReport(failed=1)
            busy = report.started or report.resumed
            stop.wait(0.05 if busy else idle_seconds)

    def _relay(self, inbox_id: int, report: RelayReport) -> None:
        with session_scope() as s:
            # SKIP LOCKED: two relay replicas never work on the same row at once (PostgreSQL).
            row = s.execute(
                select(InboxRow)
                .where(InboxRow.id == inbox_id, InboxRow.state == "pending")
                .with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if row is None:
                return
            try:
                outcome = self._apply(s, row, report)
            except OrchestratorUnavailable as exc:  # keep the row; the whole relay pauses
                row.attempts += 1
                row.last_error = mask_ids_in_text(f"{type(exc).__name__}: {exc}")[:1000]
                self._last_unavailable = str(exc)[:200]
                report.failed += 1
                report.unavailable = True
                return
            except _Wait:
                report.waiting += 1
                waits = self._waits.get(inbox_id, 0) + 1
                self._waits[inbox_id] = waits
                self._not_before[inbox_id] = self._now() + min(self.max_backoff, 0.5 * 2 ** min(waits, 8))
                return
            except Exception as exc:  # the orchestrator is down or refused: keep the row, back off
                row.attempts += 1
                row.last_error = mask_ids_in_text(f"{type(exc).__name__}: {exc}")[:1000]
                self._not_before[inbox_id] = self._now() + min(self.max_backoff, 2.0 ** min(row.attempts, 8))
                report.failed += 1
                log.warning("inbox %s (%s) not relayed yet: %s", inbox_id, row.kind, type(exc).__name__)
                return
            row.state, row.processed_at = outcome, get_clock().now()
            self._not_before.pop(inbox_id, None)
            self._waits.pop(inbox_id, None)

    def _apply(self, s: Session, row: InboxRow, report: RelayReport) -> str:
        code = row.dossier_code
        if code is None:  # cannot happen for an accepted row; keep it visible rather than drop it
            raise ValueError("inbox row without a dossier code")
        if row.kind == "dossier":
            row.flow_run_id = self.orchestrator.start(code)
            report.started.append(code)
            return "done"
        dossier = s.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one()
        payload = row.payload or {}
        if row.kind == "supplement":
            round_no = int(payload["round"])
            answered = s.execute(
                select(SupplementRow.completed_at)
                .where(SupplementRow.dossier_id == dossier.id)
                .order_by(SupplementRow.id)
                .offset(round_no - 1)
                .limit(1)
            ).scalar()
            if answered is not None:  # resumed already (by this relay before a crash, or an operator)
                report.closed += 1
                return "done"
            return self._resume(row, dossier, f"supplement-{round_no}", payload["run_input"], report)
        if row.kind == "step_result":
            ref = payload["step_ref"]
            status = s.execute(select(StepRow.status).where(StepRow.ref == ref)).scalar()
            if status in ("done", "refused"):
                report.closed += 1
                return "done"
            return self._resume(row, dossier, lambda key: waits_for_step(key, ref),
                                {**payload["body"], "step_ref": ref}, report, f"agency-{ref}")
        raise ValueError(f"unknown inbox kind {row.kind!r}")

    def _resume(
        self,
        row: InboxRow,
        dossier: DossierRow,
        key: str | Callable[[str | None], bool],
        run_input: dict[str, Any],
        report: RelayReport,
        what: str | None = None,
    ) -> str:
        if dossier.flow_run_id is None:
            raise _Wait
        view = self.orchestrator.view(dossier.flow_run_id)
        if (key(view.pause_key) if callable(key) else view.pause_key == key):
            self.orchestrator.resume(dossier.flow_run_id, run_input)
            row.flow_run_id = dossier.flow_run_id
            report.resumed.append(f"{dossier.code} {view.pause_key}")
            return "done"
        if view.final:
            row.last_error = f"the run ended ({view.state}) before it waited for {what or key}"
            report.closed += 1
            return "skipped"
        raise _Wait


AGENCY_WAIT = "agency-"


def agency_wait_key(step_refs: list[str]) -> str:
    """The key a run suspends on while it waits for asynchronous agencies: one suspend for the
    whole wave of steps in flight, ``agency-<ref>[-<ref>...]``, resumed by whichever answers first
    (step refs are hexadecimal, and Prefect allows only letters, digits and dashes in the key)."""
    return AGENCY_WAIT + "-".join(sorted(step_refs))


def waits_for_step(pause_key: str | None, step_ref: str) -> bool:
    """Whether a run suspended on ``pause_key`` waits for the result of step ``step_ref``."""
    if not pause_key or not pause_key.startswith(AGENCY_WAIT):
        return False
    return step_ref in pause_key[len(AGENCY_WAIT):].split("-")


def relay_once(orchestrator: Orchestrator) -> RelayReport:
    """One pass, for tests and cron-style use (``lienthong relay --once``)."""
    return Relay(orchestrator).run_once()
