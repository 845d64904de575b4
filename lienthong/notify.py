"""Notifications to citizens and agencies (thông báo): a ``Notifier`` interface, SMS and Zalo
senders that call configured HTTP gateways, and a local sink (the default) that records messages.

Messages are Vietnamese and carry no personal data beyond what delivery needs: the dossier code,
the procedure and the dates, never a name or an ID number. The recipient's phone number is used to
deliver, and is masked wherever it is recorded.
"""

from __future__ import annotations

import json
import threading
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal, Protocol

import httpx
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from lienthong.clock import get_clock
from lienthong.errors import LienThongError
from lienthong.settings import get_settings

Audience = Literal["citizen", "agency"]


class NotifySettings(BaseSettings):
    """``LIENTHONG_NOTIFY_*``: which sender delivers citizen messages, and the gateways."""

    model_config = SettingsConfigDict(env_prefix="LIENTHONG_NOTIFY_", extra="ignore")

    # sink (records to <var_dir>/notifications.jsonl), sms or zalo.
    backend: Literal["sink", "sms", "zalo"] = "sink"
    sms_url: str | None = None
    sms_token: SecretStr | None = None
    sms_brandname: str = "LIENTHONG"
    zalo_url: str | None = None
    zalo_token: SecretStr | None = None
    zalo_template_id: str | None = None
    timeout_seconds: float = 10.0
    # Where the sink writes; default <var_dir>/notifications.jsonl.
    sink_path: Path | None = None


class NotificationFailed(LienThongError):
    """A gateway refused or could not be reached; the caller may retry."""

    code = "notification_failed"


@dataclass(frozen=True)
class Notification:
    """One message. ``to`` is a phone number for citizens, an agency code for agencies."""

    audience: Audience
    to: str
    kind: str
    dossier_code: str
    text: str
    data: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", unicodedata.normalize("NFC", self.text))


@dataclass(frozen=True)
class Delivery:
    channel: str
    message_id: str
    at: datetime


class Notifier(Protocol):
    def send(self, message: Notification) -> Delivery: ...


def mask_phone(value: str) -> str:
    """``0912345678`` -> ``*******678``: enough to tell two numbers apart, not to call one."""
    digits = value.strip()
    return "*" * max(0, len(digits) - 3) + digits[-3:] if len(digits) > 3 else "***"


class LocalSink:
    """The demo's notifier: appends each message, phone masked, as one JSON line."""

    channel = "sink"

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or _settings().sink_path or get_settings().var_dir / "notifications.jsonl"
        self._lock = threading.Lock()

    def send(self, message: Notification) -> Delivery:
        at = get_clock().now()
        record = asdict(message)
        if message.audience == "citizen":
            record["to"] = mask_phone(message.to)
        record["at"] = at.isoformat()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return Delivery(self.channel, f"sink-{message.dossier_code}-{message.kind}", at)

    def read(self) -> list[dict[str, object]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]


class _HttpSender:
    channel = "http"

    def __init__(
        self, url: str, token: SecretStr | None, timeout: float, client: httpx.Client | None = None
    ) -> None:
        self.url, self.token = url, token
        self._client = client or httpx.Client(timeout=timeout)

    def _post(self, body: dict[str, object], message: Notification) -> Delivery:
        headers = {"Authorization": f"Bearer {self.token.get_secret_value()}"} if self.token else {}
        try:
            resp = self._client.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise NotificationFailed(
                f"{self.channel} gateway unreachable for {message.dossier_code}: "
                f"{type(exc).__name__}",
                message_vi="Không gửi được tin nhắn thông báo; hệ thống sẽ thử lại.",
            ) from exc
        if resp.status_code >= 400:
            raise NotificationFailed(
                f"{self.channel} gateway answered {resp.status_code} for {message.dossier_code}",
                message_vi="Cổng gửi tin nhắn từ chối thông báo; hệ thống sẽ thử lại.",
            )
        data = resp.json() if resp.content else {}
        msg_id = str(data.get("message_id") or data.get("msg_id") or data.get("id") or "")
        return Delivery(self.channel, msg_id, get_clock().now())


class SmsSender(_HttpSender):
    """POST ``{to, brandname, text, ref}`` to an SMS gateway (brandname SMS)."""

    channel = "sms"

    def __init__(
        self,
        url: str,
        token: SecretStr | None = None,
        brandname: str = "LIENTHONG",
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(url, token, timeout, client)
        self.brandname = brandname

    def send(self, message: Notification) -> Delivery:
        return self._post(
            {
                "to": message.to,
                "brandname": self.brandname,
                "text": message.text,
                "ref": f"{message.dossier_code}:{message.kind}",
            },
            message,
        )


class ZaloSender(_HttpSender):
    """POST a Zalo notification (ZNS-style: phone, template id, template data) to a gateway."""

    channel = "zalo"

    def __init__(
        self,
        url: str,
        token: SecretStr | None = None,
        template_id: str | None = None,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(url, token, timeout, client)
        self.template_id = template_id

    def send(self, message: Notification) -> Delivery:
        return self._post(
            {
                "phone": message.to,
                "template_id": self.template_id,
                "template_data": {**message.data, "noi_dung": message.text},
                "tracking_id": f"{message.dossier_code}:{message.kind}",
            },
            message,
        )


class AgencyRouter:
    """Citizen messages go to the configured sender; agency messages always go to the sink
    (agencies read them in their one-stop software; the sink is that mailbox in the demo)."""

    def __init__(self, citizen: Notifier, agency: Notifier) -> None:
        self.citizen, self.agency = citizen, agency

    def send(self, message: Notification) -> Delivery:
        return (self.citizen if message.audience == "citizen" else self.agency).send(message)


def _settings() -> NotifySettings:
    return NotifySettings()


def get_notifier(settings: NotifySettings | None = None) -> Notifier:
    """The notifier the settings name; the local sink unless a gateway is configured."""
    s = settings or _settings()
    sink = LocalSink(s.sink_path)
    if s.backend == "sms" and s.sms_url:
        return AgencyRouter(
            SmsSender(s.sms_url, s.sms_token, s.sms_brandname, s.timeout_seconds), sink
        )
    if s.backend == "zalo" and s.zalo_url:
        return AgencyRouter(
            ZaloSender(s.zalo_url, s.zalo_token, s.zalo_template_id, s.timeout_seconds), sink
        )
    return sink


def fmt_dt(at: datetime) -> str:
    """``17 giờ 00 phút, ngày 05/03/2026``, the way the forms write a time."""
    from lienthong.clock import localize

    at = localize(at)
    return f"{at:%H} giờ {at:%M} phút, ngày {at:%d/%m/%Y}"


def citizen_reappointment(
    phone: str, dossier_code: str, procedure_name: str, original_due: datetime, new_due: datetime
) -> Notification:
    text = (
        f"Hồ sơ {dossier_code} ({procedure_name}) chưa thể trả kết quả đúng hẹn. "
        f"Cơ quan giải quyết xin lỗi và hẹn lại: {fmt_dt(new_due)} "
        f"(hẹn cũ: {fmt_dt(original_due)}). Tra cứu bằng mã hồ sơ."
    )
    return Notification(
        "citizen",
        phone,
        "reappointment",
        dossier_code,
        text,
        {"ma_ho_so": dossier_code, "hen_cu": fmt_dt(original_due), "hen_moi": fmt_dt(new_due)},
    )


def agency_warning(
    agency: str, dossier_code: str, subject: str, due_at: datetime, share_left: float
) -> Notification:
    what = (
        "Hồ sơ" if subject == "dossier" else f"Bước xử lý {subject.removeprefix('step:')} của hồ sơ"
    )
    text = (
        f"{what} {dossier_code} sắp đến hạn ({fmt_dt(due_at)}); "
        f"còn {share_left:.0%} thời gian giải quyết."
    )
    return Notification("agency", agency, "warning", dossier_code, text)


def agency_late(agency: str, dossier_code: str, subject: str, due_at: datetime) -> Notification:
    what = (
        "Hồ sơ" if subject == "dossier" else f"Bước xử lý {subject.removeprefix('step:')} của hồ sơ"
    )
    return Notification(
        "agency",
        agency,
        "late",
        dossier_code,
        f"{what} {dossier_code} đã quá hạn giải quyết ({fmt_dt(due_at)}).",
    )


def agency_apology_draft(
    agency: str, dossier_code: str, due_at: datetime, new_due: datetime
) -> Notification:
    text = (
        f"Đã lập dự thảo Phiếu xin lỗi và hẹn lại ngày trả kết quả cho hồ sơ {dossier_code} "
        f"(hạn {fmt_dt(due_at)}, đề xuất hẹn lại {fmt_dt(new_due)}). "
        "Đề nghị lãnh đạo cơ quan phê duyệt."
    )
    return Notification("agency", agency, "apology_draft", dossier_code, text)


# --- durable delivery: the outbox -----------------------------------------------------------------

OUTBOX_TOPIC = "notify"


def enqueue(session: object, message: Notification, key: str) -> None:
    """Queue a message in the outbox inside the caller's transaction; :func:`relay` sends it.

    The row is the commit point: a crash after the sweep's commit still sends, and a rolled-back
    sweep never notifies anyone.
    """
    from sqlalchemy.orm import Session

    from lienthong.db.models import OutboxRow

    assert isinstance(session, Session)
    session.add(
        OutboxRow(
            topic=OUTBOX_TOPIC,
            key=key,
            payload=asdict(message),
            created_at=get_clock().now(),
            attempts=0,
        )
    )


def relay(notifier: Notifier | None = None, *, limit: int = 500) -> dict[str, int]:
    """Send queued messages at least once; a failure is kept for the next relay."""
    from sqlalchemy import select

    from lienthong.db import session_scope
    from lienthong.db.models import OutboxRow

    notifier = notifier or get_notifier()
    sent = failed = 0
    with session_scope() as session:
        rows = (
            session.execute(
                select(OutboxRow)
                .where(OutboxRow.topic == OUTBOX_TOPIC, OutboxRow.sent_at.is_(None))
                .order_by(OutboxRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        for row in rows:
            row.attempts += 1
            try:
                notifier.send(Notification(**row.payload))
            except NotificationFailed as exc:
                row.last_error = exc.message
                failed += 1
                continue
            row.sent_at = get_clock().now()
            sent += 1
    return {"sent": sent, "failed": failed}
