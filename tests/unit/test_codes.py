from datetime import date

import pytest

from lienthong.codes import (
    CitizenId,
    LegacyId,
    format_dossier_code,
    make_citizen_id,
    parse_citizen_id,
    parse_dossier_code,
    parse_procedure_code,
    parse_result_code,
)
from lienthong.errors import (
    InvalidCitizenId,
    InvalidDossierCode,
    InvalidProcedureCode,
    InvalidResultCode,
)


def test_citizen_id_reveals_province_century_sex_and_birth_year():
    cid = parse_citizen_id("079303001234", today=date(2026, 1, 1))
    assert isinstance(cid, CitizenId)
    assert (cid.province_code, cid.sex, cid.birth_year) == ("079", "female", 2003)
    assert cid.province == "TP Hồ Chí Minh"


def test_male_born_in_the_1900s():
    cid = parse_citizen_id("001085123456", today=date(2026, 1, 1))
    assert (cid.sex, cid.birth_year) == ("male", 1985)


def test_nine_digit_old_identity_card_is_a_separate_type():
    assert isinstance(parse_citizen_id("123456789"), LegacyId)


@pytest.mark.parametrize("value", ["000000001", "000000000000"])
def test_placeholder_numbers_are_rejected(value):
    with pytest.raises(InvalidCitizenId, match="placeholder"):
        parse_citizen_id(value)


def test_unknown_province_code_is_rejected_with_a_vietnamese_message():
    with pytest.raises(InvalidCitizenId) as exc:
        parse_citizen_id("003085123456")
    assert "003" in exc.value.message and "Mã tỉnh" in exc.value.message_vi


def test_birth_year_in_the_future_is_rejected():
    with pytest.raises(InvalidCitizenId, match="future"):
        parse_citizen_id("001227123456", today=date(2026, 6, 1))


@pytest.mark.parametrize("value", [79203001234, "07920300123", "0792030012345", "07920300123a"])
def test_ids_must_be_strings_of_12_or_9_digits(value):
    with pytest.raises(InvalidCitizenId):
        parse_citizen_id(value)


def test_error_messages_do_not_reveal_the_whole_number():
    with pytest.raises(InvalidCitizenId) as exc:
        parse_citizen_id("003085123456")
    assert "003085123456" not in str(exc.value)


def test_generated_ids_parse_back_to_what_they_were_made_from():
    cid = parse_citizen_id(make_citizen_id("048", "female", 2026, 42), today=date(2026, 12, 31))
    assert (cid.province_code, cid.sex, cid.birth_year) == ("048", "female", 2026)


def test_dossier_code_round_trip():
    code = format_dossier_code("000.00.06.H56", date(2023, 10, 27), 361)
    assert code == "000.00.06.H56-231027-0361"
    parsed = parse_dossier_code(code, received_on=date(2023, 10, 27))
    assert (parsed.unit, parsed.received_on, parsed.sequence) == ("000.00.06.H56", date(2023, 10, 27), 361)


def test_dossier_code_date_must_equal_the_reception_date():
    with pytest.raises(InvalidDossierCode, match="differs"):
        parse_dossier_code("000.00.06.H56-231027-0361", received_on=date(2023, 10, 28))


@pytest.mark.parametrize("code", ["000.00.06.H56-231327-0361", "H56-231027-0361", "000.00.06.H56-231027-361"])
def test_malformed_dossier_codes_are_rejected(code):
    with pytest.raises(InvalidDossierCode):
        parse_dossier_code(code)


def test_alternative_ministry_format_is_accepted_when_parsing():
    parsed = parse_dossier_code("G09.20-20260609-0092637")
    assert parsed.received_on == date(2026, 6, 9) and parsed.sequence == 92637


def test_sequence_beyond_9999_cannot_be_formatted():
    with pytest.raises(InvalidDossierCode):
        format_dossier_code("000.00.06.H56", date(2026, 1, 5), 10000)


def test_procedure_codes_with_and_without_local_suffix():
    assert str(parse_procedure_code("1.001193")) == "1.001193"
    assert parse_procedure_code("1.001193.000.00.00.H56").local_suffix == ".000.00.00.H56"
    with pytest.raises(InvalidProcedureCode):
        parse_procedure_code("4.001193")


def test_result_codes():
    assert str(parse_result_code("KQ.G15.000031")) == "KQ.G15.000031"
    with pytest.raises(InvalidResultCode):
        parse_result_code("KQ.15.000031")
