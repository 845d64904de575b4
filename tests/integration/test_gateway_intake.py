"""The gateway over real HTTP on PostgreSQL: signed intake, idempotency, replays, every error."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
from sqlalchemy import func, select

from lienthong.db import session_scope
from lienthong.db.models import DossierRow, InboxRow
from lienthong.gateway.app import create_app
from lienthong.gateway.models import GatewayNonce
from lienthong.gateway.settings import GatewaySettings
from lienthong.gateway.signing import signed_headers
from tests.conftest import LiveServer
from tests.integration.gateway_helpers import (
    SECRETS,
    Signed,
    gateway_server,  # noqa: F401
    submission_json,
)


def count(model: type) -> int:
    with session_scope() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


def test_a_signed_dossier_is_stored_in_the_inbox_with_its_dossier_and_answered_202(gateway):
    portal = Signed(gateway)
    r = portal.post("/v1/dossiers", submission_json(1), key="dvc-0001")
    assert r.status_code == 202, r.text
    answer = r.json()
    assert (
        answer["kind"] == "dossier"
        and answer["status_url"] == f"/v1/dossiers/{answer['dossier_code']}"
    )
    with session_scope() as s:
        inbox = s.execute(select(InboxRow)).scalar_one()
        dossier = s.execute(select(DossierRow)).scalar_one()
    assert (inbox.source, inbox.idempotency_key, inbox.kind, inbox.state) == (
        "DVCQG",
        "dvc-0001",
        "dossier",
        "pending",
    )
    assert inbox.dossier_code == dossier.code == answer["dossier_code"] and inbox.response == answer
    assert dossier.status == 2 and dossier.idempotency_key == "DVCQG:dvc-0001"


def test_a_redelivery_gets_the_original_answer_and_makes_no_second_dossier(gateway):
    portal = Signed(gateway)
    body = submission_json(2)
    first = portal.post("/v1/dossiers", body, key="dvc-0002")
    again = portal.post("/v1/dossiers", body, key="dvc-0002")  # new nonce and timestamp, same key
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert count(DossierRow) == 1 and count(InboxRow) == 1


def test_the_same_idempotency_key_with_another_body_is_a_conflict(gateway):
    portal = Signed(gateway)
    assert portal.post("/v1/dossiers", submission_json(3), key="dvc-0003").status_code == 202
    r = portal.post("/v1/dossiers", submission_json(4), key="dvc-0003")
    assert r.status_code == 409 and r.json()["error"] == "idempotency_conflict"
    assert count(DossierRow) == 1


def test_the_same_key_from_two_agencies_is_two_requests(gateway):
    body = submission_json(5)
    a = Signed(gateway, "DVCQG").post("/v1/dossiers", body, key="k-1")
    b = Signed(gateway, "CONG_AN_XA").post("/v1/dossiers", body, key="k-1")
    assert (
        a.status_code == b.status_code == 202
        and a.json()["dossier_code"] != b.json()["dossier_code"]
    )


def test_concurrent_duplicate_deliveries_produce_one_dossier(gateway):
    body = submission_json(6)
    answers: list[httpx.Response] = []
    start = threading.Barrier(8)

    def deliver() -> None:
        client = Signed(gateway)
        start.wait()
        answers.append(client.post("/v1/dossiers", body, key="dvc-race"))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in answers] == [202] * 8
    assert len({r.json()["dossier_code"] for r in answers}) == 1
    assert count(DossierRow) == 1 and count(InboxRow) == 1


def test_a_replayed_request_is_refused_even_after_a_restart(gateway, db, monkeypatch):
    body = submission_json(7)
    h = signed_headers(
        "DVCQG",
        SECRETS["DVCQG"][0],
        "POST",
        "/v1/dossiers",
        body,
        idempotency_key="dvc-7",
        nonce="nonce-once-0007",
    )
    assert httpx.post(gateway + "/v1/dossiers", content=body, headers=h).status_code == 202
    replay = httpx.post(gateway + "/v1/dossiers", content=body, headers=h)
    assert replay.status_code == 401 and replay.json()["error"] == "replayed_nonce"
    # A second gateway (another replica, or this one restarted) knows the nonce from the database.
    with LiveServer(create_app(GatewaySettings())) as other:
        again = httpx.post(other.url + "/v1/dossiers", content=body, headers=h)
    assert again.status_code == 401 and again.json()["error"] == "replayed_nonce"
    assert count(DossierRow) == 1 and count(GatewayNonce) == 1


def test_signatures_that_do_not_match_are_refused(gateway):
    body = submission_json(8)
    good = signed_headers(
        "DVCQG", SECRETS["DVCQG"][0], "POST", "/v1/dossiers", body, idempotency_key="x"
    )
    cases = {
        "wrong secret": signed_headers(
            "DVCQG", "not-the-secret-at-all", "POST", "/v1/dossiers", body, idempotency_key="x"
        ),
        "other path": signed_headers(
            "DVCQG", SECRETS["DVCQG"][0], "POST", "/v1/dossier", body, idempotency_key="x"
        ),
        "uppercase hex": {**good, "X-Signature": good["X-Signature"].upper()},
        "other agency's secret": {**good, "X-Agency": "CONG_AN_XA"},
    }
    for name, headers in cases.items():
        r = httpx.post(gateway + "/v1/dossiers", content=body, headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "invalid_signature", name
    tampered = body.replace(b'"online"', b'"postal"').replace(b'"in_person"', b'"postal"')
    assert tampered != body
    r = httpx.post(gateway + "/v1/dossiers", content=tampered, headers=good)
    assert r.status_code == 401 and r.json()["error"] == "invalid_signature"
    assert count(DossierRow) == 0


def test_a_stale_timestamp_and_an_unknown_agency_are_refused(gateway):
    body = submission_json(9)
    old = Signed(gateway).post("/v1/dossiers", body, timestamp=int(time.time()) - 301)
    future = Signed(gateway).post("/v1/dossiers", body, timestamp=int(time.time()) + 400)
    assert old.status_code == future.status_code == 401 and old.json()["error"] == "stale_timestamp"
    h = signed_headers(
        "HOSPITAL_X", "some-secret-0123456789", "POST", "/v1/dossiers", body, idempotency_key="x"
    )
    r = httpx.post(gateway + "/v1/dossiers", content=body, headers=h)
    assert r.status_code == 401 and r.json()["error"] == "unknown_agency"


def test_both_secrets_of_a_rotation_are_accepted_and_a_retired_one_is_not(gateway, monkeypatch):
    body = submission_json(10)
    old, new = SECRETS["UBND_XA"]
    assert (
        Signed(gateway, "UBND_XA", secret=old).post("/v1/dossiers", body, key="r-1").status_code
        == 202
    )
    assert (
        Signed(gateway, "UBND_XA", secret=new).post("/v1/dossiers", body, key="r-1").status_code
        == 202
    )
    monkeypatch.setenv("LIENTHONG_AGENCY_SECRETS", json.dumps({**SECRETS, "UBND_XA": [new]}))
    with LiveServer(create_app(GatewaySettings())) as rotated:
        r = Signed(rotated.url, "UBND_XA", secret=old).post("/v1/dossiers", body, key="r-2")
        assert r.status_code == 401 and r.json()["error"] == "invalid_signature"
        assert (
            Signed(rotated.url, "UBND_XA", secret=new)
            .post("/v1/dossiers", body, key="r-2")
            .status_code
            == 202
        )


def test_missing_or_malformed_headers_are_a_bad_request(gateway):
    body = submission_json(11)
    good = signed_headers(
        "DVCQG", SECRETS["DVCQG"][0], "POST", "/v1/dossiers", body, idempotency_key="x"
    )
    for drop in ("X-Agency", "X-Timestamp", "X-Nonce", "Idempotency-Key", "X-Signature"):
        r = httpx.post(
            gateway + "/v1/dossiers",
            content=body,
            headers={k: v for k, v in good.items() if k != drop},
        )
        assert (
            r.status_code == 400
            and r.json()["error"] == "bad_headers"
            and drop in r.json()["message"]
        )
    r = httpx.post(
        gateway + "/v1/dossiers", content=body, headers={**good, "X-Timestamp": "yesterday"}
    )
    assert r.status_code == 400


def test_a_payload_that_breaks_the_schema_is_refused_with_its_field_errors(gateway):
    portal = Signed(gateway)
    not_json = portal.post("/v1/dossiers", b"{not json")
    assert not_json.status_code == 422 and not_json.json()["error"] == "invalid_payload"
    payload = json.loads(submission_json(12))
    del payload["procedure_code"]
    payload["child"]["sex"] = "unknown"
    r = portal.post("/v1/dossiers", payload)
    assert r.status_code == 422
    locs = {tuple(e["loc"]) for e in r.json()["errors"]}
    assert ("procedure_code",) in locs and ("child", "sex") in locs
    unknown = portal.post(
        "/v1/dossiers", {**json.loads(submission_json(12)), "procedure_code": "9.999999"}
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["loc"] == ["procedure_code"]
    assert count(DossierRow) == 0 and count(InboxRow) == 0


def test_a_well_formed_dossier_that_breaks_the_law_is_accepted_and_kept(gateway):
    body = submission_json(13, defects=["child_sex_mismatch"])
    r = Signed(gateway).post("/v1/dossiers", body)
    assert r.status_code == 202 and count(DossierRow) == 1


def test_vietnamese_text_is_stored_in_nfc(gateway):
    import unicodedata

    payload = json.loads(submission_json(14))
    payload["applicant"]["full_name"] = unicodedata.normalize("NFD", "Nguyễn Thị Hằng")
    assert Signed(gateway).post("/v1/dossiers", payload).status_code == 202
    with session_scope() as s:
        stored = s.execute(select(DossierRow.payload)).scalar_one()
    assert stored["applicant"]["full_name"] == unicodedata.normalize("NFC", "Nguyễn Thị Hằng")


def test_a_body_over_the_limit_is_refused_before_it_is_read(gateway):
    big = b'{"pad": "' + b"x" * (65 * 1024) + b'"}'
    r = Signed(gateway).post("/v1/dossiers", big)
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(100):
            yield b"x" * 1024

    h = signed_headers(
        "DVCQG", SECRETS["DVCQG"][0], "POST", "/v1/dossiers", b"", idempotency_key="c"
    )
    r = httpx.post(gateway + "/v1/dossiers", content=chunks(), headers=h)
    assert r.status_code == 413


def test_an_agency_over_its_rate_is_told_to_retry_later(db, monkeypatch):
    monkeypatch.setenv("LIENTHONG_AGENCY_SECRETS", json.dumps(SECRETS))
    with LiveServer(create_app(GatewaySettings(rate_per_second=0.01, rate_burst=2))) as server:
        portal, police = Signed(server.url), Signed(server.url, "CONG_AN_XA")
        codes = [portal.post("/v1/dossiers", submission_json(15 + i)).status_code for i in range(3)]
        assert codes == [202, 202, 429]
        r = portal.post("/v1/dossiers", submission_json(20))
        assert r.json()["error"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
        assert police.post("/v1/dossiers", submission_json(21)).status_code == 202  # its own bucket


def test_a_gateway_without_its_database_accepts_nothing_and_says_when_to_retry(monkeypatch):
    from infra.processes import free_port
    from lienthong.settings import reset_settings

    monkeypatch.setenv("LIENTHONG_AGENCY_SECRETS", json.dumps(SECRETS))
    monkeypatch.setenv(
        "LIENTHONG_DATABASE_URL", f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"
    )
    reset_settings()
    try:
        with LiveServer(create_app(GatewaySettings())) as server:
            r = Signed(server.url).post("/v1/dossiers", submission_json(22))
            assert r.status_code == 503 and r.json()["error"] == "database_unavailable"
            assert r.headers["Retry-After"] == "5"
            assert httpx.get(server.url + "/healthz").status_code == 503
            assert Signed(server.url).get("/v1/dossiers/000.00.06.H56-260310-0001").status_code == 503
    finally:
        reset_settings()


def test_the_openapi_document_describes_the_signed_endpoints(gateway):
    doc = httpx.get(gateway + "/openapi.json").json()
    post = doc["paths"]["/v1/dossiers"]["post"]
    assert {p["name"] for p in post["parameters"]} >= {"X-Agency", "X-Signature", "Idempotency-Key"}
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Submission"
    )
    assert "Submission" in doc["components"]["schemas"] and "422" in post["responses"]
    assert httpx.get(gateway + "/healthz").json() == {"status": "ok", "database": "ok"}
