"""A dossier that breaks the law's rules: one complete request for supplement (Form 02), the run
suspended without holding a worker, and resumed by the citizen's supplement."""

import random
from datetime import datetime

import pytest
from prefect.flow_runs import resume_flow_run
from sqlalchemy import select

from flows.procedure import procedure, start_run
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, StatusHistory, StepRow, SupplementRow
from lienthong.dossier import Status
from lienthong.reception import receive
from lienthong.settings import get_settings
from samples.dossiers import make_submission
from tests.flows.runs import execute, read_run

pytestmark = pytest.mark.flows
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")


def dossier() -> DossierRow:
    with session_scope() as s:
        return s.execute(select(DossierRow)).scalar_one()


def test_invalid_dossier_waits_suspended_for_the_supplement_then_runs_to_the_end(db, agency_sim):
    sub = make_submission("lien-thong-khai-sinh", random.Random(21), T, defects=["child_sex_mismatch"])
    code = receive(sub).dossier_code
    procedure.to_deployment(name="lien-thong-khai-sinh").apply()
    run_id = start_run(code)
    execute(run_id)

    state = read_run(run_id).state
    assert state.is_paused() and state.name == "Suspended"
    row = dossier()
    assert row.status == Status.SUPPLEMENT_REQUESTED and row.clock_paused_at is not None
    with session_scope() as s:
        request = s.execute(select(SupplementRow)).scalar_one()
        assert not s.execute(select(StepRow)).first()  # no agency saw the invalid dossier
    assert any("giới tính" in line.lower() for line in request.items), request.items
    assert (get_settings().var_dir / "forms" / code).glob("*02*")

    # The citizen corrects the certificate's sex; the run resumes from its stored input.
    resume_flow_run(run_id, run_input={"fields": {"birth_certificate.child_sex": sub.child.sex}})
    execute(run_id)
    assert read_run(run_id).state.is_completed()
    row = dossier()
    assert row.status == Status.RETURNED
    with session_scope() as s:
        path = s.execute(select(StatusHistory.to_status).order_by(StatusHistory.id)).scalars().all()
        request = s.execute(select(SupplementRow)).scalar_one()
    assert path[:4] == [1, 2, 5, 2] and path[-1] == 10
    assert request.completed_at is not None
    # The clock restarted from zero when the complete dossier arrived.
    assert row.clock_started_at == request.completed_at


def test_a_second_failure_after_the_supplement_is_a_second_request_during_appraisal(db, agency_sim):
    sub = make_submission("lien-thong-khai-sinh", random.Random(22), T, defects=["mother_name_mismatch"])
    code = receive(sub).dossier_code
    procedure.to_deployment(name="lien-thong-khai-sinh").apply()
    run_id = start_run(code)
    execute(run_id)
    resume_flow_run(run_id, run_input={"note": "đã nộp lại"})  # supplies nothing that fixes it
    execute(run_id)
    assert read_run(run_id).state.is_paused()
    with session_scope() as s:
        phases = s.execute(select(SupplementRow.phase).order_by(SupplementRow.id)).scalars().all()
    assert phases == ["reception", "processing"] and dossier().status == Status.SUPPLEMENT_REQUESTED
