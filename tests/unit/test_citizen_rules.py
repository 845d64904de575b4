"""Rules that wrong no citizen (issue 16 §5), each with its basis."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from lienthong.catalog import get_catalog
from lienthong.clock import VN_TZ
from lienthong.payloads import Submission
from lienthong.quality import checks
from lienthong.quality.validator import validate_submission
from samples.dossiers import make_submission


def _rules(payload: dict[str, Any], engine: str) -> set[str]:
    out = validate_submission(Submission.model_validate(payload), engine=engine)  # type: ignore[arg-type]
    return {r.id for r in (*out.errors, *out.flag_rules)}


def _birth(received: datetime, seed: int = 1) -> dict[str, Any]:
    sub = make_submission("lien-thong-khai-sinh", random.Random(seed), received)
    return sub.model_dump(mode="json")


ENGINES = ("plain", "gx")


def test_under_6_is_before_the_6th_birthday_not_2190_days():
    # Born 10/03/2020: 2190 days later is 08/03/2026, two days before the birthday (leap years).
    born = date(2020, 3, 10)
    assert checks.days_between_at_most(born, date(2026, 3, 9), max_years=6)
    assert not checks.days_between_at_most(born, date(2026, 3, 10), max_years=6)
    assert checks.anniversary(date(2020, 2, 29), 6) == date(2026, 3, 1)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_child_the_day_before_the_6th_birthday_is_in_group_1(engine):
    received = datetime(2026, 3, 9, 9, 0, tzinfo=VN_TZ)
    p = _birth(received)
    born = "2020-03-10"
    p["child"]["date_of_birth"] = born
    p["birth_certificate"]["child_date_of_birth"] = born
    p["registration_date"] = "2026-03-09"
    assert "residence.child_under_six" not in _rules(p, engine)
    p["registration_date"] = "2026-03-10"  # the 6th birthday: no longer under 6
    p["received_at"] = "2026-03-10T09:00:00+07:00"
    assert "residence.child_under_six" in _rules(p, engine)


def test_a_late_registration_window_ending_on_a_day_off_runs_to_the_next_working_day():
    # 60 days from 25/09/2026 end on Tue 24/11/2026, Vietnam Culture Day: the window runs to 25/11.
    born = date(2026, 9, 25)
    assert born + timedelta(days=60) == date(2026, 11, 24)
    assert checks.days_between_at_most(born, date(2026, 11, 25), 60, to_working_day=True)
    assert not checks.days_between_at_most(born, date(2026, 11, 25), 60)
    assert not checks.days_between_at_most(born, date(2026, 11, 26), 60, to_working_day=True)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_birth_late_flag_honours_the_civil_code_end_of_a_window(engine):
    received = datetime(2026, 11, 25, 9, 0, tzinfo=VN_TZ)
    p = _birth(received, seed=3)
    p["child"]["date_of_birth"] = p["birth_certificate"]["child_date_of_birth"] = "2026-09-25"
    p["registration_date"] = "2026-11-25"
    assert "birth.late_registration" not in _rules(p, engine)


@pytest.mark.parametrize("name", ["Ksor H'Blin", "Y Ngông Niê Kđăm", "Nguyen Van An", "Lò Văn Pảo"])
def test_ethnic_minority_names_and_names_without_diacritics_are_not_refused(name):
    assert checks.is_vietnamese_name(name)


def test_a_decomposed_name_is_the_same_name():
    import unicodedata

    assert checks.is_vietnamese_name(unicodedata.normalize("NFD", "Nguyễn Thị Ánh"))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_foreign_or_stateless_parent_without_a_personal_id_is_allowed(engine):
    received = datetime(2026, 3, 9, 9, 0, tzinfo=VN_TZ)
    p = _birth(received, seed=5)
    p["mother"]["citizen_id"] = None
    p["mother"]["nationality"] = "Hàn Quốc"
    # The father applies (the mother has no Vietnamese ID to sign with).
    assert "birth.required.mother.citizen_id" not in _rules(p, engine)
    p["mother"]["nationality"] = "Việt Nam"
    assert "birth.required.mother.citizen_id" in _rules(p, engine)


def test_a_witness_statement_can_replace_the_birth_certificate():
    for version in get_catalog().versions["lien-thong-khai-sinh"][1:]:
        gcs = next(c for c in version.components if c.code == "GCS")
        assert "người làm chứng" in gcs.name and "cam đoan" in gcs.name
    gcs = next(c for c in get_catalog().get("1.001193").components if c.code == "GCS")
    assert "người làm chứng" in gcs.name


@pytest.mark.parametrize("engine", ENGINES)
def test_the_90_day_rule_applies_to_the_social_insurance_allowance_only(engine):
    received = datetime(2026, 3, 9, 9, 0, tzinfo=VN_TZ)
    for body, expected in (("bhxh", True), ("bao_tro_xa_hoi", False)):
        sub = make_submission("lien-thong-khai-tu", random.Random(7), received,
                              options={"procedures": 3, "funeral_body": body})
        p = sub.model_dump(mode="json")
        p["deceased"]["date_of_death"] = "2025-11-01"  # 128 days before reception
        p["registration_date"] = p["received_at"][:10]
        assert ("funeral.filed_within_90_days_of_death" in _rules(p, engine)) is expected, body


def test_group_2_allowances_need_the_death_extract_not_the_deregistration():
    for version in get_catalog().versions["lien-thong-khai-tu"]:
        plan = version.plan({"procedures": 4})
        for step in ("mai_tang_bhxh", "tu_tuat"):
            assert plan.upstream[step] == ["khai_tu"]
            assert "deregistration" not in version.step(step).inputs
