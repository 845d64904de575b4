"""An operator approves (or refuses) a birth registration in the Prefect UI, in headless Chromium.

Real pieces end to end: `prefect server start` serving API and UI, the procedure deployment's run
started as a runner starts it (`python -m prefect.engine`), PostgreSQL, the agency simulator over
HTTP, and Debian's Chromium driven by Selenium through the UI's own pages and generated form.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State
from sqlalchemy import select

from flows.procedure import procedure, start_run
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, StepRow
from lienthong.dossier import Status
from lienthong.reception import receive
from lienthong.routing import APPROVAL
from lienthong.settings import reset_settings
from samples.dossiers import make_submission
from tasks.procedure import ApprovalInput
from tests.ui import prefect_ui as ui
from tests.ui.conftest import ROOT, PrefectServer

pytestmark = pytest.mark.ui
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")
PROCEDURE = "lien-thong-khai-sinh"
OFFICER = "Nguyễn Thị Hộ Tịch"


@pytest.fixture(autouse=True)
def operator_approval(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fixed office time and approvals by a person, in this process and in the runs it starts."""
    monkeypatch.setenv("LIENTHONG_CLOCK", "fixed:2026-03-10T10:00:00+07:00")
    monkeypatch.setenv("LIENTHONG_APPROVAL_POLICY", "operator")
    reset_settings()
    yield
    reset_settings()


def execute(server: PrefectServer, run_id: str) -> None:
    """Run (or continue) the flow run as a served runner would: a subprocess of the engine."""
    env = {**os.environ, **server.env, "PREFECT__FLOW_RUN_ID": run_id}
    done = subprocess.run([sys.executable, "-m", "prefect.engine"], env=env, cwd=ROOT, capture_output=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]


def state_of(run_id: str) -> State:
    async def read() -> State:
        async with get_client() as client:
            state = (await client.read_flow_run(run_id)).state
            assert state is not None
            return state

    return asyncio.run(read())


def wait_for(run_id: str, done: Any, what: str, timeout: float = 120.0) -> State:
    """Poll the API until the run's state satisfies ``done``."""
    deadline = time.monotonic() + timeout
    state = state_of(run_id)
    while not done(state):
        assert time.monotonic() < deadline, f"run {run_id} never became {what}: still {state.name}"
        time.sleep(0.5)
        state = state_of(run_id)
    return state


def suspended_birth_registration(server: PrefectServer, seed: int) -> tuple[str, str]:
    """A valid birth registration started through its deployment, run until the civil-status
    officer's approval suspends it. Returns (dossier code, flow run id)."""
    code = receive(make_submission(PROCEDURE, random.Random(seed), T)).dossier_code
    procedure.to_deployment(name=PROCEDURE).apply()
    run_id = start_run(code)
    execute(server, run_id)
    state = wait_for(run_id, lambda s: s.is_paused(), "suspended")
    assert state.name == "Suspended", state
    with session_scope() as s:
        assert s.execute(select(DossierRow.status)).scalar_one() == Status.PROCESSING
        held = s.execute(select(StepRow).where(StepRow.step_key == "khai_sinh")).scalar_one()
        assert held.status not in ("done", "refused") and APPROVAL in (held.outputs or {})
    return code, run_id


def decide_in_the_ui(driver: Any, server: PrefectServer, code: str, run_id: str, values: dict[str, str]) -> None:
    """The operator's path: the runs list, the dossier's run, Resume, the generated form, Submit."""
    name = f"{PROCEDURE} · {code}"
    ui.open_run_from_list(driver, server.url, name, search=code)
    assert ui.run_state_badge(driver) == "Suspended"
    form = ui.open_resume_form(driver)
    assert code in ui.form_text(form)  # the prompt names the dossier the officer signs
    ui.fill_and_submit(driver, form, approval_form_schema(run_id), values)


def approval_form_schema(run_id: str) -> dict[str, Any]:
    """The JSON schema the suspended run stored for its form, as the UI reads it (the paused
    state's input keyset): the officer's approval of the civil-status step, ``approval-{ref}``."""
    state = state_of(run_id)
    assert state.state_details.pause_key == f"approval-{khai_sinh().ref}", state.state_details
    keyset = state.state_details.run_input_keyset or {}

    async def read() -> str:
        async with get_client() as client:
            return await client.read_flow_run_input(UUID(run_id), keyset["schema"])

    schema = json.loads(asyncio.run(read()))
    assert set(ApprovalInput.model_fields) <= set(schema["properties"]), schema
    return schema


def khai_sinh() -> StepRow:
    with session_scope() as s:
        return s.execute(select(StepRow).where(StepRow.step_key == "khai_sinh")).scalar_one()


def test_operator_approves_a_birth_registration_in_the_prefect_ui(prefect_ui, browser, db, agency_sim):
    code, run_id = suspended_birth_registration(prefect_ui, seed=61)

    decide_in_the_ui(browser, prefect_ui, code, run_id, {"decision": "approve", "officer": OFFICER})

    # The UI's answer resumed the run (Suspended -> Resuming); a runner continues it to the end.
    wait_for(run_id, lambda s: not s.is_paused(), "resumed")
    execute(prefect_ui, run_id)
    assert wait_for(run_id, lambda s: s.is_final(), "finished").is_completed()
    with session_scope() as s:
        assert s.execute(select(DossierRow.status)).scalar_one() == Status.RETURNED
        steps = dict(s.execute(select(StepRow.step_key, StepRow.status)).all())
    assert steps == {"khai_sinh": "done", "thuong_tru": "done", "bhyt": "done"}
    decisions = khai_sinh().outputs[APPROVAL]["decisions"]
    assert [(d["decision"], d["officer"], d["automatic"]) for d in decisions] == [("approve", OFFICER, False)]
    assert decisions[0]["key"] == f"approval-{khai_sinh().ref}"


def test_operator_refuses_in_the_prefect_ui_and_the_dossier_stops(prefect_ui, browser, db, agency_sim):
    code, run_id = suspended_birth_registration(prefect_ui, seed=62)
    reason = "Giấy chứng sinh không khớp với sổ theo dõi của cơ sở y tế"

    decide_in_the_ui(browser, prefect_ui, code, run_id, {"decision": "refuse", "officer": OFFICER, "reason": reason})

    wait_for(run_id, lambda s: not s.is_paused(), "resumed")
    execute(prefect_ui, run_id)
    assert wait_for(run_id, lambda s: s.is_final(), "finished").is_completed()
    with session_scope() as s:
        assert s.execute(select(DossierRow.status)).scalar_one() == Status.STOPPED
        steps = dict(s.execute(select(StepRow.step_key, StepRow.status)).all())
    assert steps["khai_sinh"] == "refused" and {steps.get("thuong_tru"), steps.get("bhyt")} <= {"skipped", None}
    step = khai_sinh()
    assert reason in (step.error or "")
    assert [(d["decision"], d["officer"], d["reason"]) for d in step.outputs[APPROVAL]["decisions"]] == [
        ("refuse", OFFICER, reason)]
