"""Adapters for the providers that carry citizen messages, each following the provider's
documented contract.

- Zalo Notification Service (ZNS): ``POST <base>/message/template`` with the Official Account's
  token in the ``access_token`` header and ``{phone, template_id, template_data, tracking_id}``
  (phone as ``84xxxxxxxxx``). The answer is ``{"error": 0, "message": "Success", "data":
  {"msg_id", "sent_time", "quota"}}``, or a negative ``error`` with a message. Receipts come back
  as the OA webhook event ``user_received_message`` with ``message.msg_id`` and
  ``message.delivery_time``, signed in ``X-ZEvent-Signature`` (``mac=`` SHA-256 of app id, body,
  timestamp and the OA secret key).
- eSMS.vn brandname SMS: ``POST <base>/MainService.svc/json/SendMultipleMessage_V4_post_json/``
  with ``{ApiKey, SecretKey, Phone, Content, Brandname, SmsType, IsUnicode, RequestId,
  CallbackUrl}``; ``CodeResult`` ``"100"`` is accepted, with ``SMSID``. eSMS de-duplicates on
  ``RequestId``. The delivery status is called back by HTTP GET on ``CallbackUrl`` with
  ``SMSID``, ``SendStatus`` (5 sent, 4 rejected), ``SendSuccess``, ``SendFailed``, ``RequestId``.

Both raise :class:`ProviderError`: ``retry`` (the provider is down, slow or overloaded: try the
same channel later) or ``fallback`` (this channel cannot reach the number: try the next one), or
neither (a refusal that retrying will not change, such as a bad key: the message fails and an
operator sees why).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lienthong.notify.sms import Mode, prepare

Outcome = Literal["retry", "fallback", "fail"]


class ProviderSettings(BaseSettings):
    """``LIENTHONG_NOTIFY_*``: where the providers are and the credentials they issued."""

    model_config = SettingsConfigDict(env_prefix="LIENTHONG_NOTIFY_", extra="ignore")

    # "providers" sends through ZNS and eSMS; "sink" (the default) records to the local sink.
    citizen_backend: Literal["sink", "providers"] = "sink"
    zns_url: str = "https://business.openapi.zalo.me"
    zns_access_token: SecretStr | None = None
    zalo_app_id: str = ""
    zalo_oa_secret: SecretStr | None = None
    esms_url: str = "https://rest.esms.vn"
    esms_api_key: SecretStr | None = None
    esms_secret_key: SecretStr | None = None
    # eSMS calls back (unsigned) on <status public URL>/v1/notify/esms/callback?k=<key>; with no
    # key no CallbackUrl is sent and no receipt comes.
    esms_callback_key: SecretStr | None = None
    timeout_seconds: float = 10.0


class ProviderError(Exception):
    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome, self.detail = outcome, detail


@dataclass(frozen=True)
class Outgoing:
    phone: str  # 0xxxxxxxxx
    text: str
    zns_template_id: str
    zns_data: dict[str, str]
    reference: str  # stable per event: tracking_id / RequestId


@dataclass(frozen=True)
class Accepted:
    channel: str
    message_id: str
    encoding: str | None = None
    segments: int | None = None


class Provider(Protocol):
    channel: str

    def send(self, message: Outgoing) -> Accepted: ...


def _transport(exc: Exception, name: str) -> ProviderError:
    return ProviderError("retry", f"{name} unreachable: {type(exc).__name__}")


def _http_error(status: int, name: str) -> ProviderError:
    return ProviderError("retry" if status >= 500 or status == 429 else "fail", f"{name} answered HTTP {status}")


class ZnsProvider:
    channel = "zalo"

    def __init__(self, base_url: str, access_token: str, *, fallback_errors: frozenset[int] = frozenset(),
                 timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self.url = base_url.rstrip("/") + "/message/template"
        self.token, self.fallback_errors = access_token, fallback_errors
        self._client = client or httpx.Client(timeout=timeout)

    def send(self, message: Outgoing) -> Accepted:
        body = {"phone": "84" + message.phone[1:], "template_id": message.zns_template_id,
                "template_data": message.zns_data, "tracking_id": message.reference}
        try:
            resp = self._client.post(self.url, json=body, headers={"access_token": self.token})
        except httpx.HTTPError as exc:
            raise _transport(exc, "ZNS") from exc
        if resp.status_code != 200:
            raise _http_error(resp.status_code, "ZNS")
        data: dict[str, Any] = resp.json()
        error = int(data.get("error", -1))
        if error == 0:
            return Accepted(self.channel, str((data.get("data") or {}).get("msg_id", "")))
        detail = f"ZNS error {error}: {str(data.get('message', ''))[:120]}"
        raise ProviderError("fallback" if error in self.fallback_errors else "fail", detail)


class EsmsProvider:
    channel = "sms"

    def __init__(self, base_url: str, api_key: str, secret_key: str, *, brandname: str, sms_type: str = "2",
                 encoding: Mode = "gsm7", callback_url: str | None = None, timeout: float = 10.0,
                 client: httpx.Client | None = None) -> None:
        self.url = base_url.rstrip("/") + "/MainService.svc/json/SendMultipleMessage_V4_post_json/"
        self.api_key, self.secret_key = api_key, secret_key
        self.brandname, self.sms_type, self.encoding, self.callback_url = brandname, sms_type, encoding, callback_url
        self._client = client or httpx.Client(timeout=timeout)

    def send(self, message: Outgoing) -> Accepted:
        sms = prepare(message.text, self.encoding)
        body = {"ApiKey": self.api_key, "SecretKey": self.secret_key, "Phone": message.phone,
                "Content": sms.text, "Brandname": self.brandname, "SmsType": self.sms_type,
                "IsUnicode": "1" if sms.encoding == "ucs2" else "0", "RequestId": message.reference,
                "Sandbox": "0"}
        if self.callback_url:
            body["CallbackUrl"] = self.callback_url
        try:
            resp = self._client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise _transport(exc, "eSMS") from exc
        if resp.status_code != 200:
            raise _http_error(resp.status_code, "eSMS")
        data: dict[str, Any] = resp.json()
        code = str(data.get("CodeResult", ""))
        if code == "100":
            return Accepted(self.channel, str(data.get("SMSID", "")), sms.encoding, sms.segments)
        detail = f"eSMS CodeResult {code}: {str(data.get('ErrorMessage', ''))[:120]}"
        # 99: unknown error on their side; anything else is a refusal of this request.
        raise ProviderError("retry" if code == "99" else "fail", detail)


def zalo_signature(app_id: str, body: bytes, timestamp: str, oa_secret: str) -> str:
    """The ``X-ZEvent-Signature`` of an OA webhook event."""
    return "mac=" + hashlib.sha256(app_id.encode() + body + timestamp.encode() + oa_secret.encode()).hexdigest()


def zalo_signature_ok(header: str, app_id: str, body: bytes, timestamp: str, oa_secret: str) -> bool:
    return hmac.compare_digest(header or "", zalo_signature(app_id, body, timestamp, oa_secret))


def esms_callback_url(settings: ProviderSettings) -> str | None:
    from urllib.parse import quote

    from lienthong.citizen.capability import base_url

    if settings.esms_callback_key is None:
        return None
    return f"{base_url()}/v1/notify/esms/callback?k={quote(settings.esms_callback_key.get_secret_value())}"


def configured(cfg: Any, settings: ProviderSettings | None = None) -> dict[str, Provider]:
    """The providers the settings give credentials for, by channel (``cfg``: the NotifyConfig)."""
    s = settings or ProviderSettings()
    out: dict[str, Provider] = {}
    if s.zns_access_token is not None:
        out["zalo"] = ZnsProvider(s.zns_url, s.zns_access_token.get_secret_value(),
                                  fallback_errors=cfg.zalo_fallback_errors, timeout=s.timeout_seconds)
    if s.esms_api_key is not None and s.esms_secret_key is not None:
        out["sms"] = EsmsProvider(s.esms_url, s.esms_api_key.get_secret_value(), s.esms_secret_key.get_secret_value(),
                                  brandname=cfg.sms_brandname, sms_type=cfg.sms_type,
                                  encoding=cfg.sms_encoding,  # type: ignore[arg-type]
                                  callback_url=esms_callback_url(s), timeout=s.timeout_seconds)
    return out
