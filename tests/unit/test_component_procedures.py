"""Every component procedure of the groups is a procedure of its own (issue 16 §4): its limit,
components, fees and basis, and `deadline`, `sample-dossier` and `validate` accept its code."""

from __future__ import annotations

import json
from datetime import date

import pytest

from infra.cli import main
from lienthong.catalog import get_catalog

# National code -> (catalog id, limit in working days, agency of its only step).
COMPONENTS = {
    "1.001193": ("dang-ky-khai-sinh", 0, "UBND_XA"),
    "1.004222": ("dang-ky-thuong-tru", 7, "CONG_AN_XA"),
    "1.000656": ("dang-ky-khai-tu", 0, "UBND_XA"),
    "1.003197": ("xoa-dang-ky-thuong-tru", 5, "CONG_AN_XA"),
    "1.014177": ("tro-cap-mai-tang", 10, "BHXH"),
    "1.001731": ("ho-tro-chi-phi-mai-tang", 3, "UBND_XA"),
    "2.000821": ("tu-tuat", 8, "BHXH"),
}
# Result codes found in national procedure sheets (law-2026.md §5); any other code is made up.
KNOWN_RESULT_CODES = {"KQ.G15.000031", "KQ.G15.000034", "KQ.G01.000065", "KQ.G18.000285",
                      "KQ.G18.000047", "KQ.G09.000364", "KQ.G10.001147"}


@pytest.mark.parametrize("code", sorted(COMPONENTS))
def test_each_component_is_a_procedure_with_its_own_limit_components_fees_and_basis(code):
    pid, days, agency = COMPONENTS[code]
    proc = get_catalog().get(code)
    assert proc.id == pid and proc.limit().working_days == days
    assert [s.agency for s in proc.steps] == [agency]
    assert proc.components and proc.fees and proc.legal_basis


@pytest.mark.parametrize("code", sorted(COMPONENTS))
def test_deadline_accepts_every_component_code(code, capsys):
    assert main(["deadline", "--procedure", code, "--received", "2026-11-23T10:00"]) == 0
    due = capsys.readouterr().out.strip()
    days = COMPONENTS[code][1]
    # Received Mon 23/11/2026 10:00; Culture Day 24/11 is off.
    expected = {0: "2026-11-23", 3: "2026-11-27", 5: "2026-12-01", 7: "2026-12-03",
                8: "2026-12-04", 10: "2026-12-08"}[days]
    assert due == f"{expected}T17:00:00+07:00"


@pytest.mark.parametrize("code", sorted(COMPONENTS))
def test_sample_dossier_of_every_component_code_validates(code, capsys, tmp_path):
    assert main(["sample-dossier", "--procedure", code, "--received-at", "2026-11-23T10:00:00+07:00"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["procedure_code"] == code
    # A result the procedure reuses (the death extract, the birth certificate) is not asked of the
    # citizen: the vault intake attaches it before validation, as here.
    for comp in get_catalog().get(code).components:
        if comp.reusable_result:
            payload["components"].append({"code": comp.code, "name": comp.name,
                                          "vault_address": f"vault://UBND_XA/{comp.reusable_result}/x/v1"})
    path = tmp_path / "d.json"
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    assert main(["validate", str(path), "--engine", "plain"]) == 0, capsys.readouterr().out


def test_the_groups_components_name_their_own_procedures():
    cat = get_catalog()
    for pid in ("lien-thong-khai-sinh", "lien-thong-khai-tu"):
        for version in cat.versions[pid]:
            for step in version.steps:
                if step.procedure_code:
                    assert cat.get(step.procedure_code).code == step.procedure_code


def test_no_result_code_is_made_up():
    used = {r.code for p in get_catalog().all_versions() for s in p.steps for r in s.results}
    assert used <= KNOWN_RESULT_CODES, used - KNOWN_RESULT_CODES


def test_death_registration_returns_the_death_certificate_from_1_march_2027():
    cat = get_catalog()
    assert cat.get("1.000656", on=date(2027, 2, 28)).step("khai_tu").results[0].name == "Trích lục khai tử"
    assert cat.get("1.000656", on=date(2027, 3, 1)).step("khai_tu").results[0].name == "Giấy chứng tử"
