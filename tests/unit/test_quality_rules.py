"""Every rule of config/expectations: a valid example passes, a broken one fails, in Great
Expectations and in the plain-Python twin alike."""

from __future__ import annotations

import copy
import fnmatch
import random
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from lienthong.clock import VN_TZ
from lienthong.codes import format_dossier_code
from lienthong.quality.engines import GxEngine
from lienthong.quality.records import digitized_record, flatten, result_record
from lienthong.quality.suites import Rule, get_quality_config
from lienthong.quality.validator import get_engine, validate_rows, validate_submissions
from samples.dossiers import DEFECTS, FLAG_DEFECTS, defects_for, make_batch, make_submission

RECEIVED = datetime(2025, 9, 10, 9, 30, tzinfo=VN_TZ)
PROCEDURES = ("lien-thong-khai-sinh", "lien-thong-khai-tu", "chuyen-nhuong-dat")
ENGINES = ("gx", "plain")
VIETNAMESE_LETTERS = "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ"


def _dossier_row(procedure_id: str, **options: Any) -> dict[str, Any]:
    """A flattened valid dossier with every optional header field present (so pair rules run)."""
    seed = 0
    while True:  # a birth dossier with a father, a death dossier with the allowance branch
        s = make_submission(procedure_id, random.Random(seed), RECEIVED, options=options or None)
        if s.child is None or s.father is not None:
            break
        seed += 1
    code = format_dossier_code("000.00.06.H56", RECEIVED.date(), 7)
    return flatten(s, dossier_code=code, appointment_at=RECEIVED + timedelta(days=3),
                   finished_at=RECEIVED + timedelta(days=2))


def _valid_rows() -> dict[str, dict[str, Any]]:
    birth = _dossier_row("lien-thong-khai-sinh")
    death = _dossier_row("lien-thong-khai-tu", procedures=4, funeral_body="bhxh")
    land = _dossier_row("chuyen-nhuong-dat")
    digitized = digitized_record(
        {"owner_citizen_id": "079203001234", "owner_sex": "male", "owner_birth_year": 2003,
         "document_name": "Giấy chứng sinh", "issued_on": "2025-09-01", "file_hash": "ab" * 32},
        dossier_code="000.00.06.H56-250910-0007", procedure_code="2.002621", component_code="GCS",
        received_at=RECEIVED, confidence=0.93)
    result = result_record(
        dossier_code="000.00.06.H56-250910-0007", step_key="khai_sinh",
        result_code="KQ.G15.000031", data_name="birth_extract",
        outputs={"personal_id": "079325000123", "birth_extract": {"so": 1}},
        received_at=RECEIVED, finished_at=RECEIVED + timedelta(hours=3),
        child=make_submission("lien-thong-khai-sinh", random.Random(1), RECEIVED).child)
    # The child above: its sex and year decide which personal ID is consistent.
    child_sex, child_year = result["child.sex"], result["child.birth_year"]
    digit = {"male": "2", "female": "3"}[child_sex]
    result["child.citizen_id"] = f"079{digit}{child_year % 100:02d}000123"
    return {"header": birth, "birth": birth, "residence": birth, "death": death,
            "funeral_allowance": death, "land_transfer": land, "digitized": digitized,
            "agency_results": result}


def _other(value: Any) -> Any:
    if isinstance(value, datetime):
        return value + timedelta(days=1)
    if isinstance(value, date):
        return value + timedelta(days=1)
    if value in ("male", "female"):
        return "female" if value == "male" else "male"
    return f"{value} Khác"


def _break(rule: Rule, row: dict[str, Any]) -> dict[str, Any]:
    """The smallest change to a valid row that this rule must refuse."""
    r = copy.deepcopy(row)
    k, e = rule.kwargs, rule.expectation
    if e == "expect_column_values_to_not_be_null":
        r[k["column"]] = None
    elif e == "expect_column_values_to_not_be_in_set":
        r[k["column"]] = k["value_set"][0]
    elif e == "expect_column_values_to_be_in_set":
        r[k["column"]] = False if k["value_set"] == [True] else "fax"
    elif e == "expect_column_values_to_match_regex":
        r[k["column"]] = "9.99"
    elif e == "expect_column_values_to_be_between":
        hi = k.get("max_value")
        r[k["column"]] = hi + 1 if hi is not None else k["min_value"] / 2
    elif e == "expect_column_values_to_be_valid_citizen_id":
        r[k["column"]] = "003" + r[k["column"]][3:]  # 003 is no province
    elif e == "expect_column_values_to_be_vietnamese_name":
        r[k["column"]] = r[k["column"]] + " 2"
    elif e == "expect_column_pair_citizen_id_to_match_sex":
        r[k["column_B"]] = _other(r[k["column_B"]])
    elif e == "expect_column_pair_citizen_id_to_match_birth_year":
        r[k["column_B"]] = r[k["column_B"]] + 1
    elif e == "expect_column_pair_values_to_be_equal":
        r[k["column_B"]] = _other(r[k["column_B"]])
    elif e == "expect_column_pair_values_a_to_be_greater_than_b":
        r[k["column_B"]] = r[k["column_A"]] + timedelta(days=1)
    elif e == "expect_column_pair_days_from_a_to_b_to_be_at_most":
        # Past the window, whether counted in days (running to the next working day, so a few
        # more) or as an anniversary ("under 6": before the 6th birthday).
        beyond = k.get("max_days", 0) + 366 * k.get("max_years", 0) + 5
        r[k["column_A"]] = r[k["column_A"]] - timedelta(days=beyond)
    elif e == "expect_column_pair_dossier_code_to_match_reception_date":
        r[k["column_A"]] = r[k["column_A"]].replace("-250910-", "-250909-")
    elif e == "expect_multicolumn_family_name_to_follow_parents":
        child = r[k["column_list"][0]].split()
        r[k["column_list"][0]] = " ".join(["Lý" if child[0] != "Lý" else "Ngô", *child[1:]])
        for parent in k["column_list"][1:]:
            r[parent] = " ".join(["Trần", *r[parent].split()[1:]])
    elif e == "expect_select_column_values_to_be_unique_within_record":
        r[k["column_list"][1]] = r[k["column_list"][0]]
    else:  # pragma: no cover - a new expectation type needs its breaking change here
        raise AssertionError(f"no breaking change for {e}")
    return r


ALL_RULES = [r for s in get_quality_config().suites.values() for r in s.rules]


@pytest.fixture(scope="module")
def valid_rows() -> dict[str, dict[str, Any]]:
    return _valid_rows()


@pytest.mark.parametrize("engine", ENGINES)
def test_valid_example_of_every_asset_passes_every_rule(engine: str,
                                                        valid_rows: dict[str, Any]) -> None:
    for asset, row in valid_rows.items():
        [outcome] = validate_rows(asset, [row], engine=engine)  # type: ignore[arg-type]
        assert outcome.failed_rules == [] and outcome.flags == [], asset


@pytest.mark.parametrize("engine", ENGINES)
def test_each_rule_refuses_its_broken_example(engine: str, valid_rows: dict[str, Any]) -> None:
    by_asset: dict[str, list[tuple[Rule, dict[str, Any]]]] = {}
    for rule in ALL_RULES:
        by_asset.setdefault(rule.asset, []).append((rule, _break(rule, valid_rows[rule.asset])))
    for asset, cases in by_asset.items():  # one batch per asset: many rows per call
        outcomes = validate_rows(asset, [row for _, row in cases], engine=engine)  # type: ignore[arg-type]
        for (rule, _), outcome in zip(cases, outcomes, strict=True):
            fired = outcome.flags if rule.severity == "flag" else outcome.failed_rules
            assert rule.id in fired, (rule.id, outcome.failed_rules, outcome.flags)


def test_every_rule_has_a_vietnamese_line_and_a_known_severity() -> None:
    for rule in ALL_RULES:
        assert rule.severity in ("error", "flag")
        assert rule.line_vi and rule.line_vi[0].isupper()
        assert any(ch in rule.line_vi for ch in VIETNAMESE_LETTERS)


@pytest.mark.parametrize("procedure_id", PROCEDURES)
@pytest.mark.parametrize("engine", ENGINES)
def test_each_sample_defect_breaks_exactly_the_rule_it_names(procedure_id: str,
                                                            engine: str) -> None:
    cases = [(d, seed) for d in defects_for(procedure_id) for seed in range(3)]
    subs = [make_submission(procedure_id, random.Random(seed), RECEIVED, defects=[d])
            for d, seed in cases]
    outcomes = validate_submissions(subs, engine=engine)  # type: ignore[arg-type]
    for (defect, seed), outcome in zip(cases, outcomes, strict=True):
        if defect in FLAG_DEFECTS:
            assert outcome.ok and outcome.failed_rules == [], (defect, seed)
            assert [f for f in outcome.flags if fnmatch.fnmatch(f, DEFECTS[defect])], defect
        else:
            assert not outcome.ok, (defect, seed)
            assert len(outcome.failed_rules) == 1, (defect, seed, outcome.failed_rules)
            assert fnmatch.fnmatch(outcome.failed_rules[0], DEFECTS[defect]), (defect, outcome)


def test_late_registration_is_a_flag_not_an_error() -> None:
    s = make_submission("lien-thong-khai-sinh", random.Random(4), RECEIVED,
                        defects=["late_registration"])
    [outcome] = validate_submissions([s])
    assert outcome.ok and outcome.lines_vi == []
    assert outcome.flags == ["birth.late_registration"]
    assert "quá hạn 60 ngày" in outcome.flags_vi[0]


def test_great_expectations_and_plain_python_agree_on_a_mixed_batch() -> None:
    batch = make_batch(600, seed=11, start=RECEIVED, defect_rate=0.6)
    gx = validate_submissions(batch, engine="gx")
    plain = validate_submissions(batch, engine="plain")
    assert [(o.failed_rules, o.flags) for o in gx] == [(o.failed_rules, o.flags) for o in plain]
    assert sum(not o.ok for o in gx) > 200  # the batch really exercises the rules


def test_suites_are_built_once_per_process() -> None:
    first = get_engine("gx")
    validate_submissions(make_batch(5, seed=1, start=RECEIVED))
    assert get_engine("gx") is first
    assert isinstance(first, GxEngine)
    assert sorted(s.name for s in first.context.suites.all()) == sorted(get_quality_config().suites)


def test_dossier_code_dated_another_day_is_refused() -> None:
    s = make_submission("chuyen-nhuong-dat", random.Random(2), RECEIVED)
    good = format_dossier_code("000.00.06.H56", RECEIVED.date(), 12)
    bad = format_dossier_code("000.00.06.H56", RECEIVED.date() - timedelta(days=1), 12)
    ok, wrong = validate_submissions([s, s], dossier_codes=[good, bad])
    assert ok.ok
    assert wrong.failed_rules == ["header.dossier_code"]


def test_appointment_before_reception_is_refused() -> None:
    s = make_submission("lien-thong-khai-tu", random.Random(2), RECEIVED)
    [outcome] = validate_submissions([s], appointments=[RECEIVED - timedelta(hours=1)])
    assert outcome.failed_rules == ["header.appointment_not_before_reception"]


def test_unknown_procedure_code_gets_one_line_and_no_declaration_rules() -> None:
    s = make_submission("chuyen-nhuong-dat", random.Random(2), RECEIVED)
    payload = s.model_dump(mode="json")
    payload["procedure_code"] = "1.999999"
    [outcome] = validate_submissions([payload])
    assert outcome.failed_rules == ["header.procedure_code_in_catalog"]


def test_local_suffix_of_a_procedure_code_is_accepted() -> None:
    s = make_submission("lien-thong-khai-sinh", random.Random(2), RECEIVED)
    payload = s.model_dump(mode="json")
    payload["procedure_code"] = "2.002621.000.00.06.H56"
    [outcome] = validate_submissions([payload])
    assert outcome.ok, outcome.failed_rules


def test_father_fields_are_required_only_when_a_father_is_declared() -> None:
    rng_seed = next(i for i in range(100) if make_submission(
        "lien-thong-khai-sinh", random.Random(i), RECEIVED).father is not None)
    s = make_submission("lien-thong-khai-sinh", random.Random(rng_seed), RECEIVED)
    with_father = s.model_dump(mode="json")
    with_father["father"]["ethnicity"] = None
    without_father = s.model_dump(mode="json")
    without_father["father"] = None
    mother_family = with_father["mother"]["full_name"].split()[0]
    without_father["child"]["full_name"] = f"{mother_family} Minh An"
    a, b = validate_submissions([with_father, without_father])
    assert a.failed_rules == ["birth.required.father.ethnicity"]
    assert b.ok, b.failed_rules
