"""Review of a held scan on a real Prefect server. The run suspends on the component's review key
and, resumed, applies the operator's answer: it re-runs from the top, where nothing is left to
digitize, so the question must come from the database. A new scan handed in with a supplement at
approval is read (and, if held, reviewed) before the officer is asked again."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from flows.procedure import procedure, start_run
from lienthong.db import session_scope
from lienthong.db.models import ComponentRow, StepRow, SupplementRow
from lienthong.digitize.components import review_key
from lienthong.reception import receive
from lienthong.settings import get_settings, reset_settings
from samples.dossiers import make_submission
from samples.forms import birth_certificate
from tests.flows.runs import answer, execute, pause_key, read_run

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("forget_runs")]
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")
OFFICER = "Trần Thị Bích"
CLEAR, POOR = 1.0, 3.0  # degradation levels: read as is / held for review (seed 61, measured)


def scan(name: str, level: float, seed: int = 61) -> str:
    """A generated birth certificate scanned at ``level``, under the var directory; its file ref."""
    up: Path = get_settings().var_dir / "uploads"
    up.mkdir(parents=True, exist_ok=True)
    birth_certificate(seed, level=level).save(up / name)
    return f"uploads/{name}"


def received(gcs_ref: str) -> str:
    """A birth registration whose birth certificate (GCS) is a paper scan at ``gcs_ref``."""
    sub = make_submission("lien-thong-khai-sinh", random.Random(52), T)
    others = [c for c in sub.components if c.code != "GCS"]
    gcs = {"code": "GCS", "name": "Giấy chứng sinh", "file": gcs_ref, "paper": True}
    sub = sub.model_copy(update={"components": [*others, type(others[0]).model_validate(gcs)]})
    code = receive(sub).dossier_code
    procedure.to_deployment(name="lien-thong-khai-sinh").apply()
    return code


def gcs() -> ComponentRow:
    with session_scope() as s:
        return s.execute(select(ComponentRow).where(ComponentRow.code == "GCS")).scalar_one()


def test_a_resumed_run_applies_the_review_it_was_given(db, agency_sim):  # type: ignore[no-untyped-def]
    code = received(scan("gcs.jpg", POOR))
    run_id = start_run(code)
    execute(run_id)
    held = gcs()
    assert held.status == "needs_review"
    assert pause_key(run_id) == review_key(held.id, "uploads/gcs.jpg")

    answer(run_id, confirmed=True, fields={"so": "123/2026"}, note="Đã đối chiếu bản giấy.")
    reviewed = gcs()
    assert reviewed.status == "digitized" and reviewed.digitized
    review = reviewed.meta["digitize"]["review"]
    assert review["confirmed"] and review["corrected"] == ["so"]
    assert reviewed.meta["digitize"]["fields"]["so"]["value"] == "123/2026"
    assert not (pause_key(run_id) or "").startswith(("review-", "supplement-"))  # not asked again
    with session_scope() as s:
        assert s.execute(select(SupplementRow)).first() is None


def test_a_new_scan_given_at_approval_is_read_before_the_officer_decides_again(  # type: ignore[no-untyped-def]
        db, agency_sim, monkeypatch):
    monkeypatch.setenv("LIENTHONG_APPROVAL_POLICY", "operator")
    reset_settings()
    code = received(scan("gcs.jpg", CLEAR))
    run_id = start_run(code)
    execute(run_id)
    first = gcs()
    assert first.status == "digitized"
    with session_scope() as s:
        ref = s.execute(select(StepRow.ref).where(StepRow.step_key == "khai_sinh")).scalar_one()
    assert pause_key(run_id) == f"approval-{ref}"

    answer(run_id, decision="supplement", officer=OFFICER, reason="Nộp lại giấy chứng sinh có dấu giáp lai.")
    assert pause_key(run_id) == "supplement-1"
    new_ref = scan("gcs-2.jpg", POOR)
    answer(run_id, components=[{"code": "GCS", "name": "Giấy chứng sinh", "file": new_ref, "paper": True}])
    # The new file replaced the old one on the component, was read, and the gate held it.
    second = gcs()
    assert second.id == first.id and second.file_ref == new_ref and second.status == "needs_review"
    assert [r["file_ref"] for r in second.meta["replaced"]] == ["uploads/gcs.jpg"]
    assert second.meta["replaced"][0]["status"] == "digitized"
    assert pause_key(run_id) == review_key(second.id, new_ref)

    answer(run_id, confirmed=True, note="Đã đối chiếu bản giấy.")
    assert gcs().status == "digitized"
    assert pause_key(run_id) == f"approval-{ref}-2"
    answer(run_id, decision="approve", officer=OFFICER)
    assert not (pause_key(run_id) or "").startswith(("review-", "approval-"))
    assert not read_run(run_id).state.is_failed()
