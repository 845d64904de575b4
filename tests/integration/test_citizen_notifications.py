"""Citizen messages end to end: each event's message through the ZNS and eSMS simulators over
real HTTP, their delivery receipts back through the gateway, retries, fallback and preferences."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from lienthong.calendar import get_calendar
from lienthong.clock import FixedClock, get_clock, set_clock
from lienthong.db import session_scope
from lienthong.db.models import DossierRow
from lienthong.db.store import apply_event
from lienthong.gateway.app import create_app
from lienthong.gateway.settings import GatewaySettings
from lienthong.notify import citizen
from lienthong.notify.citizen import CitizenMessage, emit
from lienthong.notify.simulator import ProviderSimulator, Switches
from lienthong.notify.simulator import create_app as provider_app
from lienthong.notify.sms import count, is_gsm7, unaccent
from lienthong.reception import receive
from lienthong.settings import reset_settings
from samples.dossiers import make_submission
from tests.conftest import LiveServer, until

pytestmark = pytest.mark.integration
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")
ESMS_KEY = "callback-key-for-tests"


@dataclass
class Stack:
    sim: ProviderSimulator
    sim_url: str
    gateway_url: str
    clock: FixedClock

    def messages(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.sim_url}/admin/messages").json()  # type: ignore[no-any-return]

    def switch(self, **values: Any) -> None:
        httpx.put(f"{self.sim_url}/admin/switches", json=values).raise_for_status()


@pytest.fixture
def stack(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    sim = ProviderSimulator(Switches(callback_delay_seconds=0.01))
    with LiveServer(provider_app(sim)) as provider, \
            LiveServer(create_app(GatewaySettings(rate_per_second=1000, rate_burst=1000))) as gateway:
        sw = sim.switches
        sw.zalo_webhook_url = f"{gateway.url}/v1/notify/zalo/events"
        for name, value in {
            "LIENTHONG_NOTIFY_CITIZEN_BACKEND": "providers",
            "LIENTHONG_NOTIFY_ZNS_URL": provider.url, "LIENTHONG_NOTIFY_ZNS_ACCESS_TOKEN": sw.access_token,
            "LIENTHONG_NOTIFY_ZALO_APP_ID": sw.zalo_app_id, "LIENTHONG_NOTIFY_ZALO_OA_SECRET": sw.zalo_oa_secret,
            "LIENTHONG_NOTIFY_ESMS_URL": provider.url, "LIENTHONG_NOTIFY_ESMS_API_KEY": sw.esms_api_key,
            "LIENTHONG_NOTIFY_ESMS_SECRET_KEY": sw.esms_secret_key,
            "LIENTHONG_NOTIFY_ESMS_CALLBACK_KEY": ESMS_KEY, "LIENTHONG_STATUS_PUBLIC_URL": gateway.url,
        }.items():
            monkeypatch.setenv(name, value)
        reset_settings()
        clock = FixedClock(T)
        set_clock(clock)
        try:
            yield Stack(sim, provider.url, gateway.url, clock)
        finally:
            set_clock(None)


def _receive(seed: int = 1, **changes: Any) -> tuple[str, str]:
    sub = make_submission("lien-thong-khai-sinh", random.Random(seed), T)
    sub = sub.model_copy(update=changes)
    receipt = receive(sub, idempotency_key=f"k-{seed}")
    assert sub.applicant.phone
    return receipt.dossier_code, sub.applicant.phone


def _rows(code: str | None = None) -> list[CitizenMessage]:
    with session_scope() as s:
        q = select(CitizenMessage).order_by(CitizenMessage.id)
        if code:
            q = q.where(CitizenMessage.dossier_code == code)
        return list(s.execute(q).scalars())


def _event(code: str, event: str, **kw: Any) -> None:
    with session_scope() as s:
        apply_event(s, code, event, get_clock().now(), get_calendar(), actor="test", **kw)


def test_the_receipt_goes_by_zalo_with_the_appointment_and_its_delivery_is_recorded(stack: Stack):
    code, _ = _receive()
    assert citizen.relay() == {"sent": 1, "pending": 0, "failed": 0}
    [zns] = stack.messages()
    data = zns["template_data"]
    assert zns["provider"] == "zns" and data["ma_ho_so"] == code
    assert data["ngay_hen"] == "17:00 ngày 13/03/2026"  # 3 working days after reception
    assert data["link"].startswith(f"{stack.gateway_url}/tra-cuu/") and code not in data["link"]
    until(lambda: _rows(code)[0].state == "delivered", "the ZNS delivery receipt")
    [row] = _rows(code)
    assert row.channel == "zalo" and row.provider_message_id == zns["msg_id"] and row.delivered_at


def test_a_number_without_zalo_gets_an_unaccented_sms_billed_by_its_segments(stack: Stack):
    _, phone = _receive(2)
    stack.switch(no_zalo=[phone])
    citizen.relay()
    [sms] = stack.messages()
    assert sms["provider"] == "esms" and not sms["is_unicode"] and sms["gsm7_clean"]
    assert "da duoc tiep nhan" in sms["content"] and "Hẹn" not in sms["content"]
    [row] = _rows()
    assert row.channel == "sms" and row.encoding == "gsm7"
    assert row.segments == sms["segments"] == count(sms["content"], "gsm7").segments >= 1
    assert (row.last_error or "").startswith("zalo: ZNS error -118")  # why it went by SMS
    until(lambda: _rows()[0].state == "delivered", "the eSMS callback")
    assert _rows()[0].delivery_status == "esms:5"


def test_accented_sms_is_billed_as_ucs2(stack: Stack, monkeypatch: pytest.MonkeyPatch):
    cfg = citizen.get_config()
    monkeypatch.setattr(citizen, "get_config", lambda: type(cfg)(**{**cfg.__dict__, "sms_encoding": "ucs2"}))
    _receive(3, notify_by=["sms"])
    citizen.relay()
    [sms] = stack.messages()
    assert sms["is_unicode"] and "đã được tiếp nhận" in sms["content"] and not is_gsm7(sms["content"])
    units = len(sms["content"].encode("utf-16-le")) // 2
    assert sms["segments"] == _rows()[0].segments == (1 if units <= 70 else -(-units // 67))
    assert sms["segments"] > count(unaccent(sms["content"]), "gsm7").segments


def test_the_citizens_channel_preference_is_honoured(stack: Stack):
    _receive(4, notify_by=["sms"])
    _receive(5, notify_by=[])
    citizen.relay()
    assert [m["provider"] for m in stack.messages()] == ["esms"]
    assert sorted(r.state != "skipped" for r in _rows()) == [False, True]  # asked for no messages: none sent


def test_a_provider_outage_is_retried_with_back_off_and_sends_once(stack: Stack):
    code, _ = _receive(6)
    stack.switch(fail_next=2)
    assert citizen.relay()["pending"] == 1
    [row] = _rows()
    assert row.attempts == 1 and "503" in (row.last_error or "")
    first_wait = row.next_attempt_at - T
    assert citizen.relay() == {"sent": 0, "pending": 0, "failed": 0}  # not due yet
    stack.clock.set(row.next_attempt_at)
    assert citizen.relay()["pending"] == 1
    second = _rows()[0]
    assert second.next_attempt_at - stack.clock.now() == 2 * first_wait  # exponential
    stack.clock.set(second.next_attempt_at)
    assert citizen.relay()["sent"] == 1
    assert len(stack.messages()) == 1 and _rows()[0].attempts == 3


def test_each_event_is_sent_once(stack: Stack):
    code, _ = _receive(7)
    receive(make_submission("lien-thong-khai-sinh", random.Random(7), T), idempotency_key="k-7")  # redelivery
    assert citizen.collect() == 1 and citizen.collect() == 0
    with session_scope() as s:
        row = s.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one()
        assert emit(s, row, "receipt") is False
    citizen.relay()
    citizen.relay()
    assert len(stack.messages()) == 1 and len(_rows()) == 1


def test_an_event_found_too_late_is_not_told(stack: Stack):
    code, _ = _receive(11)
    stack.clock.set(T + timedelta(days=8))
    citizen.relay()
    assert _rows(code) == [] and stack.messages() == []


def test_supplement_request_result_delivery_and_stop_each_tell_the_citizen(stack: Stack, caplog):
    caplog.set_level(logging.INFO, logger="lienthong")
    code, phone = _receive(8, channel="in_person")
    other, _ = _receive(9)
    _event(code, "start_processing")
    _event(code, "request_supplement", reason="Thiếu giấy tờ",
           items=["Bản sao Giấy chứng sinh (bản chính bị mờ)", "Tờ khai ghi sai ngày sinh"])
    _event(code, "supplement_received")
    _event(code, "resolve")
    _event(code, "deliver")
    _event(other, "start_processing")
    _event(other, "stop", reason="Cơ quan Công an từ chối: thông tin cư trú không khớp")
    citizen.relay()
    kinds = {(r.dossier_code, r.kind): r for r in _rows()}
    assert {k for c, k in kinds if c == code} == {"receipt", "supplement", "result_ready", "delivered"}
    sent = {(m["template_data"]["ma_ho_so"], m["template_id"]): m["template_data"] for m in stack.messages()}
    cfg = citizen.get_config().templates
    supplement = sent[(code, cfg["supplement"].zns_template_id)]
    assert "Bản sao Giấy chứng sinh" in supplement["noi_dung"] and "Tờ khai ghi sai" in supplement["noi_dung"]
    ready = sent[(code, cfg["result_ready"].zns_template_id)]
    assert "Bộ phận tiếp nhận và trả kết quả" in ready["noi_nhan"]  # received in person: collected there
    assert "/tra-cuu/" in sent[(code, cfg["delivered"].zns_template_id)]["link"]
    stopped = sent[(other, cfg["stopped"].zns_template_id)]
    assert "thông tin cư trú không khớp" in stopped["ly_do"]
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "supplement of" in logs and phone not in logs and phone[-3:] in logs


def test_the_reappointment_reaches_the_citizen(stack: Stack):
    from lienthong.sweep import approve_apology, sweep
    from tests.integration.accountability_factory import make_dossier

    code = "000.00.06.H56-260302-0001"
    with session_scope() as s:
        make_dossier(s, code, received_at="2026-03-02T09:00", due_at="2026-03-06T17:00",
                     steps=[{"key": "tham_dinh", "agency": "VPDKDD", "started_at": "2026-03-02T09:00",
                             "due_at": "2026-03-04T17:00", "action": "Kiểm tra hồ sơ"}])
    stack.clock.set(datetime.fromisoformat("2026-03-05T10:00:00+07:00"))
    sweep()
    stack.clock.set(datetime.fromisoformat("2026-03-05T11:00:00+07:00"))
    approve_apology(code, approved=True, approver="lanh-dao",
                    new_due=datetime.fromisoformat("2026-03-11T17:00:00+07:00"))
    citizen.relay()
    [zns] = [m for m in stack.messages() if m["template_data"].get("ma_ho_so") == code]
    assert zns["template_data"]["hen_moi"] == "17:00 ngày 11/03/2026"
    assert zns["template_data"]["hen_cu"] == "17:00 ngày 06/03/2026"


def test_receipts_must_be_authentic(stack: Stack):
    body = json.dumps({"event_name": "user_received_message", "timestamp": "1",
                       "message": {"msg_id": "x", "delivery_time": "1"}})
    forged = httpx.post(f"{stack.gateway_url}/v1/notify/zalo/events", content=body,
                        headers={"X-ZEvent-Signature": "mac=00"})
    assert forged.status_code == 401
    assert httpx.get(f"{stack.gateway_url}/v1/notify/esms/callback?SMSID=x&SendStatus=5").status_code == 401
    ok = httpx.get(f"{stack.gateway_url}/v1/notify/esms/callback?k={ESMS_KEY}&SMSID=unknown&SendStatus=5")
    assert ok.status_code == 200 and ok.json() == {"recorded": False}


def test_a_message_nobody_can_take_fails_visibly(stack: Stack, monkeypatch: pytest.MonkeyPatch):
    _, phone = _receive(10)
    stack.switch(no_zalo=[phone])
    monkeypatch.setenv("LIENTHONG_NOTIFY_ESMS_API_KEY", "revoked-key")
    assert citizen.relay()["failed"] == 1
    [row] = _rows()
    assert row.state == "failed" and "CodeResult 101" in (row.last_error or "")
    assert timedelta(0) <= row.next_attempt_at - T
