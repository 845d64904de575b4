"""Vault pieces that need no database: addresses, seals, schemas, the rendered PDF, access rules."""

from __future__ import annotations

import io
import json
import random
from datetime import datetime

import pytest
from pypdf import PdfReader

from lienthong.agencies.results import generate
from lienthong.catalog import get_catalog
from lienthong.vault.access import may_read
from lienthong.vault.address import VaultAddress, parse_address
from lienthong.vault.errors import InvalidVaultAddress, ResultDataInvalid
from lienthong.vault.render import render_result_pdf
from lienthong.vault.schemas import schema_dir, validate_result_data
from lienthong.vault.seal import Keyring, canonical_json
from lienthong.vault.settings import VaultSettings


def test_an_address_names_issuer_result_code_local_id_and_version():
    a = parse_address("vault://UBND_XA/KQ.G15.000031/000.00.06.H56-260310-0001.khai_sinh/v2")
    assert a == VaultAddress("UBND_XA", "KQ.G15.000031", "000.00.06.H56-260310-0001.khai_sinh", 2)
    assert str(a.with_version(3)).endswith("/v3") and a.lineage.endswith("khai_sinh")


@pytest.mark.parametrize(
    "bad",
    [
        "vault://UBND_XA/KQ.G15.31/x/v1",
        "vault://ubnd/KQ.G15.000031/x/v1",
        "vault://UBND_XA/KQ.G15.000031/x/v0",
        "s3://UBND_XA/KQ.G15.000031/x/v1",
        "vault://UBND_XA/KQ.G15.000031/a b/v1",
    ],
)
def test_a_malformed_address_is_refused_with_a_vietnamese_message(bad):
    with pytest.raises(InvalidVaultAddress) as err:
        parse_address(bad)
    assert "Địa chỉ kho" in err.value.message_vi


def test_canonical_json_is_the_same_for_the_same_document_whatever_its_form():
    decomposed = "Nguyê\u0303n"  # NFD from a scanner or a Mac
    assert canonical_json({"b": 1, "a": decomposed}) == canonical_json({"a": "Nguyễn", "b": 1})


def test_a_seal_holds_for_its_document_and_breaks_for_any_other(tmp_path):
    ring = Keyring(VaultSettings(keys_dir=tmp_path))
    sig, key_id = ring.sign("UBND_XA", b'{"number":"12"}')
    assert (tmp_path / "UBND_XA.pem").exists()
    assert ring.verify("UBND_XA", b'{"number":"12"}', sig, key_id) is None
    assert ring.verify("UBND_XA", b'{"number":"13"}', sig, key_id)
    # Another agency's key does not vouch for this agency's results.
    other_sig, other_id = ring.sign("BHXH", b'{"number":"12"}')
    assert ring.verify("UBND_XA", b'{"number":"12"}', other_sig, other_id)


def test_keys_from_settings_are_used_instead_of_generated_ones(tmp_path):
    import base64

    seed = base64.b64encode(bytes(range(32))).decode()
    a = Keyring(VaultSettings(keys_dir=tmp_path, signing_keys={"BHXH": seed}))  # type: ignore[dict-item]
    b = Keyring(VaultSettings(keys_dir=tmp_path / "other", signing_keys={"BHXH": seed}))  # type: ignore[dict-item]
    assert a.key_id("BHXH") == b.key_id("BHXH") and not (tmp_path / "BHXH.pem").exists()


def test_every_result_code_of_the_catalog_has_a_json_schema():
    codes = {r.code for p in get_catalog() for s in p.steps for r in s.results}
    shipped = {p.stem for p in schema_dir().glob("*.json")}
    assert codes <= shipped
    for code in codes:
        schema = json.loads((schema_dir() / f"{code}.json").read_text(encoding="utf-8"))
        assert schema["properties"]["ma_ket_qua"] == {"const": code}


def test_what_the_agency_simulator_returns_matches_the_schemas():
    at = datetime.fromisoformat("2026-03-10T10:00:00+07:00")
    decl = {
        "child": {"full_name": "Lê Minh Khang", "sex": "male", "date_of_birth": "2026-03-01"},
        "deceased": {
            "full_name": "Trần Văn Bình",
            "citizen_id": "001055012345",
            "date_of_death": "2026-03-05",
        },
        "applicant": {"citizen_id": "001190012345"},
    }
    for proc in get_catalog():
        for step in proc.steps:
            for result in step.results:
                produced = {"personal_id": "001226012345"}
                value = generate(result.data, {"declaration": decl}, produced, at, random.Random(1))
                validate_result_data(result.code, value)


def test_a_birth_certificate_without_the_personal_id_is_refused():
    with pytest.raises(ResultDataInvalid) as err:
        validate_result_data(
            "KQ.G15.000031",
            {
                "ho_ten": "Lê Minh Khang",
                "ngay_sinh": "2026-03-01",
                "gioi_tinh": "male",
                "so_dang_ky": "12",
            },
        )
    assert "so_dinh_danh" in err.value.message_vi


def test_the_rendered_result_is_readable_vietnamese_and_the_same_bytes_every_time():
    meta = {
        "name": "Trích lục khai tử",
        "issuing_body": "Ủy ban nhân dân xã Tân Phú",
        "number": "0042",
        "result_code": "KQ.G15.000034",
        "address": "vault://UBND_XA/KQ.G15.000034/x/v1",
        "valid_until": None,
        "scope": "Toàn quốc",
        "source_dossier_code": "000.00.06.H56-260310-0001",
        "procedure_code": "1.000656",
        "issued_on": "2026-03-10",
        "signer": "Công chức tư pháp - hộ tịch",
    }
    data = {"ho_ten": "Trần Văn Bình", "ngay_chet": "2026-03-05", "so_trich_luc": "0042"}
    pdf = render_result_pdf(meta, data)
    assert pdf == render_result_pdf(meta, data)
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "TRÍCH LỤC KHAI TỬ" in text and "Trần Văn Bình" in text and "05/03/2026" in text


def test_agencies_read_what_they_issued_or_what_their_procedures_reuse():
    assert may_read("UBND_XA", "UBND_XA", "KQ.G15.000031")[0]
    # The stand-alone funeral allowance (BHXH) and residence deregistration (police) mark the death
    # extract reusable; the tax office takes part in no procedure that reuses it.
    assert may_read("BHXH", "UBND_XA", "KQ.G15.000034")[0]
    assert may_read("CONG_AN_XA", "UBND_XA", "KQ.G15.000034")[0]
    assert not may_read("THUE", "UBND_XA", "KQ.G15.000034")[0]
    assert not may_read("BHXH", "CONG_AN_XA", "KQ.G01.000065")[0]


def test_a_new_seal_signs_rfc8785_bytes_and_a_document_without_a_seal_entry_keeps_the_first_form():
    import rfc8785

    from lienthong.vault.seal import seal_bytes

    doc = {"b": 1.0, "a": "Nguyê\u0303n"}  # a float and an NFD name: the two forms differ on both
    sealed = {**doc, "seal": {"canonicalization": "RFC8785", "key_id": "UBND_XA:0"}}
    assert seal_bytes(sealed) == rfc8785.dumps({**sealed, "a": "Nguyễn"})
    assert seal_bytes(doc) == canonical_json(doc) == '{"a":"Nguyễn","b":1.0}'.encode()
    assert b'"b":1,' in seal_bytes(sealed)


def test_a_rotated_key_verifies_what_it_sealed_before_its_retirement_only(tmp_path):
    from datetime import UTC, timedelta

    ring = Keyring(VaultSettings(keys_dir=tmp_path))
    sig, old_id = ring.sign("UBND_XA", b"before")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    new_id = ring.rotate("UBND_XA", at)
    assert new_id != old_id and ring.key_id("UBND_XA") == new_id
    assert ring.verify("UBND_XA", b"before", sig, old_id, at=at - timedelta(days=1)) is None
    assert "outside its validity" in (ring.verify("UBND_XA", b"before", sig, old_id, at=at) or "")
    fresh = Keyring(VaultSettings(keys_dir=tmp_path))  # another process reads the retired keys
    assert fresh.verify("UBND_XA", b"before", sig, old_id, at=at - timedelta(days=1)) is None
    new_sig, _ = fresh.sign("UBND_XA", b"after")
    assert fresh.verify("UBND_XA", b"after", new_sig, new_id, at=at + timedelta(days=1)) is None
    assert fresh.verify("UBND_XA", b"after", new_sig, new_id, at=at - timedelta(days=1))
