"""The generic procedure flow on a real Prefect server, PostgreSQL and the agency simulator."""

import random
from datetime import datetime

import pytest
from sqlalchemy import select

from flows.procedure import procedure, start_run
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, StepRow
from lienthong.dossier import Status
from lienthong.reception import receive
from samples.dossiers import make_submission
from tests.flows.runs import execute, read_run, timeline

pytestmark = pytest.mark.flows
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")


@pytest.mark.parametrize("procedure_id,options,steps", [
    ("lien-thong-khai-sinh", None, {"khai_sinh", "thuong_tru", "bhyt"}),
    ("lien-thong-khai-tu", {"procedures": 4, "funeral_body": "bhxh"},
     {"khai_tu", "xoa_thuong_tru", "mai_tang_bhxh", "tu_tuat"}),
    ("chuyen-nhuong-dat", None, {"tham_dinh", "xac_dinh_thue", "nop_thue", "cap_giay"}),
])
def test_one_dossier_of_each_procedure_runs_to_a_terminal_state(db, agency_sim, procedure_id, options, steps):
    code = receive(make_submission(procedure_id, random.Random(11), T, options=options)).dossier_code
    result = procedure(dossier_code=code)
    assert result["status"] == Status.RETURNED
    assert set(result["steps"]) == steps and set(result["steps"].values()) == {"done"}
    with session_scope() as s:
        row = s.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one()
        assert row.status == Status.RETURNED and row.finished_at and row.delivered_at
        assert {st.step_key for st in s.execute(select(StepRow)).scalars()} == steps


def test_a_refused_step_ends_the_run_with_the_dossier_stopped(db, agency_sim):
    _, sim = agency_sim
    sim.switches.refusal_rate = 1.0
    code = receive(make_submission("lien-thong-khai-sinh", random.Random(12), T)).dossier_code
    result = procedure(dossier_code=code)
    assert result["status"] == Status.STOPPED
    assert result["steps"] == {"khai_sinh": "refused", "thuong_tru": "skipped", "bhyt": "skipped"}


def test_an_agency_outage_is_retried_until_the_step_goes_through(db, agency_sim):
    _, sim = agency_sim
    sim.switches.fail_next = 3  # the next three calls answer 503
    code = receive(make_submission("lien-thong-khai-tu", random.Random(13), T,
                                   options={"procedures": 2})).dossier_code
    assert procedure(dossier_code=code)["status"] == Status.RETURNED


def test_timeline_artifact_shows_steps_and_verdicts_without_personal_data(db, agency_sim):
    sub = make_submission("lien-thong-khai-sinh", random.Random(14), T)
    code = receive(sub).dossier_code
    procedure(dossier_code=code)
    md = timeline(code)
    assert code in md and "UBND_XA" in md and "Đúng hạn" in md
    assert sub.child.full_name not in md and sub.applicant.citizen_id not in md


def test_deployment_run_is_named_after_procedure_and_dossier(db, agency_sim):
    code = receive(make_submission("chuyen-nhuong-dat", random.Random(15), T)).dossier_code
    procedure.to_deployment(name="chuyen-nhuong-dat").apply()
    run_id = start_run(code)
    assert start_run(code) == run_id  # a redelivered start never makes a second run
    # Started as a runner starts it: a subprocess loading the deployment's entrypoint.
    execute(run_id)
    finished = read_run(run_id)
    assert finished.state.is_completed()
    assert finished.name == f"chuyen-nhuong-dat · {code}"
    with session_scope() as s:
        assert s.execute(select(DossierRow.status)).scalar_one() == Status.RETURNED
