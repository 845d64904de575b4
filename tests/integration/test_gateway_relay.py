"""The relay against PostgreSQL with a scripted orchestrator (the Prefect side is tested in
tests/flows/test_gateway_relay.py): nothing accepted is dropped while the orchestrator is down."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from sqlalchemy import select

from lienthong.db import session_scope
from lienthong.db.models import DossierRow, InboxRow
from lienthong.db.store import get_row
from lienthong.gateway.relay import OrchestratorUnavailable, Relay, RunView, agency_wait_key, waits_for_step
from lienthong.supplement import request_supplement, supplement_received
from tests.integration.gateway_helpers import (
    Signed,
    gateway_server,  # noqa: F401
    submission_json,
)
from tests.integration.test_gateway_followups import LINES, add_step


class Orchestrator:
    """Runs keyed on the dossier like Prefect's idempotency key; can be switched off."""

    def __init__(self) -> None:
        self.up = True
        self.runs: dict[str, str] = {}
        self.paused: dict[str, str | None] = {}
        self.inputs: list[tuple[str, dict[str, Any]]] = []
        self.final: set[str] = set()
        self.calls = 0
        self.broken: set[str] = set()  # dossiers whose start fails on their own (e.g. no deployment)
        self.latency = 0.0  # seconds a start takes (the API's time)
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()

    def _check(self) -> None:
        with self.lock:
            self.calls += 1
        if not self.up:
            raise OrchestratorUnavailable("ConnectError: All connection attempts failed")

    def start(self, dossier_code: str) -> str:
        self._check()
        if dossier_code in self.broken:
            raise LookupError("Deployment 'procedure/x' not found")
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            run = self.runs.setdefault(dossier_code, f"run-{len(self.runs) + 1}")
        time.sleep(self.latency)
        with self.lock:
            self.in_flight -= 1
        with session_scope() as s:
            get_row(s, dossier_code, for_update=True).flow_run_id = run
        return run

    def view(self, flow_run_id: str) -> RunView:
        self._check()
        key = self.paused.get(flow_run_id)
        final = flow_run_id in self.final
        return RunView("COMPLETED" if final else "PAUSED" if key else "RUNNING", key, final)

    def resume(self, flow_run_id: str, run_input: dict[str, Any]) -> None:
        self._check()
        assert self.paused.get(flow_run_id)
        self.paused[flow_run_id] = None
        self.inputs.append((flow_run_id, run_input))


def inbox() -> list[InboxRow]:
    with session_scope() as s:
        return list(s.execute(select(InboxRow).order_by(InboxRow.id)).scalars())


def test_each_accepted_dossier_starts_one_run_and_waits_out_an_orchestrator_outage(gateway):
    portal = Signed(gateway)
    codes = [portal.post("/v1/dossiers", submission_json(i)).json()["dossier_code"] for i in range(3)]
    orch = Orchestrator()
    orch.up = False
    clock = [0.0]
    down = Relay(orch, workers=1, now=lambda: clock[0])
    report = down.run_once()
    # The first row finds the orchestrator unreachable: the pass stops there, the other rows
    # are neither tried nor charged an attempt (they would fail the same way).
    assert report.unavailable and report.failed == 1 and not report.started and orch.calls == 1
    rows = inbox()
    assert all(r.state == "pending" for r in rows)
    assert [r.attempts for r in rows] == [1, 0, 0] and "ConnectError" in (rows[0].last_error or "")
    assert down.run_once().unavailable and orch.calls == 1  # paused: not even probed
    clock[0] = 0.3  # the first pause (0.25 s) is over
    assert down.run_once().failed == 1 and orch.calls == 2  # one probe, then a pause twice as long
    clock[0] = 0.7
    assert down.run_once().failed == 0 and orch.calls == 2

    orch.up = True
    clock[0] = 0.9
    report = down.run_once()  # the API is back: every row goes at once, oldest first
    assert report.started == codes and not report.unavailable
    rows = inbox()
    assert all(r.state == "done" and r.flow_run_id == orch.runs[r.dossier_code] for r in rows)
    assert Relay(orch).run_once().started == []  # nothing is started twice
    with session_scope() as s:
        assert {d.code: d.flow_run_id for d in s.execute(select(DossierRow)).scalars()} == orch.runs


class BusyNow(Orchestrator):
    """Serves, but every third start is answered 'busy' (a 503, as a SQLite Prefect does)."""

    def __init__(self) -> None:
        super().__init__()
        self.starts = 0

    def start(self, dossier_code: str) -> str:
        self.starts += 1
        if self.starts % 3 == 0:
            raise OrchestratorUnavailable("HTTP 503")
        return super().start(dossier_code)


def test_a_busy_answer_amid_service_pauses_briefly_not_longer_each_time(gateway):
    portal = Signed(gateway)
    codes = [portal.post("/v1/dossiers", submission_json(70 + i)).json()["dossier_code"] for i in range(7)]
    orch = BusyNow()
    clock = [0.0]
    relay = Relay(orch, workers=1, now=lambda: clock[0])
    started: list[str] = []
    for _ in range(3):  # two started, then a 503: paused for the first pause (0.25 s) only
        report = relay.run_once()
        assert len(report.started) == 2 and report.unavailable
        started += report.started
        clock[0] += 0.3
    report = relay.run_once()
    assert not report.unavailable
    assert sorted(started + report.started) == sorted(codes)


def test_rows_are_relayed_several_at_once_each_exactly_once_and_an_outage_stops_the_rest(gateway):
    portal = Signed(gateway)
    codes = [portal.post("/v1/dossiers", submission_json(50 + i)).json()["dossier_code"] for i in range(12)]
    orch = Orchestrator()
    orch.up = False
    relay = Relay(orch, workers=4, now=lambda: 0.0)
    report = relay.run_once()
    # At most the rows already begun by the four workers found it down; the rest were left alone.
    assert report.unavailable and 1 <= report.failed == orch.calls <= 4
    assert sum(r.attempts for r in inbox()) == report.failed
    orch.up, orch.latency = True, 0.05
    report = Relay(orch, workers=4).run_once()
    assert sorted(report.started) == sorted(codes) and not report.failed
    assert 1 < orch.most_in_flight <= 4
    rows = inbox()
    assert all(r.state == "done" and r.flow_run_id == orch.runs[r.dossier_code] for r in rows)
    assert len(set(orch.runs.values())) == len(codes)


def test_a_row_that_fails_on_its_own_backs_off_alone_and_the_others_go_on(gateway):
    portal = Signed(gateway)
    codes = [portal.post("/v1/dossiers", submission_json(20 + i)).json()["dossier_code"] for i in range(3)]
    orch = Orchestrator()
    orch.broken.add(codes[0])
    clock = [0.0]
    relay = Relay(orch, now=lambda: clock[0])
    report = relay.run_once()
    assert sorted(report.started) == codes[1:] and report.failed == 1 and not report.unavailable
    first = inbox()[0]
    assert first.state == "pending" and first.attempts == 1 and "LookupError" in (first.last_error or "")
    assert relay.run_once().failed == 0  # that row backs off (2 s after its first failure)
    orch.broken.clear()
    clock[0] = 2.5
    assert relay.run_once().started == codes[:1]
    assert {r.state for r in inbox()} == {"done"}


def test_a_supplement_waits_until_the_run_is_suspended_for_it_then_resumes_it_once(gateway):
    portal = Signed(gateway)
    code = portal.post("/v1/dossiers", submission_json(5)).json()["dossier_code"]
    orch = Orchestrator()
    relay = Relay(orch, now=lambda: 0.0)
    relay.run_once()
    request_supplement(code, LINES, 1)
    body = {"fields": {"birth_certificate.child_sex": "female"}}
    assert portal.post(f"/v1/dossiers/{code}/supplement", body).status_code == 202

    report = Relay(orch).run_once()  # the run has not suspended yet
    assert report.waiting == 1 and not report.resumed and inbox()[-1].state == "pending"
    run = orch.runs[code]
    orch.paused[run] = "review-GCS-0"  # suspended for something else: still waiting
    assert Relay(orch).run_once().waiting == 1
    orch.paused[run] = "supplement-1"
    report = Relay(orch).run_once()
    assert report.resumed == [f"{code} supplement-1"]
    assert orch.inputs == [(run, {"fields": {"birth_certificate.child_sex": "female"}, "components": []})]
    assert inbox()[-1].state == "done" and inbox()[-1].flow_run_id == run
    assert Relay(orch).run_once().resumed == []


def test_a_supplement_already_taken_in_or_outlived_by_its_run_is_closed_not_retried(gateway):
    portal = Signed(gateway)
    a, b = (portal.post("/v1/dossiers", submission_json(i)).json()["dossier_code"] for i in (6, 7))
    orch = Orchestrator()
    Relay(orch).run_once()
    for code in (a, b):
        request_supplement(code, LINES, 1)
        assert portal.post(f"/v1/dossiers/{code}/supplement", {"note": "ok"}).status_code == 202
    supplement_received(a, 1)  # e.g. resumed from the UI by an operator
    orch.final.add(orch.runs[b])  # e.g. cancelled
    report = Relay(orch).run_once()
    assert report.closed == 2 and not report.resumed
    states = {r.dossier_code: r.state for r in inbox() if r.kind == "supplement"}
    assert states == {a: "done", b: "skipped"}


def test_an_agency_result_resumes_the_run_waiting_on_that_step(gateway):
    code = Signed(gateway).post("/v1/dossiers", submission_json(8)).json()["dossier_code"]
    orch = Orchestrator()
    Relay(orch).run_once()
    ref = add_step(code, "CONG_AN_XA")
    result = {"state": "done", "result": {"residence_notice": {"so_thong_bao": "TB-7"}}}
    assert Signed(gateway, "CONG_AN_XA").post(f"/v1/steps/{ref}/result", result).status_code == 202
    assert Relay(orch).run_once().waiting == 1
    other = uuid.uuid4().hex  # a run waiting for a wave of steps waits for each of them
    orch.paused[orch.runs[code]] = f"agency-{other}"
    assert Relay(orch).run_once().waiting == 1
    wave = agency_wait_key([other, ref])
    orch.paused[orch.runs[code]] = wave
    report = Relay(orch).run_once()
    assert report.resumed == [f"{code} {wave}"]
    assert orch.inputs[-1][1] == {**result, "step_ref": ref}  # the form names the step it answers


def test_a_wave_key_names_each_of_its_steps_and_no_other() -> None:
    a, b, c = (uuid.uuid4().hex for _ in range(3))
    wave = agency_wait_key([b, a])
    assert wave == agency_wait_key([a, b]) and agency_wait_key([a]) == f"agency-{a}"
    assert waits_for_step(wave, a) and waits_for_step(wave, b) and not waits_for_step(wave, c)
    assert not waits_for_step(f"approval-{a}", a) and not waits_for_step(None, a)
    assert not waits_for_step(wave, a[:8])


def test_a_batch_that_fails_as_a_whole_is_redone_one_request_at_a_time(db):
    """Group commit: one bad request must not cost the others their dossier."""
    import json
    import threading
    import time

    from lienthong.gateway.dossiers import DossierBatcher, dossier_work
    from lienthong.gateway.errors import NotFound
    from lienthong.gateway.inbox import Delivery
    from lienthong.gateway.signing import body_digest
    from lienthong.gateway.views import status_path
    from lienthong.payloads import Submission

    batcher = DossierBatcher(max_batch=8, threads=1)
    hold = threading.Event()

    def blocker(s):  # type: ignore[no-untyped-def]
        hold.wait(30)  # keeps the batch thread busy until the three below are queued together
        raise NotFound("nothing", code="dossier_not_found")

    def broken(s):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug in one request")

    first_batch = batcher.submit(Delivery("DVCQG", "nonce-block", "k", "dossier", "/", ""), blocker)
    while batcher._queue.qsize():  # the thread has taken the blocker
        time.sleep(0.01)
    futures = []
    for i in range(3):
        body = submission_json(40 + i)
        d = Delivery("DVCQG", f"nonce-batch-{i}", f"key-{i}", "dossier", "/v1/dossiers", body_digest(body))
        work = (
            broken
            if i == 1
            else dossier_work(d, Submission.model_validate(json.loads(body)), status_path)
        )
        futures.append(batcher.submit(d, work))
    assert batcher._queue.qsize() == 3
    hold.set()
    assert isinstance(first_batch.exception(timeout=30), NotFound)
    first, second, third = (f.exception(timeout=30) or f.result() for f in futures)
    assert isinstance(second, RuntimeError)
    assert first.status == third.status == 202
    with session_scope() as s:
        codes = set(s.execute(select(DossierRow.code)).scalars())
    assert codes == {first.body["dossier_code"], third.body["dossier_code"]}
