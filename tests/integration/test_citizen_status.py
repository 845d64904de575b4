"""The status capability over real HTTP: the bare code answers nothing, the link of the receipt
answers the citizen's view (no personal data), tokens are rate limited in Redis and revocable."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
import redis
from sqlalchemy import select

from lienthong.calendar import get_calendar
from lienthong.citizen import capability
from lienthong.citizen.ratelimit import PREFIX, StatusLimiter
from lienthong.db import session_scope
from lienthong.db.models import DossierRow
from lienthong.db.store import apply_event
from lienthong.gateway.app import create_app
from lienthong.gateway.settings import GatewaySettings
from lienthong.reception import receive
from lienthong.settings import reset_settings
from samples.dossiers import make_submission
from tests.conftest import LiveServer
from tests.integration.gateway_helpers import SECRETS, Signed

pytestmark = pytest.mark.integration
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")


def _forget_limits() -> None:
    r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    for key in r.scan_iter(f"{PREFIX}ip:127.0.0.1:*"):
        r.delete(key)


@pytest.fixture
def gateway(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("LIENTHONG_AGENCY_SECRETS", json.dumps(SECRETS))
    monkeypatch.setenv("LIENTHONG_STATUS_PER_TOKEN_PER_MINUTE", "5")
    monkeypatch.setenv("LIENTHONG_STATUS_PER_IP_PER_MINUTE", "1000")
    reset_settings()
    _forget_limits()
    with LiveServer(create_app(GatewaySettings(rate_per_second=1000, rate_burst=1000))) as server:
        monkeypatch.setenv("LIENTHONG_STATUS_PUBLIC_URL", server.url)
        yield server.url


def _dossier(seed: int = 1) -> tuple[str, str, object]:
    sub = make_submission("lien-thong-khai-sinh", random.Random(seed), T)
    code = receive(sub).dossier_code
    with session_scope() as s:
        uid = s.execute(select(DossierRow.uid).where(DossierRow.code == code)).scalar_one()
        return code, capability.current_url(s, uid), sub


def _event(code: str, event: str, **kw: object) -> None:
    with session_scope() as s:
        apply_event(s, code, event, T, get_calendar(), actor="test", **kw)  # type: ignore[arg-type]


def test_the_bare_code_answers_nothing_and_only_handlers_may_read_it(gateway: str):
    code, _, _ = _dossier()
    bare = httpx.get(f"{gateway}/v1/dossiers/{code}")
    assert bare.status_code == 401 and "Giấy tiếp nhận" in bare.json()["message_vi"]
    assert Signed(gateway).get(f"/v1/dossiers/{code}").status_code == 200  # the national portal
    outsider = Signed(gateway, agency="BHXH").get(f"/v1/dossiers/{code}")  # no step of it, did not send it
    assert outsider.status_code == 403
    forged = Signed(gateway, secret="not-the-secret").get(f"/v1/dossiers/{code}")
    assert forged.status_code == 401


def test_the_link_of_the_receipt_shows_the_citizen_view_without_personal_data(gateway: str):
    code, url, sub = _dossier(2)
    assert url.startswith(f"{gateway}/tra-cuu/") and code not in url
    page = httpx.get(url)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    assert code in html and "Được tiếp nhận" in html and "17:00 ngày 13/03/2026" in html
    for personal in (sub.applicant.full_name, sub.applicant.citizen_id, sub.applicant.phone,  # type: ignore[attr-defined]
                     sub.child.full_name if sub.child else None):  # type: ignore[attr-defined]
        if personal:
            assert personal not in html
    data = httpx.get(url.replace("/tra-cuu/", "/v1/status/")).json()
    assert data["dossier_code"] == code and data["status"] == 2 and "applicant" not in json.dumps(data)


def test_the_page_says_what_is_missing_then_where_to_collect(gateway: str):
    code, url, _ = _dossier(3)
    _event(code, "start_processing")
    _event(code, "request_supplement", reason="Thiếu giấy tờ",
           items=["Bản chính Giấy chứng sinh", "Tờ khai có chữ ký của người đi khai sinh"])
    html = httpx.get(url).text
    assert "Cần bổ sung" in html and "Bản chính Giấy chứng sinh" in html and "Tờ khai có chữ ký" in html
    _event(code, "supplement_received")
    _event(code, "resolve")
    html = httpx.get(url).text
    assert "Đã xử lý xong" in html and "Nơi nhận kết quả" in html and "Cần bổ sung" not in html


def test_a_forged_or_revoked_token_gets_the_same_404(gateway: str):
    code, url, _ = _dossier(4)
    token = url.rsplit("/", 1)[1]
    other_mac = token[:32] + ("A" if token[32] != "A" else "B") + token[33:]
    assert httpx.get(f"{gateway}/tra-cuu/{other_mac}").status_code == 404
    assert httpx.get(f"{gateway}/tra-cuu/{code}").status_code == 404
    with session_scope() as s:
        fresh = capability.revoke(s, code, by="mot-cua", reason="giấy tiếp nhận bị mất")
    gone = httpx.get(url)
    assert gone.status_code == 404 and "thu hồi" in gone.text
    assert httpx.get(fresh).status_code == 200 and fresh != url


def test_tokens_are_rate_limited_in_redis(gateway: str):
    _, url, _ = _dossier(5)
    # The limits count in fixed one-minute windows: start the burst early in a window, so that a
    # slow machine does not spread the seven requests over two windows (each would then pass).
    if time.time() % 60 > 40:
        time.sleep(61 - time.time() % 60)
    answers = [httpx.get(url).status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    limited = httpx.get(url)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    token = url.rsplit("/", 1)[1]
    keys = [k.decode() for k in redis.Redis.from_url("redis://127.0.0.1:6379/0").scan_iter(f"{PREFIX}t:*")]
    assert keys and not any(token in k for k in keys)  # counted in Redis, under a hash of the token


def test_one_address_trying_many_tokens_is_stopped():
    now = [1_000_000.0]
    limiter = StatusLimiter("redis://127.0.0.1:6379/0", per_token=100, per_ip=3, now=lambda: now[0])
    ip = f"198.51.100.{random.randrange(255)}"
    assert [limiter.check(f"guess-{i}", ip) == 0 for i in range(4)] == [True, True, True, False]
    now[0] += 60
    assert limiter.check("guess-5", ip) == 0  # a new window


def test_without_redis_the_limits_still_hold_in_memory():
    limiter = StatusLimiter("redis://127.0.0.1:1/0", per_token=2, per_ip=100)
    assert [limiter.check("t", "203.0.113.9") == 0 for _ in range(3)] == [True, True, False]


def test_the_receipts_qr_code_carries_the_link(gateway: str):
    from lienthong.forms.context import form_context

    code, url, _ = _dossier(6)
    with session_scope() as s:
        row = s.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one()
        assert form_context(s, row, "01")["status_url"] == url


def test_the_steps_are_shown_with_their_agencies(gateway: str):
    from tests.integration.accountability_factory import make_dossier

    with session_scope() as s:
        row = make_dossier(s, "000.00.06.H56-260302-0009", received_at="2026-03-02T09:00", due_at="2026-03-06T17:00",
                           steps=[{"key": "tham_dinh", "agency": "VPDKDD", "started_at": "2026-03-02T09:00",
                                   "due_at": "2026-03-04T17:00", "action": "Kiểm tra hồ sơ", "status": "done",
                                   "finished_at": "2026-03-03T10:00"}])
        url = capability.current_url(s, row.uid)
    steps = httpx.get(url.replace("/tra-cuu/", "/v1/status/")).json()["steps"]
    assert steps[0]["action"] == "Kiểm tra hồ sơ" and steps[0]["status_label"] == "Đã xong"
    assert steps[0]["agency"] != "VPDKDD"  # the agency's name, from config/agencies.yaml
