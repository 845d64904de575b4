"""The synthetic dossier generator: valid output, valid IDs, determinism, and honest defects."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable
from datetime import date, datetime

import pytest

from lienthong.catalog import get_catalog
from lienthong.clock import VN_TZ
from lienthong.codes import CitizenId, parse_citizen_id
from lienthong.errors import InvalidCitizenId
from lienthong.payloads import Person, Submission
from samples.dossiers import DEFECTS, FAMILY_NAMES, defects_for, make_batch, make_submission

RECEIVED = datetime(2025, 9, 10, 9, 30, tzinfo=VN_TZ)
PROCEDURES = ("lien-thong-khai-sinh", "lien-thong-khai-tu", "chuyen-nhuong-dat")


def _people(s: Submission) -> list[Person]:
    people = [s.applicant, s.mother, s.father, s.deceased, s.transferor, s.transferee]
    return [p for p in people if p is not None]


@pytest.mark.parametrize("procedure_id", PROCEDURES)
def test_sample_dossier_carries_the_catalog_procedure_code_and_components(
        procedure_id: str) -> None:
    proc = get_catalog().get(procedure_id, on=RECEIVED.date())  # the version of that day
    for seed in range(20):
        s = make_submission(procedure_id, random.Random(seed), RECEIVED)
        assert s.procedure_code == proc.code
        assert s.received_at == RECEIVED
        codes = {c.code for c in s.components}
        assert {c.code for c in proc.components if c.required} <= codes
        assert codes <= {c.code for c in proc.components}
        assert all(c.file and not c.paper for c in s.components)


@pytest.mark.parametrize("procedure_id", PROCEDURES)
def test_every_person_has_an_id_consistent_with_sex_and_birth_year(procedure_id: str) -> None:
    for seed in range(30):
        s = make_submission(procedure_id, random.Random(seed), RECEIVED)
        for person in _people(s):
            parsed = parse_citizen_id(person.citizen_id, today=RECEIVED.date())
            assert isinstance(parsed, CitizenId)
            assert parsed.sex == person.sex
            assert person.date_of_birth is not None
            assert parsed.birth_year == person.date_of_birth.year


def test_names_are_nfc_vietnamese_with_a_common_family_name() -> None:
    batch = make_batch(60, seed=5, start=RECEIVED)
    for s in batch:
        for name in [p.full_name for p in _people(s)] + ([s.child.full_name] if s.child else []):
            assert unicodedata.is_normalized("NFC", name)
            assert name.split()[0] in FAMILY_NAMES
            assert not any(ch.isdigit() for ch in name)


def test_birth_dossier_dates_and_certificate_match_the_child_and_mother() -> None:
    for seed in range(30):
        s = make_submission("lien-thong-khai-sinh", random.Random(seed), RECEIVED)
        assert s.child and s.mother and s.birth_certificate
        assert s.registration_date == RECEIVED.date()
        assert 0 <= (s.registration_date - s.child.date_of_birth).days <= 60
        assert s.birth_certificate.child_sex == s.child.sex
        assert s.birth_certificate.child_date_of_birth == s.child.date_of_birth
        assert s.birth_certificate.mother_full_name == s.mother.full_name
        assert s.child.full_name.split()[0] in {p.full_name.split()[0]
                                                for p in (s.mother, s.father) if p}


def test_death_dossier_is_within_fifteen_days_and_options_vary() -> None:
    seen = set()
    for seed in range(40):
        s = make_submission("lien-thong-khai-tu", random.Random(seed), RECEIVED)
        assert s.deceased and s.death_notice and s.registration_date
        assert 0 <= (s.registration_date - s.deceased.date_of_death).days <= 15
        get_catalog().get("lien-thong-khai-tu").resolve_options(s.options)
        seen.add((s.options["procedures"], s.options["funeral_body"]))
        has_allowance_papers = any(c.code == "GTMT" for c in s.components)
        assert has_allowance_papers == (s.options["procedures"] in (3, 4))
    assert {p for p, _ in seen} == {2, 3, 4}
    assert {f for _, f in seen} == {"bhxh", "bao_tro_xa_hoi"}


def test_given_options_are_kept() -> None:
    s = make_submission("lien-thong-khai-tu", random.Random(1), RECEIVED,
                        options={"procedures": 4, "funeral_body": "bao_tro_xa_hoi"})
    assert s.options == {"procedures": 4, "funeral_body": "bao_tro_xa_hoi"}


def test_paper_components_have_no_file_until_digitized() -> None:
    proc = get_catalog().get("chuyen-nhuong-dat")
    s = make_submission(proc.id, random.Random(3), RECEIVED, paper_components=True)
    to_digitize = {c.code for c in proc.components if c.digitize}
    for c in s.components:
        assert c.paper == (c.code in to_digitize)
        assert (c.file is None) == c.paper


def test_same_rng_state_gives_the_same_dossier_and_another_seed_another() -> None:
    for proc in PROCEDURES:
        a = make_submission(proc, random.Random(42), RECEIVED)
        b = make_submission(proc, random.Random(42), RECEIVED)
        c = make_submission(proc, random.Random(43), RECEIVED)
        assert a.model_dump() == b.model_dump()
        assert a.model_dump() != c.model_dump()
    assert ([s.model_dump() for s in make_batch(30, 7, RECEIVED, defect_rate=0.5)]
            == [s.model_dump() for s in make_batch(30, 7, RECEIVED, defect_rate=0.5)])


def test_batch_is_received_in_order_on_the_day_and_spans_every_procedure() -> None:
    batch = make_batch(200, seed=1, start=RECEIVED)
    times = [s.received_at for s in batch]
    assert times == sorted(times)
    assert {t.date() for t in times} == {date(2025, 9, 10)}
    # Every procedure, each under the code of its version in force that day.
    codes = {get_catalog().get(p.id, on=RECEIVED.date()).code for p in get_catalog()}
    assert {s.procedure_code for s in batch} == codes


def test_unknown_or_inapplicable_defect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown defect"):
        make_submission("lien-thong-khai-sinh", random.Random(1), RECEIVED, defects=["nope"])
    with pytest.raises(ValueError, match="do not apply"):
        make_submission("chuyen-nhuong-dat", random.Random(1), RECEIVED,
                        defects=["child_sex_mismatch"])


def _id_error(s: Submission) -> str | None:
    try:
        parsed = parse_citizen_id(s.applicant.citizen_id, today=s.received_at.date())
    except InvalidCitizenId as exc:
        return exc.message
    assert isinstance(parsed, CitizenId)
    return None


def _id_sex(s: Submission) -> bool:
    parsed = parse_citizen_id(s.applicant.citizen_id, today=s.received_at.date())
    return isinstance(parsed, CitizenId) and parsed.sex != s.applicant.sex


def _id_year(s: Submission) -> bool:
    parsed = parse_citizen_id(s.applicant.citizen_id, today=s.received_at.date())
    assert s.applicant.date_of_birth
    return isinstance(parsed, CitizenId) and parsed.birth_year != s.applicant.date_of_birth.year


def _required(s: Submission) -> set[str]:
    return {c.code for c in get_catalog().get(s.procedure_code).components if c.required}


def _reg(s: Submission) -> date:
    assert s.registration_date is not None
    return s.registration_date


# What each defect must visibly change: true on the defective dossier, false on a valid one.
DEFECT_SHOWS: dict[str, Callable[[Submission], bool]] = {
    "citizen_id_placeholder": lambda s: s.applicant.citizen_id == "000000001",
    "citizen_id_wrong_length": lambda s: "12 digits" in (_id_error(s) or ""),
    "citizen_id_unknown_province": lambda s: "province" in (_id_error(s) or ""),
    "citizen_id_sex_mismatch": _id_sex,
    "citizen_id_birth_year_mismatch": _id_year,
    "applicant_name_with_digits": lambda s: any(ch.isdigit() for ch in s.applicant.full_name),
    "applicant_name_too_long": lambda s: len(s.applicant.full_name) > 50,
    "missing_component": lambda s: not _required(s) <= {c.code for c in s.components},
    "child_sex_mismatch": lambda s: s.child.sex != s.birth_certificate.child_sex,  # type: ignore[union-attr]
    "child_birth_date_mismatch":
        lambda s: s.child.date_of_birth != s.birth_certificate.child_date_of_birth,  # type: ignore[union-attr]
    "mother_name_mismatch":
        lambda s: s.mother.full_name != s.birth_certificate.mother_full_name,  # type: ignore[union-attr]
    "birth_after_registration": lambda s: s.child.date_of_birth > _reg(s),  # type: ignore[union-attr]
    "child_surname_not_from_parents": lambda s: s.child.full_name.split()[0] not in {  # type: ignore[union-attr]
        p.full_name.split()[0] for p in (s.mother, s.father) if p},
    "missing_child_place_of_birth": lambda s: s.child.place_of_birth is None,  # type: ignore[union-attr]
    "missing_mother_citizen_id": lambda s: s.mother.citizen_id is None,  # type: ignore[union-attr]
    "late_registration": lambda s: (_reg(s) - s.child.date_of_birth).days > 60,  # type: ignore[union-attr]
    "residence_without_consent": lambda s: s.extra["residence"]["household_head_consent"] is False,
    "death_after_registration": lambda s: s.deceased.date_of_death > _reg(s),  # type: ignore[union-attr]
    "missing_death_notice_issuer": lambda s: s.death_notice.issuer == "",  # type: ignore[union-attr]
    "late_death_registration":
        lambda s: (_reg(s) - s.deceased.date_of_death).days > 15,  # type: ignore[union-attr]
    "funeral_allowance_late": lambda s: s.options["procedures"] in (3, 4) and (
        s.received_at.date() - s.deceased.date_of_death).days > 90,  # type: ignore[union-attr]
    "funeral_without_relationship":
        lambda s: s.options["procedures"] in (3, 4) and not s.applicant.relationship,
    "contract_after_reception":
        lambda s: s.contract.notarized_on > s.received_at.date(),  # type: ignore[union-attr]
    "transfer_to_self":
        lambda s: s.transferor.citizen_id == s.transferee.citizen_id,  # type: ignore[union-attr]
    "missing_parcel_map_sheet": lambda s: s.parcel.map_sheet == "",  # type: ignore[union-attr]
}


def test_every_declared_defect_has_a_visible_check() -> None:
    assert set(DEFECT_SHOWS) == set(DEFECTS)


@pytest.mark.parametrize("procedure_id", PROCEDURES)
def test_each_defect_changes_what_it_says_and_the_dossier_stays_schema_valid(
        procedure_id: str) -> None:
    for defect in defects_for(procedure_id):
        for seed in range(8):
            valid = make_submission(procedure_id, random.Random(seed), RECEIVED)
            broken = make_submission(procedure_id, random.Random(seed), RECEIVED, defects=[defect])
            Submission.model_validate(broken.model_dump(mode="json"))
            assert DEFECT_SHOWS[defect](broken), (defect, seed)
            assert not DEFECT_SHOWS[defect](valid), (defect, seed)
