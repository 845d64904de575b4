"""Operator approval of a birth registration on a real Prefect server: the run suspends on
approval-{ref} with the typed form, and goes on from the answer (approve, refuse with reason,
request a supplement)."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import select

from flows.procedure import procedure, start_run
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, StepRow, SupplementRow
from lienthong.dossier import Status
from lienthong.reception import receive
from lienthong.routing import APPROVAL
from lienthong.settings import get_settings, reset_settings
from lienthong.sweep import OPEN_STEP_STATUSES
from samples.dossiers import make_submission
from tests.flows.runs import answer, execute, pause_key, read_run, timeline

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("forget_runs")]
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")
OFFICER = "Trần Thị Bích"


def steps() -> dict[str, StepRow]:
    with session_scope() as s:
        return {st.step_key: st for st in s.execute(select(StepRow)).scalars()}


def dossier() -> DossierRow:
    with session_scope() as s:
        return s.execute(select(DossierRow)).scalar_one()


@pytest.fixture
def paused(db, agency_sim, monkeypatch):  # type: ignore[no-untyped-def]
    """A birth registration whose run waits for the civil-status officer's signature."""
    monkeypatch.setenv("LIENTHONG_APPROVAL_POLICY", "operator")
    reset_settings()
    sub = make_submission("lien-thong-khai-sinh", random.Random(51), T)
    code = receive(sub).dossier_code
    procedure.to_deployment(name="lien-thong-khai-sinh").apply()
    run_id = start_run(code)
    execute(run_id)
    ks = steps()["khai_sinh"]
    assert pause_key(run_id) == f"approval-{ks.ref}"
    assert ks.status in OPEN_STEP_STATUSES and set(ks.outputs) == {"personal_id", "birth_extract", APPROVAL}
    assert set(steps()) == {"khai_sinh"}  # nothing downstream before the signature
    return code, run_id, ks.ref, sub


def test_approval_form_is_typed_and_described_in_vietnamese(paused):
    _, run_id, ref, _ = paused

    keyset = read_run(run_id).state.state_details.run_input_keyset

    async def schema() -> dict[str, Any]:
        import json

        async with get_client() as client:
            return json.loads(await client.read_flow_run_input(run_id, keyset["schema"]))

    props = asyncio.run(schema())["properties"]
    assert props["decision"]["enum"] == ["approve", "refuse", "supplement"]
    assert {"officer", "reason", "note"} <= set(props)
    assert "Họ tên" in props["officer"]["title"] and "lý do" in props["reason"]["title"].lower()
    # The decision keeps its Vietnamese title and explanation in the UI form (initial values would drop them).
    assert props["decision"]["title"] == "Quyết định" and props["decision"].get("description")


def test_approved_the_step_is_done_and_the_timeline_names_the_officer(paused):
    code, run_id, ref, _ = paused
    answer(run_id, decision="approve", officer=OFFICER, note="Đã ký số")
    assert read_run(run_id).state.is_completed()
    assert dossier().status == Status.RETURNED
    record = steps()["khai_sinh"].outputs[APPROVAL]
    (decision,) = record["decisions"]
    assert decision["decision"] == "approve" and decision["officer"] == OFFICER and not decision["automatic"]
    assert decision["key"] == f"approval-{ref}" and decision["at"]
    md = timeline(code)
    assert "## Phê duyệt" in md and OFFICER in md and "Đồng ý ký duyệt" in md


def test_refused_with_a_reason_the_dossier_stops_and_an_answer_without_reason_is_asked_again(paused):
    code, run_id, ref, sub = paused
    answer(run_id, decision="refuse", officer=OFFICER)  # no reason: cannot be sent to the citizen
    assert pause_key(run_id) == f"approval-{ref}-2"
    assert steps()["khai_sinh"].status in OPEN_STEP_STATUSES
    answer(run_id, decision="refuse", officer=OFFICER, reason="Giấy chứng sinh không do cơ sở y tế cấp.")
    assert read_run(run_id).state.is_completed()
    row = dossier()
    assert row.status == Status.STOPPED and "Giấy chứng sinh không do cơ sở y tế cấp." in (row.reason or "")
    assert {k: st.status for k, st in steps().items()} == {"khai_sinh": "refused"}
    assert list((get_settings().var_dir / "forms" / code).glob("*03*")), "the refusal notice (Form 03)"
    md = timeline(code)
    assert "Từ chối" in md and sub.child.full_name not in md


def test_a_requested_supplement_waits_for_the_citizen_then_the_officer_decides_again(paused):
    code, run_id, ref, _ = paused
    answer(run_id, decision="supplement", officer=OFFICER, reason="Bổ sung bản chụp rõ nét của giấy chứng sinh.")
    assert pause_key(run_id) == "supplement-1"
    row = dossier()
    assert row.status == Status.SUPPLEMENT_REQUESTED and row.clock_paused_at is not None
    with session_scope() as s:
        request = s.execute(select(SupplementRow)).scalar_one()
    assert request.phase == "processing" and request.items == ["Bổ sung bản chụp rõ nét của giấy chứng sinh."]

    answer(run_id, note="Đã nộp lại giấy chứng sinh.")  # the citizen's supplement (gateway or UI)
    assert pause_key(run_id) == f"approval-{ref}-2"
    assert dossier().status == Status.PROCESSING
    answer(run_id, decision="approve", officer=OFFICER)
    assert read_run(run_id).state.is_completed()
    assert dossier().status == Status.RETURNED
    decisions = steps()["khai_sinh"].outputs[APPROVAL]["decisions"]
    assert [d["decision"] for d in decisions] == ["supplement", "approve"]
