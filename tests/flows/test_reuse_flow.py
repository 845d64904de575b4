"""Once-only: a result published by one procedure is reused by the next, not asked for again."""

import random
from datetime import datetime

import pytest
from sqlalchemy import select

from flows.procedure import procedure
from lienthong.db import session_scope
from lienthong.db.models import ComponentRow, DossierRow
from lienthong.dossier import Status
from lienthong.payloads import Component
from lienthong.reception import receive
from samples.dossiers import make_submission

pytestmark = pytest.mark.flows
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")


def test_funeral_allowance_reuses_the_death_extract_published_by_death_registration(db, agency_sim):
    first = make_submission("lien-thong-khai-tu", random.Random(31), T, options={"procedures": 2})
    assert procedure(dossier_code=receive(first).dossier_code)["status"] == Status.RETURNED

    # Weeks later the family files the allowance alone, without the death extract.
    later = make_submission("tro-cap-mai-tang", random.Random(32), T)
    later = later.model_copy(update={
        "deceased": first.deceased, "death_notice": first.death_notice, "applicant": first.applicant,
        "components": [c for c in later.components if c.code != "TLKT"]
        + [Component(code="GTMT", name="Giấy tờ đề nghị hưởng trợ cấp")],
    })
    code = receive(later).dossier_code
    assert procedure(dossier_code=code)["status"] == Status.RETURNED
    with session_scope() as s:
        row = s.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one()
        extract = s.execute(select(ComponentRow).where(ComponentRow.dossier_id == row.id,
                                                       ComponentRow.code == "TLKT")).scalar_one()
    assert extract.reused and extract.vault_address.startswith("vault://UBND_XA/KQ.G15.000034/")
    assert row.status == Status.RETURNED  # no supplement asked for the extract


def test_without_a_published_extract_the_citizen_is_asked_for_it(db, agency_sim):
    later = make_submission("tro-cap-mai-tang", random.Random(33), T)
    code = receive(later).dossier_code
    with pytest.raises(Exception):  # noqa: B017 - the run suspends: only a deployment run may
        procedure(dossier_code=code)
    with session_scope() as s:
        row = s.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one()
    assert row.status == Status.SUPPLEMENT_REQUESTED
