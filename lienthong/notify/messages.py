"""Notifications to agencies (thông báo): a ``Notifier`` interface, the local sink that records
messages (the agencies' mailbox in the demo, and the citizens' too unless providers are set), and
the outbox relay of agency messages. Citizen messages have their own outbox:
:mod:`lienthong.notify.citizen`.

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

from pydantic_settings import BaseSettings, SettingsConfigDict

from lienthong.clock import get_clock
from lienthong.errors import LienThongError
from lienthong.settings import get_settings

Audience = Literal["citizen", "agency"]


class NotifySettings(BaseSettings):
    """``LIENTHONG_NOTIFY_*`` of the sink (the providers' own are in :mod:`lienthong.notify.providers`)."""

    model_config = SettingsConfigDict(env_prefix="LIENTHONG_NOTIFY_", extra="ignore")

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


def _settings() -> NotifySettings:
    return NotifySettings()


def get_notifier(settings: NotifySettings | None = None) -> Notifier:
    """The agencies' mailbox: the local sink (their one-stop software reads it in production)."""
    return LocalSink((settings or _settings()).sink_path)


def fmt_dt(at: datetime) -> str:
    """``17 giờ 00 phút, ngày 05/03/2026``, the way the forms write a time."""
    from lienthong.clock import localize

    at = localize(at)
    return f"{at:%H} giờ {at:%M} phút, ngày {at:%d/%m/%Y}"


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


def relay_agency(notifier: Notifier | None = None, *, limit: int = 500) -> dict[str, int]:
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
