"""The providers' delivery reports, received by the gateway.

- ``POST /v1/notify/zalo/events``: the OA webhook. Only ``user_received_message`` events with a
  ``message.delivery_time`` are receipts of ZNS messages; the signature ``X-ZEvent-Signature`` is
  checked against the OA secret key, and an unsigned or forged event gets 401.
- ``GET /v1/notify/esms/callback``: eSMS calls back by GET, unsigned; the URL we gave carries a
  key (``k``), and a request without it gets 401. ``SendStatus`` 5 is delivered, 4 rejected; 1, 2
  and 7 are interim (pending approval, waiting, with the telco).

Both answer 200 to a report about a message we do not know, so the provider stops retrying it.
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from lienthong.clock import get_clock
from lienthong.db import session_scope
from lienthong.notify.citizen import record_receipt
from lienthong.notify.providers import ProviderSettings, zalo_signature_ok

log = logging.getLogger("lienthong.notify.callbacks")
ESMS_FINAL = {"5": True, "4": False}


def _unauthorized(message_vi: str) -> JSONResponse:
    return JSONResponse({"error": "invalid_signature", "message": "the report is not authenticated",
                         "message_vi": message_vi}, status_code=401)


def _record(channel: str, reference: str, message_id: str, delivered: bool | None, at: datetime,
            status: str) -> bool:
    with session_scope() as s:
        return record_receipt(s, channel, reference, message_id, delivered, at, status)


def router() -> APIRouter:
    r = APIRouter(tags=["delivery reports"])

    @r.post("/v1/notify/zalo/events", summary="Zalo OA webhook (ZNS delivery receipts)")
    async def zalo_events(request: Request) -> Any:
        s = ProviderSettings()
        body = await request.body()
        try:
            event = json.loads(body)
        except json.JSONDecodeError:
            return JSONResponse({"error": "invalid_payload"}, status_code=400)
        ts = str(event.get("timestamp", ""))
        secret = s.zalo_oa_secret.get_secret_value() if s.zalo_oa_secret else ""
        if not secret or not zalo_signature_ok(request.headers.get("x-zevent-signature", ""), s.zalo_app_id,
                                               body, ts, secret):
            return _unauthorized("Chữ ký sự kiện Zalo không hợp lệ.")
        message = event.get("message") or {}
        if event.get("event_name") != "user_received_message" or not message.get("delivery_time"):
            return {"recorded": False}
        try:
            at = datetime.fromtimestamp(int(message["delivery_time"]) / 1000, UTC)
        except (TypeError, ValueError):
            at = get_clock().now()
        known = await run_in_threadpool(_record, "zalo", str(message.get("tracking_id") or ""),
                                        str(message.get("msg_id", "")), True, at, "user_received_message")
        return {"recorded": known}

    @r.get("/v1/notify/esms/callback", summary="eSMS delivery status callback")
    async def esms_callback(request: Request) -> Any:
        s = ProviderSettings()
        q = request.query_params
        key = s.esms_callback_key.get_secret_value() if s.esms_callback_key else ""
        if not key or not hmac.compare_digest(q.get("k", ""), key):
            return _unauthorized("Khóa của địa chỉ nhận báo cáo gửi tin không đúng.")
        status = q.get("SendStatus", "")
        known = await run_in_threadpool(_record, "sms", q.get("RequestId", ""), q.get("SMSID", ""),
                                        ESMS_FINAL.get(status), get_clock().now(), f"esms:{status}")
        return {"recorded": known}

    return r
