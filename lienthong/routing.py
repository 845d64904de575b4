"""Routing of a dossier between agencies: open the dossier's processing, run one agency step
(hand-over, request, wait, verdict), and close the dossier. Plain Python; the Prefect tasks in
``tasks/procedure.py`` only decide retries, names and concurrency around these functions.

Every function is idempotent: a flow that is re-run (crash, retry, resume) finds the work already
recorded and carries on from there, and an agency receives the same request id again.

Two ways to hear from an agency (``mode`` per agency in ``config/agencies.yaml``, overridden by the
setting ``agency_modes``): ``poll`` asks for the result until it is there; ``async`` submits with a
callback URL on the webhook gateway and answers ``waiting`` at once, and the flow later closes the
step from the agency's callback (:meth:`Routing.close_from_result`).

Steps the catalog marks ``approval:`` (a civil-status officer signs the registration) are held
after the agency's result until a person decides (:meth:`Routing.decide`): approve (the step is
done), refuse with a reason (refused, the dossier stops) or request a supplement. With the policy
``auto`` the approval is given at once and recorded as automatic. While held, the agency's result
and every decision are kept in the step's outputs under ``_approval`` (the timeline shows them);
the step stays open, so its deadline keeps running.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from lienthong.agencies import AgencyClient, StepRequest, StepTicket
from lienthong.calendar import WorkingCalendar, get_calendar
from lienthong.catalog import Catalog, Plan, StepSpec, get_catalog
from lienthong.clock import Clock, get_clock
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, StepRow
from lienthong.db.store import (
    apply_event,
    close_step,
    get_row,
    get_step,
    open_step,
    record_hand_over,
)
from lienthong.dossier import Status
from lienthong.errors import LienThongError
from lienthong.payloads import Submission

RECEPTION = "MOT_CUA"
APPROVAL = "_approval"  # key of the approval record inside a step's outputs
AUTOMATIC = "Tự động (chính sách phê duyệt: auto)"
CLOSED = ("done", "refused", "skipped")


def result_problems(spec: StepSpec, body: Mapping[str, Any]) -> list[str]:
    """What makes an agency's result unusable for ``spec`` (empty when it is fine): a state other
    than done/refused, a refusal without reason, outputs the catalog does not name or misses.
    The gateway answers 422 with these before storing a callback; the flow checks them again."""
    state = body.get("state")
    result = dict(body.get("result") or {})
    unknown = sorted(set(result) - set(spec.outputs))
    missing = sorted(set(spec.outputs) - set(result)) if state == "done" else []
    problems = []
    if state not in ("done", "refused"):
        problems.append(f"state {state!r} is neither done nor refused")
    if state == "refused" and not (body.get("reason") or "").strip():
        problems.append("a refusal without a reason")
    if unknown:
        problems.append(f"outputs the catalog does not name: {', '.join(unknown)}")
    if missing:
        problems.append(f"missing outputs: {', '.join(missing)}")
    return problems


def result_problems_vi(spec: StepSpec, problems: list[str]) -> str:
    return (f"Kết quả do {spec.agency} gửi cho bước \"{spec.action}\" không hợp lệ: "
            + "; ".join(_vi(p) for p in problems) + ".")


class AgencyResultInvalid(LienThongError):
    """An agency's result does not match the catalog (unknown or missing outputs, refusal without reason)."""

    code = "agency_result_invalid"


class ApprovalInvalid(LienThongError):
    """An operator's decision that cannot be applied as given (refusal or supplement without a reason)."""

    code = "approval_invalid"


@dataclass
class StepOutcome:
    step_key: str
    agency: str
    state: str  # done | refused | skipped | waiting (async agency) | approval (held for a person)
    verdict: str | None = None
    reason: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    ref: str | None = None  # the step's public reference (callback URL, suspend keys)


@dataclass(frozen=True)
class Progress:
    """A dossier as a flow run finds it when it starts or resumes (:meth:`Routing.progress`)."""

    status: Status
    approving: bool  # waiting for the supplement an approving officer requested
    steps: dict[str, StepOutcome]  # step key -> where the step stands, for steps begun
    published: frozenset[str] = frozenset()  # done steps whose every result the vault holds


@dataclass(frozen=True)
class Decision:
    """A decision on a step held for approval (the flow's typed form, as plain data)."""

    decision: Literal["approve", "refuse", "supplement"]
    officer: str
    reason: str | None = None
    note: str | None = None
    automatic: bool = False
    key: str = "auto"  # the suspend key it answered: one decision per key, however often replayed

    def check(self) -> None:
        if self.decision in ("refuse", "supplement") and not (self.reason or "").strip():
            what = "từ chối" if self.decision == "refuse" else "yêu cầu bổ sung"
            raise ApprovalInvalid(f"a {self.decision} decision needs a reason",
                                  message_vi=f"Quyết định {what} phải ghi rõ lý do.")
        if not self.officer.strip():
            raise ApprovalInvalid("the deciding officer is not named",
                                  message_vi="Phải ghi họ tên công chức quyết định.")


def _public(outputs: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (outputs or {}).items() if k != APPROVAL}


def _outcome(spec: StepSpec, step: StepRow) -> StepOutcome:
    """The outcome a recorded step stands for (closed, or held for approval)."""
    if step.status in CLOSED:
        return StepOutcome(spec.id, spec.agency, step.status, step.verdict, step.error,
                           _public(step.outputs), step.ref)
    return StepOutcome(spec.id, spec.agency, "approval", None, None, _public(step.outputs), step.ref)


@dataclass
class Routing:
    """The collaborators routing needs; defaults come from settings, tests inject their own."""

    client: AgencyClient
    catalog: Catalog = field(default_factory=get_catalog)
    calendar: WorkingCalendar = field(default_factory=get_calendar)
    clock: Clock = field(default_factory=get_clock)
    poll_seconds: float = 0.2
    sleep: Callable[[float], None] = time.sleep
    # Agency code -> "poll" | "async", over the catalog's `mode:` per agency.
    modes: Mapping[str, str] = field(default_factory=dict)
    callback_base_url: str = "http://127.0.0.1:8720"
    approval_policy: Literal["operator", "auto"] = "auto"

    def is_async(self, agency: str) -> bool:
        mode = self.modes.get(agency) or (self.catalog.agencies.get(agency) or {}).get("mode") or "poll"
        return mode == "async"

    def callback_url(self, ref: str) -> str:
        return f"{self.callback_base_url.rstrip('/')}/v1/steps/{ref}/result"

    def plan(self, dossier_code: str) -> Plan:
        with session_scope() as s:
            row = get_row(s, dossier_code)
            return self.catalog.for_dossier(row).plan(row.options)

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

    def progress(self, dossier_code: str) -> Progress:
        """What is left of the dossier, read once: its status and, for every step recorded so far,
        where it stands (closed, held for approval, or waiting for an asynchronous agency's
        callback). A step handed to a polled agency but not settled is not listed: running it
        again asks the agency for the same request id."""
        with session_scope() as s:
            row = get_row(s, dossier_code)
            plan = self.catalog.for_dossier(row).plan(row.options)
            rows = {st.step_key: st for st in row.steps}
            steps: dict[str, StepOutcome] = {}
            for spec in plan.steps:
                st = rows.get(spec.id)
                if st is None:
                    continue
                if st.status in CLOSED or APPROVAL in (st.outputs or {}):
                    steps[spec.id] = _outcome(spec, st)
                elif st.ticket and self.is_async(spec.agency):
                    steps[spec.id] = StepOutcome(spec.id, spec.agency, "waiting", ref=st.ref)
            status = Status(row.status)
        approving = status == Status.SUPPLEMENT_REQUESTED and self.awaiting_approval_supplement(dossier_code)
        return Progress(status, approving, steps)

    # --- one step ------------------------------------------------------------------------------

    def run_step(self, dossier_code: str, step_key: str) -> StepOutcome:
        """Hand the step over and get its result: ``done``/``refused``/``skipped``, or ``waiting``
        (an asynchronous agency will call back) or ``approval`` (held for an operator)."""
        asynchronous = self.is_async(self._spec(dossier_code, step_key).agency)
        spec, upstream, ready = self._open(dossier_code, step_key, asynchronous=asynchronous)
        if isinstance(ready, StepOutcome):
            return ready
        request = ready
        ticket = self.client.submit(request)
        if asynchronous and ticket.state == "pending":
            return self._waiting(dossier_code, spec, ticket.ticket)
        while ticket.state == "pending":
            self.sleep(self.poll_seconds)
            ticket = self.client.poll(ticket.ticket)
        return self._settle(dossier_code, spec, ticket)

    def _spec(self, dossier_code: str, step_key: str) -> StepSpec:
        with session_scope() as s:
            row = get_row(s, dossier_code)
            return self.catalog.for_dossier(row).step(step_key)

    def _open(self, dossier_code: str, step_key: str, *,
              asynchronous: bool = False) -> tuple[StepSpec, list[str], StepRequest | StepOutcome]:
        with session_scope() as s:
            row = get_row(s, dossier_code, for_update=True)
            plan = self.catalog.for_dossier(row).plan(row.options)
            spec = next(x for x in plan.steps if x.id == step_key)
            upstream_keys = plan.upstream[step_key]
            existing = get_step(s, row.id, step_key)
            if existing is not None and (existing.status in CLOSED or APPROVAL in (existing.outputs or {})):
                return spec, upstream_keys, _outcome(spec, existing)
            if existing is not None and asynchronous and existing.ticket:
                # Submitted before this re-run: the agency calls back, it is not asked again.
                return spec, upstream_keys, StepOutcome(step_key, spec.agency, "waiting", ref=existing.ref)
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
                callback_url=self.callback_url(step.ref) if asynchronous else None,
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

    def _waiting(self, dossier_code: str, spec: StepSpec, ticket: str) -> StepOutcome:
        """Record the agency's ticket: the step is submitted and waits for the callback."""
        with session_scope() as s:
            row = get_row(s, dossier_code, for_update=True)
            step = get_step(s, row.id, spec.id, for_update=True)
            assert step is not None
            if step.status in CLOSED or APPROVAL in (step.outputs or {}):  # the callback came first
                return _outcome(spec, step)
            step.ticket = ticket
            return StepOutcome(spec.id, spec.agency, "waiting", ref=step.ref)

    def close_from_result(self, dossier_code: str, step_key: str, body: Mapping[str, Any]) -> StepOutcome:
        """Close (or hold for approval) a step from an asynchronous agency's result, the body of
        ``POST /v1/steps/{ref}/result``. A step closed already (a late or repeated callback after a
        re-run) is left as it is. A result the catalog does not allow raises AgencyResultInvalid."""
        spec = self._spec(dossier_code, step_key)
        state = body.get("state")
        result = dict(body.get("result") or {})
        reason = body.get("reason")
        problems = result_problems(spec, body)
        if problems:
            raise AgencyResultInvalid(
                f"{dossier_code}/{step_key}: {spec.agency} sent an unusable result: {'; '.join(problems)}",
                message_vi=result_problems_vi(spec, problems) + " Cần cán bộ kiểm tra.",
            )
        finished = body.get("finished_at")
        ticket = StepTicket(
            ticket=str(body.get("ticket") or "callback"), request_id=str(body.get("request_id") or ""),
            state="done" if state == "done" else "refused", result=result, reason=reason,
            finished_at=datetime.fromisoformat(finished) if isinstance(finished, str) else finished,
        )
        return self._settle(dossier_code, spec, ticket)

    def _settle(self, dossier_code: str, spec: StepSpec, ticket: StepTicket) -> StepOutcome:
        """The agency has answered: close the step, or hold it for the approval the catalog requires."""
        with session_scope() as s:
            row = get_row(s, dossier_code, for_update=True)
            step = get_step(s, row.id, spec.id, for_update=True)
            assert step is not None
            if step.status in CLOSED or APPROVAL in (step.outputs or {}):  # settled by a concurrent re-run
                return _outcome(spec, step)
            step.ticket = ticket.ticket
            at = ticket.finished_at or self.clock.now()
            if not (spec.approval and ticket.state == "done"):
                return self._close_locked(s, row, step, spec, "done" if ticket.state == "done" else "refused",
                                          at, dict(ticket.result), ticket.reason)
            step.outputs = {**ticket.result, APPROVAL: {
                "required": spec.approval, "result_at": at.isoformat(), "decisions": []}}
            if self.approval_policy == "operator":
                return StepOutcome(spec.id, spec.agency, "approval", outputs=dict(ticket.result), ref=step.ref)
            return self._decide_locked(s, row, step, spec, Decision("approve", AUTOMATIC, automatic=True), at)

    def decide(self, dossier_code: str, step_key: str, decision: Decision) -> StepOutcome:
        """Apply a person's decision on a step held for approval (idempotent by the decision's key)."""
        decision.check()
        spec = self._spec(dossier_code, step_key)
        with session_scope() as s:
            row = get_row(s, dossier_code, for_update=True)
            step = get_step(s, row.id, step_key, for_update=True)
            if step is None or (step.status not in CLOSED and APPROVAL not in (step.outputs or {})):
                raise ApprovalInvalid(f"{dossier_code}/{step_key}: no result is waiting for approval",
                                      message_vi="Bước này chưa có kết quả chờ phê duyệt.")
            if step.status in CLOSED:
                return _outcome(spec, step)
            return self._decide_locked(s, row, step, spec, decision, self.clock.now())

    def approval_record(self, dossier_code: str, step_key: str) -> dict[str, Any]:
        """The step's approval record: what is required, when the result came, every decision."""
        with session_scope() as s:
            row = get_row(s, dossier_code)
            step = get_step(s, row.id, step_key)
            return dict((step.outputs or {}).get(APPROVAL) or {}) if step is not None else {}

    def note_supplement_round(self, dossier_code: str, step_key: str, key: str) -> int:
        """The supplement round an officer's request (answer ``key``) belongs to, chosen once: the
        next round when first asked, the same one on every re-run."""
        with session_scope() as s:
            row = get_row(s, dossier_code, for_update=True)
            step = get_step(s, row.id, step_key, for_update=True)
            assert step is not None
            record = dict((step.outputs or {}).get(APPROVAL) or {})
            rounds = dict(record.get("supplement_rounds") or {})
            if key not in rounds:
                from lienthong.db.store import to_aggregate

                rounds[key] = to_aggregate(s, row).supplement_count + 1
                record["supplement_rounds"] = rounds
                step.outputs = {**(step.outputs or {}), APPROVAL: record}
            return int(rounds[key])

    def awaiting_approval_supplement(self, dossier_code: str) -> bool:
        """True while the dossier waits for a supplement an approving officer requested (so a
        resumed run goes back to that approval, not to intake)."""
        from sqlalchemy import select

        from lienthong.db.store import to_aggregate

        with session_scope() as s:
            row = get_row(s, dossier_code)
            if row.status != Status.SUPPLEMENT_REQUESTED:
                return False
            count = to_aggregate(s, row).supplement_count
            for outputs in s.execute(select(StepRow.outputs).where(StepRow.dossier_id == row.id)).scalars():
                rounds = ((outputs or {}).get(APPROVAL) or {}).get("supplement_rounds") or {}
                if count in rounds.values():
                    return True
            return False

    def _decide_locked(self, s: Any, row: DossierRow, step: StepRow, spec: StepSpec, decision: Decision,
                       at: datetime) -> StepOutcome:
        record = dict((step.outputs or {}).get(APPROVAL) or {})
        decisions = list(record.get("decisions") or [])
        if not any(d.get("key") == decision.key for d in decisions):
            decisions.append({"decision": decision.decision, "officer": decision.officer,
                              "reason": decision.reason, "note": decision.note,
                              "automatic": decision.automatic, "key": decision.key, "at": at.isoformat()})
        record["decisions"] = decisions
        result = _public(step.outputs)
        step.outputs = {**result, APPROVAL: record}
        if decision.decision == "supplement":
            return StepOutcome(spec.id, spec.agency, "approval", reason=decision.reason, outputs=result,
                               ref=step.ref)
        if decision.automatic:  # no person took time: the step ends when the agency's result came
            at = datetime.fromisoformat(record["result_at"]) if record.get("result_at") else at
        if decision.decision == "approve":
            return self._close_locked(s, row, step, spec, "done", at, {**result, APPROVAL: record}, None)
        reason = f"{spec.approval or 'Người có thẩm quyền'} không phê duyệt: {decision.reason}"
        return self._close_locked(s, row, step, spec, "refused", at, {APPROVAL: record}, reason)

    def _close_locked(self, s: Any, row: DossierRow, step: StepRow, spec: StepSpec, state: str, at: datetime,
                      outputs: dict[str, Any], reason: str | None) -> StepOutcome:
        dossier_code = row.code
        close_step(s, step, status=state, at=at, calendar=self.calendar, outputs=outputs, error=reason)
        if not spec.counts_toward_limit:  # the applicant's own time (payment) earns no verdict
            step.verdict, step.late = None, False
        if spec.kind == "payment" and row.status == Status.AWAITING_PAYMENT:
            apply_event(s, dossier_code, "payment_received", at, self.calendar, actor=spec.agency)
        plan = self.catalog.for_dossier(row).plan(row.options)
        if state == "done" and not plan.downstream(spec.id):
            # The last agency of a branch hands its result back to the one-stop desk.
            record_hand_over(s, row, from_agency=spec.agency, to_agency=RECEPTION, at=at,
                             verdict=step.verdict, step_id=step.id)
        return StepOutcome(spec.id, spec.agency, state, step.verdict, reason, _public(outputs), step.ref)


_VI = {
    "a refusal without a reason": "từ chối nhưng không nêu lý do",
    "outputs the catalog does not name": "có dữ liệu ngoài danh mục kết quả của bước",
    "missing outputs": "thiếu dữ liệu kết quả",
}


def _vi(problem: str) -> str:
    for en, vi in _VI.items():
        if problem.startswith(en):
            return vi + problem[len(en):]
    return "trạng thái không hợp lệ"
