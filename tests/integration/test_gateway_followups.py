"""After the dossier: the citizen's supplement, agencies' step results, the sender's view."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest
from sqlalchemy import select

from lienthong.calendar import TimeLimit, get_calendar
from lienthong.db import session_scope
from lienthong.db.models import InboxRow, StepRow
from lienthong.db.store import close_step, get_row, open_step
from lienthong.gateway.views import stored_step_result
from lienthong.supplement import request_supplement
from samples.dossiers import make_submission
from tests.integration.gateway_helpers import (
    Signed,
    gateway_server,  # noqa: F401
    submission_json,
)

T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")
LINES = ["Giấy chứng sinh: giới tính của trẻ không khớp với tờ khai (CCCD 079203001234)."]


def submit(url: str, seed: int = 1, agency: str = "DVCQG") -> str:
    r = Signed(url, agency).post("/v1/dossiers", submission_json(seed))
    assert r.status_code == 202, r.text
    return str(r.json()["dossier_code"])


def add_step(code: str, agency: str = "CONG_AN_XA") -> str:
    with session_scope() as s:
        row = get_row(s, code)
        step = open_step(
            s,
            row,
            step_key="thuong_tru",  # the birth registration's residence step (lien-thong-khai-sinh)
            agency=agency,
            action="Đăng ký thường trú",
            kind="agency",
            limit=TimeLimit(2),
            at=T,
            calendar=get_calendar(),
            givers=[],
        )
        return step.ref


def test_the_status_url_shows_the_request_for_supplement_with_personal_data_masked(gateway):
    sub = make_submission("lien-thong-khai-sinh", random.Random(3), T)
    r = Signed(gateway).post("/v1/dossiers", sub.model_dump_json().encode())
    code = r.json()["dossier_code"]
    view = Signed(gateway).get(r.json()["status_url"]).json()
    assert (
        view["status"] == 2 and view["supplement_request"] is None and view["run_started"] is False
    )
    assert sub.child.full_name not in json.dumps(view, ensure_ascii=False)
    assert view["owner"].startswith(sub.child.full_name[0]) and "*" in view["owner"]

    assert request_supplement(code, LINES, 1) == "requested"
    view = Signed(gateway).get(f"/v1/dossiers/{code}").json()
    assert view["status"] == 5 and view["status_label"]
    request = view["supplement_request"]
    assert request["round"] == 1 and len(request["lines"]) == 1
    assert "giới tính" in request["lines"][0] and "079203001234" not in request["lines"][0]
    missing = Signed(gateway).get("/v1/dossiers/000.00.06.H56-260310-9999")
    assert missing.status_code == 404 and missing.json()["error"] == "dossier_not_found"


def test_a_supplement_is_accepted_only_while_one_is_requested_and_only_once_per_round(gateway):
    code = submit(gateway, 4)
    portal = Signed(gateway)
    body = {"fields": {"birth_certificate.child_sex": "female"}, "note": "đã sửa"}
    early = portal.post(f"/v1/dossiers/{code}/supplement", body)
    assert early.status_code == 409 and early.json()["error"] == "supplement_not_requested"
    request_supplement(code, LINES, 1)
    ok = portal.post(f"/v1/dossiers/{code}/supplement", body, key="sup-1")
    assert ok.status_code == 202 and ok.json()["round"] == 1 and ok.json()["kind"] == "supplement"
    assert portal.post(f"/v1/dossiers/{code}/supplement", body, key="sup-1").json() == ok.json()
    second = portal.post(f"/v1/dossiers/{code}/supplement", body, key="sup-2")
    assert second.status_code == 409 and second.json()["error"] == "supplement_already_received"
    with session_scope() as s:
        row = s.execute(select(InboxRow).where(InboxRow.kind == "supplement")).scalar_one()
    assert row.payload["run_input"] == {
        "fields": {"birth_certificate.child_sex": "female"},
        "components": [],
        "note": "đã sửa",
    }


def test_only_the_dossiers_sender_may_supplement_it_and_unknown_dossiers_are_not_found(gateway):
    code = submit(gateway, 5)
    request_supplement(code, LINES, 1)
    r = Signed(gateway, "BHXH").post(f"/v1/dossiers/{code}/supplement", {"note": "x"})
    assert r.status_code == 403 and r.json()["error"] == "not_dossier_sender"
    r = Signed(gateway).post("/v1/dossiers/000.00.06.H56-260310-9999/supplement", {"note": "x"})
    assert r.status_code == 404
    bad = Signed(gateway).post(f"/v1/dossiers/{code}/supplement", {"fields": "child.sex=female"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["fields"]


def test_an_agency_returns_the_result_of_its_own_step_and_it_is_kept_for_the_flow(gateway):
    code = submit(gateway, 6)
    ref = add_step(code, "CONG_AN_XA")
    result = {"state": "done", "result": {"residence_notice": {"so_thong_bao": "TB-0001"}}}
    r = Signed(gateway, "CONG_AN_XA").post(f"/v1/steps/{ref}/result", result, key="res-1")
    assert r.status_code == 202 and r.json()["step_id"] == ref and r.json()["dossier_code"] == code
    stored = stored_step_result(ref)
    assert stored is not None and stored["state"] == "done" and stored["result"] == result["result"]
    again = Signed(gateway, "CONG_AN_XA").post(f"/v1/steps/{ref}/result", result, key="res-2")
    assert again.status_code == 409 and again.json()["error"] == "step_result_already_received"


def test_an_agency_that_is_not_part_of_the_step_is_forbidden(gateway):
    code = submit(gateway, 7)
    ref = add_step(code, "CONG_AN_XA")
    result = {"state": "done", "result": {}}
    r = Signed(gateway, "BHXH").post(f"/v1/steps/{ref}/result", result)
    assert r.status_code == 403 and r.json()["error"] == "agency_not_on_step"
    assert Signed(gateway, "CONG_AN_XA").post("/v1/steps/nope/result", result).status_code == 404
    refusal = Signed(gateway, "CONG_AN_XA").post(f"/v1/steps/{ref}/result", {"state": "refused"})
    assert refusal.status_code == 422  # a refusal states its reason
    assert stored_step_result(ref) is None


def test_a_result_for_a_step_already_closed_is_a_conflict(gateway):
    code = submit(gateway, 8)
    ref = add_step(code, "CONG_AN_XA")
    with session_scope() as s:
        step = s.execute(select(StepRow).where(StepRow.ref == ref)).scalar_one()
        close_step(s, step, status="done", at=T, calendar=get_calendar(), outputs={})
    r = Signed(gateway, "CONG_AN_XA").post(f"/v1/steps/{ref}/result", {"state": "done"})
    assert r.status_code == 409 and r.json()["error"] == "step_closed"


@pytest.mark.parametrize("path", ["/v1/nothing", "/v1/steps"])
def test_unknown_routes_answer_typed_json(gateway, path):
    r = Signed(gateway).post(path, {})
    assert r.status_code in (404, 405) and r.json()["error"] in ("not_found", "method_not_allowed")


def test_a_result_the_catalog_cannot_use_is_refused_with_its_reasons_and_nothing_is_stored(gateway):
    code = submit(gateway, 8)
    ref = add_step(code, "CONG_AN_XA")
    broken = {"state": "done", "result": {"so_giay": "123"}}
    r = Signed(gateway, "CONG_AN_XA").post(f"/v1/steps/{ref}/result", broken, key="res-broken")
    body = r.json()
    assert r.status_code == 422 and body["error"] == "agency_result_invalid"
    assert any("so_giay" in e["msg"] for e in body["errors"])
    assert any("residence_notice" in e["msg"] for e in body["errors"])
    assert "không hợp lệ" in body["message_vi"] and stored_step_result(ref) is None
    fixed = {"state": "done", "result": {"residence_notice": {"so_thong_bao": "TB-0002"}}}
    again = Signed(gateway, "CONG_AN_XA").post(f"/v1/steps/{ref}/result", fixed, key="res-broken")
    assert again.status_code == 202  # a refused request spends neither its key nor the step
