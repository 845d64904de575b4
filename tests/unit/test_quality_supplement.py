"""The citizen-facing outcome: one complete request for supplement (Form 02) in Vietnamese."""

from __future__ import annotations

import random
import unicodedata
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from lienthong.clock import VN_TZ
from lienthong.quality import checks
from lienthong.quality.dossiers import SupplementRejected, merge_supplement
from lienthong.quality.suites import QualityConfigError, load_quality_config
from lienthong.quality.validator import supplement_text, validate_submission, validate_submissions
from lienthong.settings import get_settings
from samples.dossiers import make_submission
from tasks.quality import SupplementInput

RECEIVED = datetime(2025, 9, 10, 9, 30, tzinfo=VN_TZ)


def test_every_failing_rule_becomes_one_line_of_a_single_request() -> None:
    s = make_submission("lien-thong-khai-sinh", random.Random(3), RECEIVED,
                        defects=["child_sex_mismatch", "citizen_id_placeholder",
                                 "missing_child_place_of_birth"])
    outcome = validate_submission(s)
    assert not outcome.ok
    assert len(outcome.lines_vi) == 3  # all three in one request, none held back for a second
    header_line, *birth_lines = outcome.lines_vi
    assert header_line.startswith("Số định danh cá nhân của người nộp hồ sơ: là số giả")
    assert any(line.startswith("Giới tính của trẻ: khác giới tính ghi trên Giấy chứng sinh")
               for line in birth_lines)
    assert any(line.startswith("Nơi sinh của trẻ: chưa kê khai") for line in birth_lines)
    for line in outcome.lines_vi:
        assert unicodedata.is_normalized("NFC", line)
        assert "Đề nghị" in line  # every line says what to do, not only what is wrong


def test_form_02_text_numbers_the_lines_under_its_heading() -> None:
    s = make_submission("chuyen-nhuong-dat", random.Random(3), RECEIVED,
                        defects=["transfer_to_self", "missing_parcel_map_sheet"])
    text = supplement_text(validate_submission(s))
    heading, first, second = text.splitlines()
    assert heading.startswith("Hồ sơ chưa đầy đủ, chưa hợp lệ")
    assert first.startswith("1. Số tờ bản đồ: chưa kê khai")
    assert second.startswith("2. Bên nhận chuyển nhượng: trùng với bên chuyển nhượng")


def test_second_round_is_announced_as_such() -> None:
    s = make_submission("lien-thong-khai-tu", random.Random(3), RECEIVED,
                        defects=["death_after_registration"])
    text = supplement_text(validate_submission(s), round_no=2)
    assert text.splitlines()[0].startswith("Yêu cầu bổ sung lần 2")


def test_a_line_names_no_personal_data() -> None:
    s = make_submission("lien-thong-khai-sinh", random.Random(8), RECEIVED,
                        defects=["mother_name_mismatch", "citizen_id_sex_mismatch"])
    outcome = validate_submission(s)
    text = "\n".join(outcome.lines_vi)
    assert s.mother is not None and s.mother.full_name not in text
    assert s.applicant.citizen_id is not None and s.applicant.citizen_id not in text


def test_supplement_with_corrected_fields_makes_the_dossier_valid() -> None:
    s = make_submission("lien-thong-khai-sinh", random.Random(5), RECEIVED,
                        defects=["child_sex_mismatch"])
    assert not validate_submission(s).ok
    assert s.child is not None
    fix = SupplementInput(fields={"birth_certificate.child_sex": s.child.sex})
    corrected = fix.apply_to(s.model_dump(mode="json"))
    assert validate_submission(corrected).ok


def test_supplement_with_a_full_payload_replaces_the_old_one_and_adds_components() -> None:
    s = make_submission("lien-thong-khai-tu", random.Random(5), RECEIVED,
                        defects=["missing_component"])
    fixed = make_submission("lien-thong-khai-tu", random.Random(6), RECEIVED)
    merged = merge_supplement(s.model_dump(mode="json"), new_payload=fixed.model_dump(mode="json"),
                              components=[{"code": "GBT", "name": "Giấy báo tử",
                                           "file": "uploads/gbt-bo-sung.pdf"}])
    assert merged["deceased"]["full_name"] == fixed.deceased.full_name  # type: ignore[union-attr]
    assert [c["file"] for c in merged["components"] if c["code"] == "GBT"] == [
        "uploads/gbt-bo-sung.pdf"]
    assert validate_submission(merged).ok


def test_supplement_that_breaks_the_payload_structure_is_rejected_in_vietnamese() -> None:
    s = make_submission("lien-thong-khai-sinh", random.Random(5), RECEIVED)
    with pytest.raises(SupplementRejected) as exc:
        merge_supplement(s.model_dump(mode="json"), fields={"child.sex": "unknown"})
    assert "child.sex" in exc.value.message_vi


@pytest.mark.parametrize(("name", "valid"), [
    ("Nguyễn Văn An", True),
    ("H'Hen Niê", True),
    ("Lê Thị Ngọc Bảo Trân", True),
    ("Nguyễn Văn 2", False),
    ("An", False),
    # Decomposed text is the same name: normalised, not refused (issue 16 §5).
    (unicodedata.normalize("NFD", "Trần Thị Hà"), True),
    ("Nguyễn " + "Phương " * 8 + "Anh", False),
    ("Nguyễn_Văn An", False),
])
def test_names_are_nfc_vietnamese_without_digits_and_of_sensible_length(name: str,
                                                                        valid: bool) -> None:
    assert checks.is_vietnamese_name(name) is valid


@pytest.mark.parametrize(("value", "valid"), [
    ("079203001234", True),
    ("123456789", True),  # an old 9-digit CMND
    ("000000001", True),  # a placeholder: judged by its own rule, not twice
    ("003203001234", False),  # no province 003
    ("07920300123", False),
    ("079503001234", False),  # born in 2103
    ("0792030012a4", False),
])
def test_citizen_id_structure(value: str, valid: bool) -> None:
    assert checks.citizen_id_well_formed(value, max_year=2025) is valid


def test_citizen_id_sex_and_year_follow_the_fourth_digit() -> None:
    assert checks.citizen_id_sex_matches("079303001234", "female")
    assert not checks.citizen_id_sex_matches("079303001234", "male")
    assert checks.citizen_id_year_matches("079103001234", 1903)
    assert not checks.citizen_id_year_matches("079203001234", 1903)


def test_suite_file_with_an_unknown_rule_kind_is_refused_naming_the_file(tmp_path: Path) -> None:
    src = get_settings().config_dir / "expectations"
    (tmp_path / "_common.yaml").write_text((src / "_common.yaml").read_text(encoding="utf-8"),
                                           encoding="utf-8")
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(
        {"asset": "broken", "rules": [{"kind": "telepathy"}]}), encoding="utf-8")
    with pytest.raises(QualityConfigError, match="broken.yaml: unknown rule kind 'telepathy'"):
        load_quality_config(tmp_path)


def test_form_02_lines_come_from_configuration(tmp_path: Path) -> None:
    src = get_settings().config_dir / "expectations"
    for f in src.glob("*.yaml"):
        text = f.read_text(encoding="utf-8")
        if f.name == "birth.yaml":
            text = text.replace("khác giới tính ghi trên Giấy chứng sinh",
                                "không khớp Giấy chứng sinh")
        (tmp_path / f.name).write_text(text, encoding="utf-8")
    config = load_quality_config(tmp_path)
    s = make_submission("lien-thong-khai-sinh", random.Random(3), RECEIVED,
                        defects=["child_sex_mismatch"])
    [outcome] = validate_submissions([s], config=config, engine="plain")
    assert outcome.lines_vi[0].startswith("Giới tính của trẻ: không khớp Giấy chứng sinh")
