"""Personal data is masked by default: after dossiers of every procedure have run, no synthetic
citizen's full ID number or full name appears in any Prefect log or artifact."""

import random
from datetime import datetime

import pytest
from prefect import flow, get_run_logger
from sqlalchemy import select

from flows.procedure import procedure
from lienthong.db import session_scope
from lienthong.db.models import StepRow
from lienthong.reception import receive
from samples.dossiers import make_submission
from tests.conftest import prefect_texts

pytestmark = pytest.mark.flows
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")


def personal_values(sub) -> set[str]:  # type: ignore[no-untyped-def]
    people = [sub.applicant, sub.mother, sub.father, sub.deceased, sub.transferor, sub.transferee, sub.child]
    values = set()
    for p in people:
        if p is None:
            continue
        values.add(p.full_name)
        if getattr(p, "citizen_id", None):
            values.add(p.citizen_id)
    return values


def test_no_full_id_or_name_reaches_prefect_logs_or_artifacts(db, agency_sim):
    secrets: set[str] = set()
    for i, proc in enumerate(["lien-thong-khai-sinh", "lien-thong-khai-tu", "chuyen-nhuong-dat"]):
        sub = make_submission(proc, random.Random(40 + i), T)
        secrets |= personal_values(sub)
        procedure(dossier_code=receive(sub).dossier_code)
    with session_scope() as s:  # the child's personal ID number issued by civil status
        secrets |= {o["personal_id"] for o in s.execute(select(StepRow.outputs)).scalars() if "personal_id" in o}

    texts = prefect_texts()
    assert len(texts) > 20  # the runs did log and publish artifacts
    leaks = sorted({s for s in secrets for t in texts if s and s in t})
    assert not leaks, f"personal data in Prefect logs or artifacts: {len(leaks)} value(s)"


def test_the_scan_catches_a_name_that_is_logged(db):
    @flow
    def careless(name: str) -> None:
        get_run_logger().info("processing %s", name)

    careless("Nguyễn Thị Kiểm Tra")
    assert any("Nguyễn Thị Kiểm Tra" in t for t in prefect_texts())


