"""Local simulators of the two message providers, over real HTTP, following their contracts
(see :mod:`lienthong.notify.providers`): Zalo ZNS (``POST /message/template``) and eSMS.vn
(``POST /MainService.svc/json/SendMultipleMessage_V4_post_json/``), in one app.

They stand in for providers this project cannot call. Switches (``LIENTHONG_NOTIFY_SIM_*`` at
start, or ``PUT /admin/switches``):

- ``failure_rate``: share of calls answered HTTP 503; ``fail_next``: the next N calls are;
- ``latency_ms``: real delay before every answer;
- ``no_zalo``: numbers (``0xxxxxxxxx``) with no Zalo account: ZNS answers error -118;
- ``undelivered``: numbers whose handset never gets the message: the receipt says so;
- ``callbacks``: send delivery receipts (on by default), ``callback_delay_seconds`` after the
  message: ZNS as the OA webhook event ``user_received_message`` POSTed to ``zalo_webhook_url``
  and signed (``X-ZEvent-Signature``); eSMS as an HTTP GET on the request's ``CallbackUrl``,
  retried at most 5 times as eSMS documents.

``GET /admin/messages`` lists what was accepted (phones masked), with the encoding and the
segments billed for each SMS. Every decision is a function of ``seed`` and the request's
reference, so runs repeat.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from lienthong.notify.messages import mask_phone
from lienthong.notify.providers import zalo_signature
from lienthong.notify.sms import count, is_gsm7

log = logging.getLogger("lienthong.notify.simulator")
ESMS_PATH = "/MainService.svc/json/SendMultipleMessage_V4_post_json/"


class Switches(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIENTHONG_NOTIFY_SIM_", extra="ignore")

    failure_rate: float = 0.0
    fail_next: int = 0
    latency_ms: int = 0
    seed: int = 0
    no_zalo: list[str] = []
    undelivered: list[str] = []
    callbacks: bool = True
    callback_delay_seconds: float = 0.05
    zalo_webhook_url: str | None = None
    # The credentials the simulated providers issued to us.
    access_token: str = "sim-zns-access-token"
    zalo_app_id: str = "sim-zalo-app"
    zalo_oa_secret: str = "sim-zalo-oa-secret"
    esms_api_key: str = "sim-esms-api-key"
    esms_secret_key: str = "sim-esms-secret-key"
    brandnames: list[str] = ["LIENTHONG"]


class SwitchUpdate(BaseModel):
    failure_rate: float | None = None
    fail_next: int | None = None
    latency_ms: int | None = None
    no_zalo: list[str] | None = None
    undelivered: list[str] | None = None
    callbacks: bool | None = None
    callback_delay_seconds: float | None = None
    zalo_webhook_url: str | None = None


class ProviderSimulator:
    def __init__(self, switches: Switches | None = None) -> None:
        self.switches = switches or Switches()
        self._lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.callbacks: list[dict[str, Any]] = []
        self._esms_by_request: dict[str, str] = {}
        self._client = httpx.Client(timeout=5.0)
        self._calls = 0

    # --- switches -------------------------------------------------------------------------
    def outage(self, reference: str) -> bool:
        with self._lock:
            self._calls += 1
            if self.switches.fail_next > 0:
                self.switches.fail_next -= 1
                return True
            calls = self._calls
        rng = random.Random(f"{self.switches.seed}:{reference}:{calls}")
        return rng.random() < self.switches.failure_rate

    # --- ZNS -------------------------------------------------------------------------------
    def zns(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        sw = self.switches
        if token != sw.access_token:
            return {"error": -124, "message": "Access token is invalid"}
        phone, template_id, data = body.get("phone"), body.get("template_id"), body.get("template_data")
        if not (isinstance(phone, str) and phone.isdigit() and phone.startswith("84") and len(phone) == 11):
            return {"error": -108, "message": "Phone number is invalid"}
        if not (isinstance(template_id, str) and template_id) or not isinstance(data, dict) \
                or not all(isinstance(v, str) for v in data.values()):
            return {"error": -100, "message": "Invalid parameter: template_id and template_data (strings)"}
        local = "0" + phone[2:]
        if local in sw.no_zalo:
            return {"error": -118, "message": "Zalo account not existed"}
        msg_id = uuid.uuid4().hex
        record = {"provider": "zns", "msg_id": msg_id, "to": mask_phone(local), "template_id": template_id,
                  "template_data": data, "tracking_id": body.get("tracking_id"), "at": time.time()}
        with self._lock:
            self.messages.append(record)
        if sw.callbacks and sw.zalo_webhook_url:
            delivered = local not in sw.undelivered
            self._later(lambda: self._zalo_event(msg_id, body.get("tracking_id"), delivered))
        return {"error": 0, "message": "Success",
                "data": {"msg_id": msg_id, "sent_time": str(int(time.time() * 1000)),
                         "quota": {"dailyQuota": "500", "remainingQuota": "499"}}}

    def _zalo_event(self, msg_id: str, tracking_id: Any, delivered: bool) -> None:
        if not delivered:  # ZNS sends no event for a message that never reached the phone
            self._note("zns", msg_id, "never_delivered", 0)
            return
        sw = self.switches
        ts = str(int(time.time() * 1000))
        event = {"app_id": sw.zalo_app_id, "event_name": "user_received_message", "timestamp": ts,
                 "sender": {"id": "sim-oa"}, "recipient": {"id": hashlib.sha256(msg_id.encode()).hexdigest()[:16]},
                 "message": {"msg_id": msg_id, "tracking_id": tracking_id, "delivery_time": ts}}
        body = json.dumps(event).encode()
        headers = {"Content-Type": "application/json", "X-ZEvent-Signature":
                   zalo_signature(sw.zalo_app_id, body, ts, sw.zalo_oa_secret)}
        assert sw.zalo_webhook_url
        self._deliver("zns", msg_id, lambda: self._client.post(sw.zalo_webhook_url or "", content=body,
                                                               headers=headers))

    # --- eSMS ------------------------------------------------------------------------------
    def esms(self, body: dict[str, Any]) -> dict[str, Any]:
        sw = self.switches
        if body.get("ApiKey") != sw.esms_api_key or body.get("SecretKey") != sw.esms_secret_key:
            return {"CodeResult": "101", "ErrorMessage": "Authorize Failed"}
        phone, content = str(body.get("Phone", "")), body.get("Content")
        if not (phone.isdigit() and len(phone) in (10, 11)) or not isinstance(content, str) or not content:
            return {"CodeResult": "118", "ErrorMessage": "Phone or Content is invalid"}
        if body.get("Brandname") not in sw.brandnames:
            return {"CodeResult": "104", "ErrorMessage": "Brandname is not registered"}
        request_id = str(body.get("RequestId") or "")
        with self._lock:
            if request_id and request_id in self._esms_by_request:  # documented de-duplication
                return {"CodeResult": "100", "CountRegenerate": 0, "SMSID": self._esms_by_request[request_id]}
        unicode = str(body.get("IsUnicode", "0")) == "1"
        billed = count(content, "ucs2" if unicode else "gsm7")
        sms_id = uuid.uuid4().hex[:31]
        record = {"provider": "esms", "sms_id": sms_id, "to": mask_phone(phone), "content": content,
                  "is_unicode": unicode, "encoding": billed.encoding, "segments": billed.segments,
                  "gsm7_clean": is_gsm7(content), "request_id": request_id, "at": time.time()}
        with self._lock:
            self.messages.append(record)
            if request_id:
                self._esms_by_request[request_id] = sms_id
        callback = body.get("CallbackUrl")
        if sw.callbacks and isinstance(callback, str) and callback:
            local = "0" + phone[2:] if phone.startswith("84") else phone
            delivered = local not in sw.undelivered
            self._later(lambda: self._esms_callback(callback, sms_id, request_id, phone, delivered))
        return {"CodeResult": "100", "CountRegenerate": 0, "SMSID": sms_id}

    def _esms_callback(self, url: str, sms_id: str, request_id: str, phone: str, delivered: bool) -> None:
        params = {"SMSID": sms_id, "SendFailed": "0" if delivered else "1", "SendStatus": "5" if delivered else "4",
                  "SendSuccess": "1" if delivered else "0", "TotalPrice": "0", "TotalReceiver": "1",
                  "TotalSent": "1", "RequestId": request_id, "TypeId": "2", "telcoid": "1", "phonenumber": phone}
        parts = urlsplit(url)
        query = "&".join(q for q in (parts.query, urlencode(params)) if q)
        target = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        self._deliver("esms", sms_id, lambda: self._client.get(target), attempts=5)

    # --- callbacks -------------------------------------------------------------------------
    def _later(self, fn: Any) -> None:
        timer = threading.Timer(self.switches.callback_delay_seconds, fn)
        timer.daemon = True
        timer.start()

    def _note(self, provider: str, ref: str, state: str, attempts: int, status: int | None = None) -> None:
        with self._lock:
            self.callbacks.append({"provider": provider, "ref": ref, "state": state, "attempts": attempts,
                                   "status": status})

    def _deliver(self, provider: str, ref: str, send: Any, attempts: int = 5) -> None:
        delay = 0.05
        for attempt in range(1, attempts + 1):
            try:
                status = send().status_code
            except httpx.HTTPError as exc:
                log.info("%s callback %s: %s (attempt %d)", provider, ref, type(exc).__name__, attempt)
                status = None
            if status is not None and status < 500:
                self._note(provider, ref, "delivered" if status < 300 else "rejected", attempt, status)
                return
            time.sleep(delay)
            delay *= 2
        self._note(provider, ref, "gave_up", attempts)


def create_app(sim: ProviderSimulator | None = None) -> FastAPI:
    sim = sim or ProviderSimulator()
    app = FastAPI(title="Liên Thông message-provider simulator (Zalo ZNS, eSMS.vn)", version="1")
    app.state.simulator = sim

    async def _gate(reference: str) -> JSONResponse | None:
        if sim.switches.latency_ms:
            await asyncio.sleep(sim.switches.latency_ms / 1000)
        if sim.outage(reference):
            return JSONResponse({"error": "simulated outage"}, status_code=503)
        return None

    @app.post("/message/template")
    async def zns(request: Request) -> Any:
        body = await request.json()
        down = await _gate(str(body.get("tracking_id", "")))
        return down or sim.zns(request.headers.get("access_token", ""), body)

    @app.post(ESMS_PATH)
    async def esms(request: Request) -> Any:
        body = await request.json()
        down = await _gate(str(body.get("RequestId", "")))
        return down or sim.esms(body)

    @app.get("/admin/messages")
    def messages() -> list[dict[str, Any]]:
        with sim._lock:
            return list(sim.messages)

    @app.get("/admin/callbacks")
    def callbacks() -> list[dict[str, Any]]:
        with sim._lock:
            return list(sim.callbacks)

    @app.get("/admin/switches")
    def get_switches() -> dict[str, Any]:
        return sim.switches.model_dump(exclude={"access_token", "zalo_oa_secret", "esms_secret_key"})

    @app.put("/admin/switches")
    def put_switches(update: SwitchUpdate) -> dict[str, Any]:
        for name, value in update.model_dump(exclude_unset=True).items():
            setattr(sim.switches, name, value)
        return get_switches()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main(argv: list[str] | None = None) -> int:
    """``python -m lienthong.notify.simulator [--port 28720]``: serve both simulated providers."""
    import argparse

    import uvicorn

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8730)
    args = p.parse_args(argv)
    uvicorn.run(create_app(), host=args.host, port=args.port, access_log=False)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
