from pathlib import Path

import pytest
import yaml

from lienthong.catalog import get_catalog, load_agencies, load_procedure
from lienthong.errors import CatalogError, UnknownProcedure
from lienthong.settings import get_settings

CONFIG = get_settings().config_dir
AGENCIES = load_agencies(CONFIG)


def test_the_three_shipped_procedures_load():
    cat = get_catalog()
    assert {p.code for p in cat.all_versions()} >= {"2.002621", "2.002622", "1.013831"}
    assert cat.get("2.002621").id == "lien-thong-khai-sinh"


def test_group_1_limits_are_3_working_days_or_5_with_verification():
    p = get_catalog().get("2.002621")
    assert p.limit().working_days == 3 and p.limit(verification=True).working_days == 5


def test_group_1_birth_registration_comes_first_then_residence_and_insurance_in_parallel():
    plan = get_catalog().get("2.002621").plan()
    assert plan.steps[0].id == "khai_sinh" and plan.steps[0].time_limit.same_day
    assert plan.upstream["thuong_tru"] == ["khai_sinh"] and plan.upstream["bhyt"] == ["khai_sinh"]


@pytest.mark.parametrize("n,expected", [
    (2, ["khai_tu", "xoa_thuong_tru"]),
    (3, ["khai_tu", "xoa_thuong_tru", "mai_tang_bhxh"]),
    (4, ["khai_tu", "xoa_thuong_tru", "mai_tang_bhxh", "tu_tuat"]),
])
def test_group_2_citizen_chooses_two_three_or_four_procedures(n, expected):
    plan = get_catalog().get("2.002622").plan({"procedures": n})
    assert [s.id for s in plan.steps] == expected


def test_group_2_funeral_support_for_social_protection_goes_to_the_commune():
    plan = get_catalog().get("2.002622").plan({"procedures": 3, "funeral_body": "bao_tro_xa_hoi"})
    assert [s.agency for s in plan.steps][-1] == "UBND_XA"


def test_unknown_options_are_refused():
    with pytest.raises(CatalogError):
        get_catalog().get("2.002622").plan({"procedures": 5})


def test_land_transfer_goes_land_office_tax_payment_land_office():
    plan = get_catalog().get("1.013831").plan()
    assert [s.agency for s in plan.steps] == ["VPDKDD", "THUE", "THUE", "VPDKDD"]
    assert plan.critical_path_days() == 18


def test_unknown_procedure_lookup_is_typed():
    with pytest.raises(UnknownProcedure):
        get_catalog().get("9.999999")


def _broken(tmp_path: Path, mutate) -> Path:  # type: ignore[no-untyped-def]
    raw = yaml.safe_load((CONFIG / "procedures" / "lien-thong-khai-sinh.yaml").read_text("utf-8"))
    mutate(raw)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_a_cycle_is_refused_naming_file_and_step(tmp_path):
    path = _broken(tmp_path, lambda r: r["edges"].append(
        {"from": "thuong_tru", "to": "khai_sinh", "data": ["residence_notice"]}))
    with pytest.raises(CatalogError, match=r"broken\.yaml: step '(khai_sinh|thuong_tru)' is in a cycle"):
        load_procedure(path, AGENCIES)


def test_an_unknown_agency_is_refused_naming_file_and_step(tmp_path):
    path = _broken(tmp_path, lambda r: r["steps"][2].update(agency="SO_Y_TE"))
    with pytest.raises(CatalogError, match=r"broken\.yaml: step 'bhyt' names unknown agency 'SO_Y_TE'"):
        load_procedure(path, AGENCIES)


def test_consuming_data_no_earlier_step_produces_is_refused(tmp_path):
    path = _broken(tmp_path, lambda r: r["steps"][1]["inputs"].append("health_insurance_card"))
    with pytest.raises(CatalogError, match=r"broken\.yaml: step 'thuong_tru' consumes 'health_insurance_card'"):
        load_procedure(path, AGENCIES)


def test_step_limits_beyond_the_group_limit_are_refused(tmp_path):
    path = _broken(tmp_path, lambda r: r["steps"][1].update(time_limit={"working_days": 7}))
    with pytest.raises(CatalogError, match=r"broken\.yaml: step limits add up to 7 .* group limit of 3 .*'thuong_tru'"):
        load_procedure(path, AGENCIES)


def test_edge_handing_over_data_its_source_does_not_produce_is_refused(tmp_path):
    path = _broken(tmp_path, lambda r: r["edges"][0].update(data=["residence_notice"]))
    with pytest.raises(CatalogError, match="does not produce"):
        load_procedure(path, AGENCIES)


def test_a_malformed_field_names_the_step(tmp_path):
    path = _broken(tmp_path, lambda r: r["steps"][0].update(time_limit="tomorrow"))
    with pytest.raises(CatalogError, match=r"broken\.yaml"):
        load_procedure(path, AGENCIES)


# --- versions (issue 16 §2) -------------------------------------------------------------------

def test_group_1_versions_follow_each_other_on_1_september_2026_and_1_march_2027():
    from datetime import date

    cat = get_catalog()
    assert cat.get("lien-thong-khai-sinh", on=date(2026, 8, 31)).code == "2.002621"
    new = cat.get("lien-thong-khai-sinh", on=date(2026, 9, 1))
    assert new.code == "3.000722" and "can_cuoc" in [s.id for s in new.steps]
    assert new.step("can_cuoc").agency == "CONG_AN_XA"
    assert cat.get("lien-thong-khai-sinh", on=date(2027, 3, 1)).version == "2027-03-01"


def test_group_2_takes_the_portal_code_2_002913_and_old_codes_keep_resolving():
    from datetime import date

    cat = get_catalog()
    assert cat.get("lien-thong-khai-tu", on=date(2026, 9, 1)).code == "2.002913"
    # An old code alone names its own version (history); with a day, the version of that day.
    assert cat.get("2.002622").version == "2024-06-10"
    assert cat.get("2.002622", on=date(2026, 10, 1)).code == "2.002913"
    for code in ("2.002621", "2.000986", "2.001023"):
        assert cat.get(code, on=date(2026, 9, 1)).code == "3.000722"
    portal = yaml.safe_load((CONFIG / "portal.yaml").read_text(encoding="utf-8"))
    groups = {cat.get(pid).code for pid in ("lien-thong-khai-sinh", "lien-thong-khai-tu")}
    assert set(portal["fields"]) >= groups | {"2.002621", "2.002622"}


def test_the_death_result_is_the_death_certificate_from_1_march_2027():
    from datetime import date

    cat = get_catalog()
    old = cat.get("lien-thong-khai-tu", on=date(2027, 2, 28)).step("khai_tu").results[0]
    new_step = cat.get("lien-thong-khai-tu", on=date(2027, 3, 1)).step("khai_tu")
    assert old.name == "Trích lục khai tử"
    assert new_step.results[0].name == "Giấy chứng tử" and not new_step.results[0].confirmed
    assert "Chủ tịch UBND xã" in (new_step.approval or "")


def test_superseded_versions_must_end_the_day_before_the_next(tmp_path):
    from lienthong.catalog import load_catalog

    (tmp_path / "procedures").mkdir()
    (tmp_path / "agencies.yaml").write_text((CONFIG / "agencies.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    src = yaml.safe_load((CONFIG / "procedures" / "tro-cap-mai-tang.yaml").read_text(encoding="utf-8"))
    first = {**src, "effective_to": "2026-01-30"}
    second = {**src, "version": "2026-02-01", "effective_from": "2026-02-02"}
    (tmp_path / "procedures" / "a.yaml").write_text(yaml.safe_dump(first, allow_unicode=True), encoding="utf-8")
    (tmp_path / "procedures" / "b.yaml").write_text(yaml.safe_dump(second, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogError, match="follow each other"):
        load_catalog(tmp_path)


def test_every_unconfirmed_code_limit_or_basis_says_why():
    cat = get_catalog()
    for p in cat.all_versions():
        assert p.code_confirmed or p.code_reason
        for b in p.legal_basis:
            assert b.confirmed or b.reason
        for s in p.steps:
            assert s.limit_confirmed or s.limit_reason
