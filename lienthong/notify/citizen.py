"""Messages to citizens, durably: an outbox row per event, sent by the relay, receipts recorded.

:func:`collect` reads the status changes to tell of (received, supplement requested, refused,
stopped, resolved, delivered) back from the append-only status history: a change is there once
its transaction committed, so a rolled-back one tells nobody and a committed one is told even if
its writer died right after; no writer of a status needs to know about messages. Events outside
the history (an approved re-appointment) call :func:`emit` inside their own transaction. A row's
``history_id`` and ``event_key`` are unique: the same event collected or emitted twice (a
redelivered webhook, a retried task, two relays at once) queues one message.

:func:`relay` sends what is due. Each message tries the citizen's channels in order (their stated
preference, else ``default_channels``): a provider that is down or answers 5xx is retried on the
same channel with exponential back-off; a provider that says this number cannot be reached that
way (no Zalo account) moves the message to the next channel. A message that used up its attempts
is ``failed``, and stays in the table for an operator. Providers' delivery callbacks
(:func:`record_receipt`) mark the message ``delivered`` or ``undelivered``.

The phone number is stored on the row because delivery needs it; it never reaches a log line.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import JSON, Connection, Index, Integer, String, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from lienthong.clock import get_clock
from lienthong.db.models import Base, DossierRow, table_of
from lienthong.errors import LienThongError
from lienthong.notify.messages import mask_phone
from lienthong.settings import get_settings

log = logging.getLogger("lienthong.notify")

KINDS = ("receipt", "supplement", "refused", "reappointment", "result_ready", "delivered", "stopped")
CHANNELS = ("zalo", "sms")


class CitizenMessage(Base):
    """One message to a citizen about one event of one dossier."""

    __tablename__ = "citizen_messages"
    __table_args__ = (Index("ix_citizen_messages_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    # The status_history row the message tells of (None: an event outside the status history).
    history_id: Mapped[int | None] = mapped_column(Integer, unique=True)
    dossier_code: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    phone: Mapped[str] = mapped_column(String(20), nullable=False)
    channels: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    # pending -> sent -> delivered | undelivered; pending -> failed (no channel took it);
    # skipped: nothing to send (no phone number, the citizen asked for none).
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    channel_index: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    channel: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Our reference sent with the message (ZNS tracking_id, eSMS RequestId): receipts name it, and
    # it is on the row before the message leaves, so a receipt faster than our commit still matches.
    reference: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(64))
    encoding: Mapped[str | None] = mapped_column(String(8))
    segments: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(nullable=False)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    delivery_status: Mapped[str | None] = mapped_column(String(32))


class NotifyConfigError(LienThongError):
    code = "notify_config_invalid"


@dataclass(frozen=True)
class Template:
    kind: str
    text: str
    zns_template_id: str
    zns_params: dict[str, int]


@dataclass(frozen=True)
class NotifyConfig:
    default_channels: tuple[str, ...]
    sms_encoding: str
    sms_brandname: str
    sms_type: str
    zalo_fallback_errors: frozenset[int]
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    max_age: timedelta
    templates: dict[str, Template]

    def backoff(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1)))


@lru_cache(maxsize=4)
def _load(path: str) -> NotifyConfig:
    with Path(path).open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    try:
        templates = {
            kind: Template(kind, ev["text"], str(ev["zns"]["template_id"]), dict(ev["zns"]["params"]))
            for kind, ev in raw["events"].items()
        }
        cfg = NotifyConfig(
            default_channels=tuple(raw["default_channels"]),
            sms_encoding=raw["sms"]["encoding"],
            sms_brandname=raw["sms"]["brandname"],
            sms_type=str(raw["sms"]["sms_type"]),
            zalo_fallback_errors=frozenset(int(c) for c in raw["zalo"]["fallback_errors"]),
            max_attempts=int(raw["retry"]["max_attempts"]),
            backoff_seconds=float(raw["retry"]["backoff_seconds"]),
            backoff_max_seconds=float(raw["retry"]["backoff_max_seconds"]),
            max_age=timedelta(hours=float(raw["retry"].get("max_event_age_hours", 168))),
            templates=templates,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise NotifyConfigError(f"{path}: {exc!r}", message_vi="Cấu hình thông báo không hợp lệ.") from exc
    missing = set(KINDS) - set(templates)
    bad = [c for c in cfg.default_channels if c not in CHANNELS]
    if missing or bad or cfg.sms_encoding not in ("gsm7", "ucs2", "auto"):
        raise NotifyConfigError(f"{path}: templates missing {sorted(missing)}, unknown channels {bad}",
                                message_vi="Cấu hình thông báo thiếu mẫu hoặc sai kênh.")
    return cfg


def get_config() -> NotifyConfig:
    return _load(str(get_settings().config_dir / "notify" / "citizen.yaml"))


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "…"


def render(kind: str, params: dict[str, Any], config: NotifyConfig | None = None) -> str:
    cfg = config or get_config()
    return cfg.templates[kind].text.format_map(_Blank(params))


def zns_data(kind: str, params: dict[str, Any], config: NotifyConfig | None = None) -> dict[str, str]:
    """The ZNS ``template_data``: the template's parameters, each cut to its length limit."""
    tpl = (config or get_config()).templates[kind]
    out = {}
    for name, limit in tpl.zns_params.items():
        value = str(params.get(name, ""))
        out[name] = value if len(value) <= limit else value[: limit - 1] + "…"
    return out


# --- who gets told, and how --------------------------------------------------------------------


def normalise_phone(raw: str | None) -> str | None:
    """A Vietnamese mobile number as ``0xxxxxxxxx`` (from ``+84``/``84``/``0`` forms), or None."""
    if not raw:
        return None
    digits = "".join(c for c in raw if c.isdigit())
    if digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    return digits if len(digits) == 10 and digits.startswith("0") else None


def recipient(payload: dict[str, Any] | None) -> tuple[str | None, list[str]]:
    """The applicant's phone and channels in order: ``notify_by`` when the citizen chose (an
    empty list means no messages), the configured default otherwise."""
    payload = payload or {}
    phone = normalise_phone((payload.get("applicant") or {}).get("phone"))
    chosen = payload.get("notify_by")
    channels = list(get_config().default_channels) if chosen is None else [c for c in chosen if c in CHANNELS]
    return phone, channels


def _procedure_name(row: dict[str, Any]) -> str:
    """The procedure's name in the version the dossier was received under."""
    from types import SimpleNamespace

    from lienthong.catalog import get_catalog

    with contextlib.suppress(LienThongError):
        return get_catalog().for_dossier(SimpleNamespace(**row)).name
    return str(row["procedure_id"])


def when(at: datetime) -> str:
    """``17:00 ngày 13/03/2026``: short enough for a ZNS date parameter (30 characters)."""
    from lienthong.clock import localize

    at = localize(at)
    return f"{at:%H:%M} ngày {at:%d/%m/%Y}"


def params_for(row: dict[str, Any], kind: str, link: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A message's parameters: the dossier's code, procedure, dates and link, never a name or ID."""
    params: dict[str, Any] = {
        "ma_ho_so": row["code"],
        "thu_tuc": _procedure_name(row),
        "link": link,
    }
    if row.get("received_at") is not None:
        params["ngay_nhan"] = when(row["received_at"])
    if row.get("due_at") is not None:
        params["ngay_hen"] = when(row["due_at"])
    if kind == "result_ready":
        from lienthong.citizen.collection import collection_text

        params["noi_nhan"] = collection_text(row.get("channel") or "in_person")
    params.update(extra or {})
    return params


def _insert(on: Session | Connection, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    conn = on.connection() if isinstance(on, Session) else on
    ins = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table_of(CitizenMessage))
    # Any unique key (event_key, history_id) already there: that event is queued already.
    table = table_of(CitizenMessage)
    return len(conn.execute(ins.values(rows).on_conflict_do_nothing().returning(table.c.id)).all())


def _row_values(dossier: dict[str, Any], kind: str, key: str, link: str, extra: dict[str, Any] | None,
                now: datetime, *, history_id: int | None = None, skip: str | None = None) -> dict[str, Any]:
    phone, channels = recipient(dossier.get("payload"))
    if skip is None and phone is None:
        skip = "no phone number"
    if skip is None and not channels:
        skip = "the citizen asked for no messages"
    return {
        "event_key": key, "reference": key_digest(key), "history_id": history_id, "dossier_code": dossier["code"],
        "kind": kind,
        "phone": phone or "", "channels": channels, "params": params_for(dossier, kind, link, extra),
        "state": "skipped" if skip else "pending", "last_error": skip, "channel_index": 0, "attempts": 0,
        "next_attempt_at": now, "created_at": now,
    }


def _as_dict(row: DossierRow) -> dict[str, Any]:
    return {"code": row.code, "uid": row.uid, "procedure_id": row.procedure_id,
            "procedure_version": row.procedure_version, "received_at": row.received_at,
            "due_at": row.due_at, "channel": row.channel, "payload": row.payload}


def emit(session: Session, row: DossierRow, kind: str, *, key: str | None = None,
         extra: dict[str, Any] | None = None) -> bool:
    """Queue the citizen's message about ``kind`` for this dossier, in the caller's transaction.

    For events outside the status history (an approved re-appointment); status changes are
    collected from the history by :func:`collect`. ``key`` tells apart two events of one kind; by
    default the event is once per dossier. Returns whether a message was queued (False: already
    queued, no phone number, or the citizen asked for none)."""
    from lienthong.citizen.capability import current_url

    if kind not in KINDS:
        raise ValueError(f"unknown citizen message kind {kind!r}")
    now = get_clock().now()
    values = _row_values(_as_dict(row), kind, f"{row.code}:{key or kind}", current_url(session, row.uid), extra, now)
    return values["state"] == "pending" and _insert(session, [values]) == 1


# --- the events of a dossier's life that the citizen is told of ---------------------------------

# Status changes are read back from the append-only status history, so no writer of a status has
# to know about messages: reception's one-statement batch write and every apply_event() alike.
COLLECTED = ("receive", "request_supplement", "refuse_at_reception", "supplement_expired", "stop", "resolve",
             "deliver")
_KIND = {"receive": "receipt", "request_supplement": "supplement", "refuse_at_reception": "refused",
         "stop": "stopped", "resolve": "result_ready", "deliver": "delivered"}
# History rows are numbered when written and seen when committed, so a row may commit after a
# higher one was collected: every pass looks this far below the newest row already collected.
LOOKBACK = 10_000


def _message_of(session: Session, h: Any, d: DossierRow) -> tuple[str, str, dict[str, Any]]:
    """(kind, event key suffix, extra parameters) of a history row."""
    from lienthong.db.models import SupplementRow
    from lienthong.dossier import Status
    from lienthong.privacy import mask_ids_in_text

    kind = _KIND.get(h.event) or ("refused" if h.to_status == Status.REFUSED_AT_RECEPTION else "stopped")
    extra: dict[str, Any] = {}
    key = kind
    if kind == "supplement":
        rounds = list(session.execute(select(SupplementRow).where(SupplementRow.dossier_id == d.id,
                                                                  SupplementRow.requested_at <= h.at)
                                      .order_by(SupplementRow.id)).scalars())
        lines = [mask_ids_in_text(str(i)) for i in (rounds[-1].items if rounds else None) or []]
        extra["noi_dung"] = "; ".join(lines) or (mask_ids_in_text(h.reason) if h.reason else "…")
        key = f"supplement:{len(rounds)}"
    if kind in ("refused", "stopped"):
        extra["ly_do"] = mask_ids_in_text(h.reason) if h.reason else "…"
    return kind, key, extra


def collect(*, limit: int = 1000) -> int:
    """Queue the messages of status changes not collected yet; returns how many rows were added
    (one per event, ``skipped`` when there is nothing to send). Changes older than
    ``max_event_age_hours`` are left alone: a first run over an old database, or a relay that was
    off for long, does not flood citizens with old news."""
    from sqlalchemy import func

    from lienthong.citizen.capability import current_url
    from lienthong.db import session_scope
    from lienthong.db.models import StatusHistory

    cfg, now = get_config(), get_clock().now()
    with session_scope() as s:
        top = s.execute(select(func.max(CitizenMessage.history_id))).scalar() or 0
        done = select(CitizenMessage.id).where(CitizenMessage.history_id == StatusHistory.id).exists()
        found = s.execute(
            select(StatusHistory, DossierRow).join(DossierRow, DossierRow.id == StatusHistory.dossier_id)
            .where(StatusHistory.id > top - LOOKBACK, StatusHistory.event.in_(COLLECTED),
                   StatusHistory.at >= now - cfg.max_age, ~done)
            .order_by(StatusHistory.id).limit(limit)
        ).all()
        values = []
        for h, d in found:
            kind, key, extra = _message_of(s, h, d)
            values.append(_row_values(_as_dict(d), kind, f"{d.code}:{key}", current_url(s, d.uid), extra, now,
                                      history_id=h.id))
        return _insert(s, values)


def describe(message: CitizenMessage) -> str:
    """A log line's worth: what and for which dossier, the phone masked."""
    return f"{message.kind} of {message.dossier_code} to {mask_phone(message.phone)}"


def key_digest(event_key: str) -> str:
    """A provider-side reference for the event (tracking_id / RequestId): stable across retries, so
    a provider that de-duplicates on it never sends twice, and opaque."""
    return hashlib.sha256(event_key.encode()).hexdigest()[:32]


# --- sending -----------------------------------------------------------------------------------

# A claimed message is not claimed again for this long: a relay that died mid-send leaves it to
# the next one after the lease (the provider de-duplicates on the event's reference).
LEASE = timedelta(minutes=5)


class SinkProvider:
    """The local demo's provider: every citizen message lands in the local sink (phone masked)."""

    channel = "sink"

    def __init__(self, sink: Any = None) -> None:
        from lienthong.notify.messages import LocalSink

        self.sink = sink or LocalSink()

    def send(self, message: Any) -> Any:
        from lienthong.notify.messages import Notification
        from lienthong.notify.providers import Accepted

        kind, code = message.reference.split("|", 1) if "|" in message.reference else ("", "")
        delivery = self.sink.send(Notification("citizen", message.phone, kind, code, message.text,
                                               dict(message.zns_data)))
        return Accepted(self.channel, delivery.message_id)


def _providers() -> dict[str, Any]:
    from lienthong.notify.providers import ProviderSettings, configured

    if ProviderSettings().citizen_backend == "sink":
        sink = SinkProvider()
        return {c: sink for c in CHANNELS}
    return dict(configured(get_config()))


def _claim(limit: int) -> list[int]:
    from sqlalchemy import update

    from lienthong.db import session_scope

    now = get_clock().now()
    with session_scope() as s:
        ids = list(s.execute(
            select(CitizenMessage.id)
            .where(CitizenMessage.state == "pending", CitizenMessage.next_attempt_at <= now)
            .order_by(CitizenMessage.next_attempt_at, CitizenMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars())
        if ids:
            s.execute(update(CitizenMessage).where(CitizenMessage.id.in_(ids))
                      .values(next_attempt_at=now + LEASE))
    return ids


def _outgoing(m: CitizenMessage, cfg: NotifyConfig, sink: bool) -> Any:
    from lienthong.notify.providers import Outgoing

    reference = f"{m.kind}|{m.dossier_code}" if sink else m.reference
    return Outgoing(m.phone, render(m.kind, m.params, cfg), cfg.templates[m.kind].zns_template_id,
                    zns_data(m.kind, m.params, cfg), reference)


def _attempt(m: CitizenMessage, providers: dict[str, Any], cfg: NotifyConfig) -> str:
    """One try of one message, over its channels from the current one; returns its new state."""
    from lienthong.notify.providers import ProviderError

    now = get_clock().now()
    while m.channel_index < len(m.channels):
        channel = m.channels[m.channel_index]
        provider = providers.get(channel)
        if provider is None:
            m.last_error = f"no provider configured for {channel}"
            m.channel_index += 1
            m.attempts = 0
            continue
        m.attempts += 1
        try:
            accepted = provider.send(_outgoing(m, cfg, isinstance(provider, SinkProvider)))
        except ProviderError as exc:
            m.last_error = f"{channel}: {exc.detail}"
            if exc.outcome == "retry" and m.attempts < cfg.max_attempts:
                m.next_attempt_at = now + cfg.backoff(m.attempts)
                log.info("%s: %s, retry %d in %s", describe(m), m.last_error, m.attempts, cfg.backoff(m.attempts))
                return "pending"
            log.info("%s: %s, next channel", describe(m), m.last_error)
            m.channel_index += 1
            m.attempts = 0
            continue
        m.state, m.channel, m.provider_message_id = "sent", accepted.channel, accepted.message_id or None
        m.encoding, m.segments, m.sent_at = accepted.encoding, accepted.segments, now  # last_error says why a fallback
        log.info("sent %s via %s", describe(m), accepted.channel)
        return "sent"
    m.state = "failed"
    log.warning("gave up on %s: %s", describe(m), m.last_error)
    return "failed"


def relay(providers: dict[str, Any] | None = None, *, limit: int = 200) -> dict[str, int]:
    """Collect the status changes to tell of, then send the messages that are due; returns counts
    by resulting state."""
    from lienthong.db import session_scope

    collect()
    providers = _providers() if providers is None else providers
    cfg = get_config()
    counts = {"sent": 0, "pending": 0, "failed": 0}
    for mid in _claim(limit):
        with session_scope() as s:
            m = s.get(CitizenMessage, mid, with_for_update=True)
            if m is None or m.state != "pending":
                continue
            counts[_attempt(m, providers, cfg)] += 1
    return counts


def record_receipt(session: Session, channel: str, reference: str, message_id: str, delivered: bool | None,
                   at: datetime, status: str) -> bool:
    """A provider's delivery report for one of our messages, named by our reference (else by the
    provider's message id); False if it names none of ours. ``delivered`` None is an interim report
    (with the telco, waiting): only its status is kept. The first final report stays."""
    where = (CitizenMessage.reference == reference) if reference else (
        (CitizenMessage.provider_message_id == message_id) & (CitizenMessage.channel == channel))
    m = session.execute(select(CitizenMessage).where(where).with_for_update()).scalar_one_or_none()
    if m is None:
        return False
    if m.state in ("delivered", "undelivered"):
        return True
    m.delivery_status = status[:32]
    if delivered is not None:
        m.state = "delivered" if delivered else "undelivered"
        if delivered:
            m.delivered_at = at
    return True
