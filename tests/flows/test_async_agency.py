"""Asynchronous agencies end to end on a real Prefect server, the gateway and the simulator over
HTTP: the run suspends on agency-{ref} holding no worker (once for a wave of steps in parallel), the
simulator calls the gateway back signed as the agency, the relay resumes the run, and the dossier
completes."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import select

from flows.procedure import procedure
from infra.gateway_relay import relay_once
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, InboxRow, StepRow
from lienthong.dossier import Status
from lienthong.gateway.relay import agency_wait_key
from lienthong.routing import APPROVAL
from lienthong.settings import reset_settings
from lienthong.sweep import OPEN_STEP_STATUSES
from tests.conftest import until
from tests.flows.runs import execute, read_run, task_run_names
from tests.integration.gateway_helpers import (
    Signed,
    gateway_server,  # noqa: F401
    submission_json,
)

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("forget_runs")]


def steps() -> dict[str, StepRow]:
    with session_scope() as s:
        return {st.step_key: st for st in s.execute(select(StepRow)).scalars()}


@pytest.fixture
def async_agencies(gateway, agency_sim, monkeypatch):  # type: ignore[no-untyped-def]
    """Every agency of the birth registration answers asynchronously, calling this gateway back;
    the simulator holds each callback until the test releases it."""
    _, sim = agency_sim
    sim.switches.callback_delay_seconds = 3600
    sim.switches.callback_backoff_seconds = 0.05
    monkeypatch.setenv("LIENTHONG_AGENCY_MODES", json.dumps({"UBND_XA": "async", "CONG_AN_XA": "async",
                                                             "BHXH": "async"}))
    monkeypatch.setenv("LIENTHONG_CALLBACK_BASE_URL", gateway)
    reset_settings()
    procedure.to_deployment(name="lien-thong-khai-sinh").apply()
    return gateway, sim


def release(sim, n: int) -> None:  # type: ignore[no-untyped-def]
    """Let the agencies answer now, and wait until the gateway has taken ``n`` callbacks in all."""
    sim.release()
    until(lambda: sum(d["state"] == "delivered" for d in sim.deliveries().values()) == n, f"{n} callbacks",
          timeout=30.0, poll=0.05)


def test_the_run_waits_suspended_for_each_agency_and_the_callbacks_resume_it_to_the_end(async_agencies):
    gateway, sim = async_agencies
    portal = Signed(gateway)
    accepted = portal.post("/v1/dossiers", submission_json(41)).json()
    code = accepted["dossier_code"]
    assert relay_once().started == [code]
    with session_scope() as s:
        run_id = s.execute(select(DossierRow.flow_run_id)).scalar_one()

    # 1. Civil status has the dossier; the run waits for its callback, holding no worker.
    execute(run_id)
    run = read_run(run_id)
    ks = steps()["khai_sinh"]
    assert run.state.is_paused() and run.state.state_details.pause_key == f"agency-{ks.ref}"
    assert ks.status in OPEN_STEP_STATUSES and ks.ticket  # the deadline sweep sees it open
    due = ks.due_at
    assert set(steps()) == {"khai_sinh"}  # nothing downstream started

    release(sim, 1)
    assert relay_once().resumed == [f"{code} agency-{ks.ref}"]

    # 2. Resumed: civil status is done; police and social insurance get the dossier in parallel,
    #    and the run suspends once for both of them (one key for the wave, whichever answers first).
    execute(run_id)
    run = read_run(run_id)
    now = steps()
    assert now["khai_sinh"].status == "done" and now["khai_sinh"].due_at == due
    assert now["khai_sinh"].outputs[APPROVAL]["decisions"][0]["automatic"] is True
    wave = agency_wait_key([now["thuong_tru"].ref, now["bhyt"].ref])
    assert run.state.is_paused() and run.state.state_details.pause_key == wave
    assert now["thuong_tru"].ticket and now["bhyt"].ticket

    # 3. Both agencies answer: the relay resumes the run with the first, and the run picks the
    #    other's result up from the gateway's inbox instead of suspending for it.
    release(sim, 3)
    report = relay_once()
    assert report.resumed == [f"{code} {wave}"] and report.waiting == 1
    execute(run_id)
    run = read_run(run_id)
    assert run.state.is_completed()
    assert run.empirical_policy.pause_keys == {f"agency-{ks.ref}", wave}
    # Three executions, and none replays what an earlier one did: each step was handed over and
    # published once, and what was left was read once per execution.
    names = Counter(n.split(" [")[0] for n in task_run_names(run_id))
    handed = {n: c for n, c in names.items() if n.split(":")[0] in ("UBND_XA", "CONG_AN_XA", "BHXH")}
    assert len(handed) == 3 and set(handed.values()) == {1}, names
    assert sum(c for n, c in names.items() if n.startswith("vault: publish")) == 3, names
    assert names["dossier-progress"] == 3, names
    assert {k: st.status for k, st in steps().items()} == {"khai_sinh": "done", "thuong_tru": "done", "bhyt": "done"}
    assert portal.get(accepted["status_url"]).json()["status"] == Status.RETURNED

    # The callback the run did not wait for is closed by the relay, without resuming anything.
    report = relay_once()
    assert report.closed == 1 and not report.resumed
    with session_scope() as s:
        assert set(s.execute(select(InboxRow.state)).scalars()) == {"done"}

    # 4. A late callback after the re-runs does not close a step twice.
    before = {k: (st.status, st.finished_at, st.outputs) for k, st in steps().items()}
    late = Signed(gateway, agency="BHXH").post(f"/v1/steps/{now['bhyt'].ref}/result",
                                               {"state": "refused", "reason": "Trùng hồ sơ."})
    assert late.status_code == 409
    from tasks.procedure import routing

    assert routing().close_from_result(code, "bhyt", {"state": "refused", "reason": "Trùng hồ sơ."}).state == "done"
    assert {k: (st.status, st.finished_at, st.outputs) for k, st in steps().items()} == before


def test_a_result_the_catalog_does_not_allow_is_refused_at_the_gateway_and_by_the_flow(async_agencies):
    gateway, sim = async_agencies
    sim.switches.callbacks = False  # this agency's system is down; someone posts a broken result instead
    sim.switches.mode = "realistic"  # ...so that the step is still pending when submitted
    assert Signed(gateway).post("/v1/dossiers", submission_json(42)).status_code == 202
    relay_once()
    with session_scope() as s:
        run_id = s.execute(select(DossierRow.flow_run_id)).scalar_one()
    execute(run_id)
    ks = steps()["khai_sinh"]
    assert read_run(run_id).state.state_details.pause_key == f"agency-{ks.ref}"
    broken = {"state": "done", "result": {"so_giay": "123"}}
    r = Signed(gateway, agency="UBND_XA").post(f"/v1/steps/{ks.ref}/result", broken)
    # The gateway refuses it with the reasons, keeping the key unspent so the agency can resend...
    assert r.status_code == 422 and r.json()["error"] == "agency_result_invalid", r.text
    assert "so_giay" in r.text and "personal_id" in r.text
    assert relay_once().resumed == [] and read_run(run_id).state.state_details.pause_key == f"agency-{ks.ref}"
    # ...and the flow checks again what reaches it another way (an operator resuming the run by hand).
    from prefect.flow_runs import resume_flow_run

    resume_flow_run(run_id, run_input=broken)
    execute(run_id, check=False)  # the run fails, as it should
    run = read_run(run_id)
    assert run.state.is_failed() and "AgencyResultInvalid" in (run.state.message or ""), run.state.message
    assert steps()["khai_sinh"].status in OPEN_STEP_STATUSES  # the deadline sweep keeps watching it
