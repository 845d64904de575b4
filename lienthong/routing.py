"""Routing of a dossier between agencies: open the dossier's processing, run one agency step
(hand-over, request, wait, verdict), and close the dossier. Plain Python; the Prefect tasks in
``tasks/procedure.py`` only decide retries, names and concurrency around these functions.

Every function is idempotent: a flow that is re-run (crash, retry, resume) finds the work already
recorded and carries on from there, and an agency receives the same request id again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lienthong.agencies import AgencyClient, StepRequest, StepTicket
from lienthong.calendar import WorkingCalendar, get_calendar
from lienthong.catalog import Catalog, Plan, StepSpec, get_catalog
from lienthong.clock import Clock, get_clock
from lienthong.db import session_scope
from lienthong.db.models import DossierRow
from lienthong.db.store import (
    apply_event,
    close_step,
    get_row,
    get_step,
    open_step,
    record_hand_over,
)
from lienthong.dossier import Status
from lienthong.payloads import Submission

RECEPTION = "MOT_CUA"


@dataclass
class StepOutcome:
    step_key: str
    agency: str
    state: str  # done | refused | skipped
    verdict: str | None = None
    reason: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Routing:
    """The collaborators routing needs; defaults come from settings, tests inject their own."""

    client: AgencyClient
    catalog: Catalog = field(default_factory=get_catalog)
    calendar: WorkingCalendar = field(default_factory=get_calendar)
    clock: Clock = field(default_factory=get_clock)
    poll_seconds: float = 0.2
    sleep: Callable[[float], None] = time.sleep

    def plan(self, dossier_code: str) -> Plan:
        with session_scope() as s:
            row = get_row(s, dossier_code)
            return self.catalog.get(row.procedure_id).plan(row.options)

    # --- the dossier ---------------------------------------------------------------------------

    def status(self, dossier_code: str) -> Status:
        with session_scope() as s:
            return Status(get_row(s, dossier_code).status)

    def begin(self, dossier_code: str) -> Status:
        """Transfer an accepted dossier to processing (Đang xử lý); other states are left as they are."""
        with session_scope() as s:
            row = get_row(s, dossier_code, for_update=True)
            if row.status == Status.ACCEPTED:
                apply_event(s, dossier_code, "start_processing", self.clock.now(), self.calendar,
                            actor=RECEPTION)
                return Status.PROCESSING
            return Status(row.status)

    def finish(self, dossier_code: str, outcomes: list[StepOutcome]) -> Status:
        """Resolve and deliver when every step is done; stop with the agency's reason on a refusal."""
        with session_scope() as s:
            row = get_row(s, dossier_code, for_update=True)
            status = Status(row.status)
            if status.terminal:
                return status
            now = self.clock.now()
            refused = [o for o in outcomes if o.state == "refused"]
            if refused:
                first = refused[0]
                apply_event(s, dossier_code, "stop", now, self.calendar, actor=first.agency,
                            reason=first.reason or "Cơ quan xử lý từ chối giải quyết")
                return Status.STOPPED
            if status == Status.PROCESSING:
                dossier = apply_event(s, dossier_code, "resolve", now, self.calendar, actor=RECEPTION)
                status = dossier.status
            if status == Status.RESOLVED:
                # Decree 63 results are returned electronically: portal, VNeID and the citizen's vault.
                dossier = apply_event(s, dossier_code, "deliver", now, self.calendar, actor=RECEPTION)
                row.deliveries = {**(row.deliveries or {}), "citizen": now.isoformat()}
                status = dossier.status
            return status

    # --- one step ------------------------------------------------------------------------------

    def run_step(self, dossier_code: str, step_key: str) -> StepOutcome:
        spec, upstream, ready = self._open(dossier_code, step_key)
        if isinstance(ready, StepOutcome):
            return ready
        request = ready
        ticket = self.client.submit(request)
        while ticket.state == "pending":
            self.sleep(self.poll_seconds)
            ticket = self.client.poll(ticket.ticket)
        return self._close(dossier_code, spec, ticket)

    def _open(self, dossier_code: str, step_key: str) -> tuple[StepSpec, list[str], StepRequest | StepOutcome]:
        with session_scope() as s:
            row = get_row(s, dossier_code, for_update=True)
            plan = self.catalog.get(row.procedure_id).plan(row.options)
            spec = next(x for x in plan.steps if x.id == step_key)
            upstream_keys = plan.upstream[step_key]
            existing = get_step(s, row.id, step_key)
            if existing is not None and existing.status in ("done", "refused", "skipped"):
                return spec, upstream_keys, StepOutcome(step_key, spec.agency, existing.status,
                                                        existing.verdict, existing.error,
                                                        dict(existing.outputs or {}))
            ups = [get_step(s, row.id, k) for k in upstream_keys]
            if any(u is None or u.status != "done" for u in ups):
                # An earlier agency refused: this step never starts (the dossier is stopped).
                return spec, upstream_keys, StepOutcome(step_key, spec.agency, "skipped")
            now = self.clock.now()
            givers = [(u.agency, u.verdict) for u in ups if u is not None] or [(RECEPTION, None)]
            step = existing or open_step(
                s, row, step_key=step_key, agency=spec.agency, action=spec.action, kind=spec.kind,
                limit=spec.time_limit, at=now, calendar=self.calendar, givers=givers,
            )
            if spec.kind == "payment" and row.status == Status.PROCESSING:
                apply_event(s, dossier_code, "request_payment", now, self.calendar, actor=spec.agency)
            step.status = "submitted"
            step.attempts += 1
            data = self._inputs(row, spec, {u.step_key: u.outputs for u in ups if u is not None})
            assert step.started_at is not None and step.due_at is not None
            request = StepRequest(
                request_id=f"{dossier_code}:{step_key}", dossier_code=dossier_code,
                procedure_id=row.procedure_id, step_key=step_key, agency=spec.agency,
                action=spec.action, kind=spec.kind, started_at=step.started_at, due_at=step.due_at,
                outputs=list(spec.outputs), data=data,
            )
            return spec, upstream_keys, request

    def _inputs(self, row: DossierRow, spec: StepSpec, upstream: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """What the agency receives: the inputs the catalog names, from the dossier or earlier steps."""
        submission = Submission.model_validate(row.payload)
        produced: dict[str, Any] = {}
        for outputs in upstream.values():
            produced.update(outputs)
        data: dict[str, Any] = {}
        for name in spec.inputs:
            if name in produced:
                data[name] = produced[name]
            elif name == "declaration":
                data[name] = submission.model_dump(mode="json", exclude={"components"})
            else:
                data[name] = [c.model_dump(mode="json") for c in submission.components] or None
        return data

    def _close(self, dossier_code: str, spec: StepSpec, ticket: StepTicket) -> StepOutcome:
        with session_scope() as s:
            row = get_row(s, dossier_code, for_update=True)
            step = get_step(s, row.id, spec.id, for_update=True)
            assert step is not None
            if step.status in ("done", "refused"):  # closed by a concurrent re-run
                return StepOutcome(spec.id, spec.agency, step.status, step.verdict, step.error,
                                   dict(step.outputs or {}))
            at = ticket.finished_at or self.clock.now()
            state = "done" if ticket.state == "done" else "refused"
            close_step(s, step, status=state, at=at, calendar=self.calendar,
                       outputs=dict(ticket.result), error=ticket.reason)
            if not spec.counts_toward_limit:  # the applicant's own time (payment) earns no verdict
                step.verdict, step.late = None, False
            if spec.kind == "payment" and row.status == Status.AWAITING_PAYMENT:
                apply_event(s, dossier_code, "payment_received", at, self.calendar, actor=spec.agency)
            plan = self.catalog.get(row.procedure_id).plan(row.options)
            if state == "done" and not plan.downstream(spec.id):
                # The last agency of a branch hands its result back to the one-stop desk.
                record_hand_over(s, row, from_agency=spec.agency, to_agency=RECEPTION, at=at,
                                 verdict=step.verdict, step_id=step.id)
            return StepOutcome(spec.id, spec.agency, state, step.verdict, ticket.reason,
                               dict(ticket.result))
