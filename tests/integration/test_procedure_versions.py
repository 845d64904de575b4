"""A dossier follows the version of its procedure in force on its reception date, and its timeline
says which (issue 16 §2; Decree 301/2026 from 01/09/2026, Civil Status Law 03/2026 from 01/03/2027)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from lienthong.agencies.client import HttpAgencyClient
from lienthong.clock import FixedClock, set_clock
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, StepRow
from lienthong.dossier import Status
from lienthong.reception import receive
from lienthong.routing import Routing
from lienthong.timeline import timeline_markdown
from samples.dossiers import make_submission

pytestmark = pytest.mark.integration


def _run(url: str, at: datetime, procedure: str, seed: int, code_sent: str | None = None) -> str:
    clock = FixedClock(at + timedelta(hours=1))
    set_clock(clock)
    try:
        sub = make_submission(procedure, random.Random(seed), at)
        if code_sent:
            sub = sub.model_copy(update={"procedure_code": code_sent})
        code = receive(sub).dossier_code
        routing = Routing(client=HttpAgencyClient(url), clock=clock, poll_seconds=0.0, sleep=lambda s: None)
        routing.begin(code)
        outcomes = [routing.run_step(code, s.id) for s in routing.plan(code).steps]
        assert routing.finish(code, outcomes) == Status.RETURNED
        return code
    finally:
        set_clock(None)


def _steps(code: str) -> set[str]:
    with session_scope() as s:
        row = s.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one()
        return set(s.execute(select(StepRow.step_key).where(StepRow.dossier_id == row.id)).scalars())


def test_group_1_received_31_august_follows_the_old_version_and_1_september_the_new(db, agency_sim):
    url, _ = agency_sim
    old = _run(url, datetime.fromisoformat("2026-08-31T09:00:00+07:00"), "lien-thong-khai-sinh", 1)
    new = _run(url, datetime.fromisoformat("2026-09-01T09:00:00+07:00"), "lien-thong-khai-sinh", 2)
    assert _steps(old) == {"khai_sinh", "thuong_tru", "bhyt"}
    assert _steps(new) == {"khai_sinh", "thuong_tru", "bhyt", "can_cuoc"}
    with session_scope() as s:
        codes = dict(s.execute(select(DossierRow.code, DossierRow.procedure_code)).all())
    assert codes[old] == "2.002621" and codes[new] == "3.000722"
    old_md, new_md = timeline_markdown(old), timeline_markdown(new)
    assert "phiên bản 2024-06-10" in old_md and "31/08/2026" in old_md
    assert "phiên bản 2026-09-01" in new_md and "hiệu lực 01/09/2026" in new_md
    assert "Cấp thẻ căn cước cho trẻ em dưới 6 tuổi" in new_md
    assert "Cấp thẻ căn cước" not in old_md


def test_an_old_code_sent_after_the_change_follows_the_version_in_force(db, agency_sim):
    # A portal that still sends group 1's old code on 02/09/2026: the dossier is received under
    # the new version (its code and steps), not refused and not run under repealed rules.
    url, _ = agency_sim
    code = _run(url, datetime.fromisoformat("2026-09-02T09:00:00+07:00"), "lien-thong-khai-sinh", 3,
                code_sent="2.002621")
    assert "can_cuoc" in _steps(code)
    with session_scope() as s:
        row = s.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one()
    assert (row.procedure_code, row.procedure_version) == ("3.000722", "2026-09-01")


def test_group_2_from_1_march_2027_returns_the_death_certificate_signed_by_the_chairman(db, agency_sim):
    url, _ = agency_sim
    before = _run(url, datetime.fromisoformat("2027-02-26T09:00:00+07:00"), "lien-thong-khai-tu", 4)
    after = _run(url, datetime.fromisoformat("2027-03-01T09:00:00+07:00"), "lien-thong-khai-tu", 5)
    with session_scope() as s:
        rows = {r.code: r for r in s.execute(select(DossierRow)).scalars()}
    assert rows[before].procedure_version == "2026-09-01" and rows[before].procedure_code == "2.002913"
    assert rows[after].procedure_version == "2027-03-01"
    assert "Luật Hộ tịch 03/2026/QH16" in timeline_markdown(after)
    assert "Luật Hộ tịch 03/2026/QH16" not in timeline_markdown(before)
