"""The request signature, the agencies' secrets and the per-agency rate limit, without a server."""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess

import pytest
from pydantic import ValidationError

from lienthong.gateway.ratelimit import LocalRateLimiter, retry_after
from lienthong.gateway.schemas import StepResultBody, SupplementBody
from lienthong.gateway.settings import GatewaySettings
from lienthong.gateway.signing import matches, sign, signed_headers

BODY = '{"procedure_code": "1.001193", "note": "Nguyễn"}'.encode()


def test_the_signature_is_hex_hmac_sha256_of_the_five_lines():
    digest = hashlib.sha256(BODY).hexdigest()
    message = f"1773112500\nn-0001-abcd\nPOST\n/v1/dossiers\n{digest}".encode()
    expected = hmac.new(b"s3cret-s3cret-s3cret", message, hashlib.sha256).hexdigest()
    got = sign("s3cret-s3cret-s3cret", "1773112500", "n-0001-abcd", "post", "/v1/dossiers", BODY)
    assert got == expected and got == got.lower() and len(got) == 64


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_the_openssl_recipe_of_the_documentation_gives_the_same_signature(tmp_path):
    body = tmp_path / "body.json"
    body.write_bytes(BODY)
    script = r"""
    TS=1773112500; NONCE=n-0001-abcd; SECRET=s3cret-s3cret-s3cret; PATH_=/v1/dossiers
    DIGEST=$(openssl dgst -sha256 -r "$1" | cut -d' ' -f1)
    printf '%s\n%s\n%s\n%s\n%s' "$TS" "$NONCE" POST "$PATH_" "$DIGEST" \
      | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1
    """
    out = subprocess.run(
        ["bash", "-c", script, "sign", str(body)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == sign("s3cret-s3cret-s3cret", "1773112500", "n-0001-abcd", "POST", "/v1/dossiers", BODY)


def test_during_a_rotation_either_secret_matches_and_a_third_does_not():
    h = signed_headers("UBND_XA", "new-secret-0123456789", "POST", "/v1/dossiers", BODY, timestamp=1)
    args = (h["X-Signature"], h["X-Timestamp"], h["X-Nonce"], "POST", "/v1/dossiers", hashlib.sha256(BODY).hexdigest())
    assert matches(["old-secret-0123456789", "new-secret-0123456789"], *args)
    assert not matches(["old-secret-0123456789", "other-secret-012345678"], *args)
    assert not matches(
        ["new-secret-0123456789"],
        h["X-Signature"],
        h["X-Timestamp"],
        h["X-Nonce"],
        "POST",
        "/v1/dossiers",
        hashlib.sha256(BODY + b" ").hexdigest(),
    )


def test_agency_secrets_come_from_one_json_variable_with_one_or_two_per_agency(monkeypatch):
    monkeypatch.setenv("LIENTHONG_AGENCY_SECRETS", '{"DVCQG": ["a-secret-of-16-chars"]}')
    monkeypatch.setenv("LIENTHONG_GATEWAY_MAX_BODY_BYTES", "2048")
    s = GatewaySettings()
    assert s.agency_secrets["DVCQG"][0].get_secret_value() == "a-secret-of-16-chars"
    assert "a-secret-of-16-chars" not in repr(s) and s.max_body_bytes == 2048
    for bad in (
        '{"DVCQG": []}',
        '{"DVCQG": ["a-secret-of-16-chars", "b-secret-of-16-chars", "c-secret-of-16-chars"]}',
        '{"DVCQG": ["short"]}',
    ):
        monkeypatch.setenv("LIENTHONG_AGENCY_SECRETS", bad)
        with pytest.raises(ValidationError):
            GatewaySettings()


def test_each_agency_has_its_own_rate_limit_with_a_burst_that_refills_over_time():
    now = [0.0]
    buckets = LocalRateLimiter(rate=2.0, burst=3, now=lambda: now[0])
    assert [buckets.take("DVCQG") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = buckets.take("DVCQG")
    assert wait == pytest.approx(0.5) and retry_after(wait) == "1"
    assert buckets.take("BHXH") == 0.0
    now[0] = 0.5
    assert buckets.take("DVCQG") == 0.0 and buckets.take("DVCQG") > 0


def test_a_supplement_body_becomes_the_suspended_runs_input_in_nfc():
    import unicodedata

    body = SupplementBody.model_validate(
        {
            "fields": {"mother.full_name": unicodedata.normalize("NFD", "Trần Thị Hà")},
            "components": [{"code": "GCS", "name": "Giấy chứng sinh", "file": "s3://b/gcs.pdf"}],
        }
    )
    run_input = body.run_input()
    assert run_input["fields"]["mother.full_name"] == unicodedata.normalize("NFC", "Trần Thị Hà")
    assert run_input["components"] == [
        {"code": "GCS", "name": "Giấy chứng sinh", "file": "s3://b/gcs.pdf", "paper": False}
    ]
    assert "payload" not in run_input
    with pytest.raises(ValidationError):
        SupplementBody.model_validate({"unknown": 1})


def test_an_agency_refusal_must_give_its_reason():
    assert StepResultBody.model_validate({"state": "refused", "reason": "Sai thông tin"}).reason
    with pytest.raises(ValidationError):
        StepResultBody.model_validate({"state": "refused"})
    with pytest.raises(ValidationError):
        StepResultBody.model_validate({"state": "pending"})


def test_the_request_path_loads_neither_great_expectations_nor_prefect():
    import sys

    code = (
        "import sys, lienthong.gateway.app, lienthong.gateway.relay, lienthong.gateway.cli; "
        "print(sorted(m for m in ('great_expectations', 'prefect') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
