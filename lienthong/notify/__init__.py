"""Notifications (thông báo): to agencies (:mod:`.messages`, the sink and its outbox) and to
citizens (:mod:`.citizen`: one durable message per event, through Zalo ZNS or brandname SMS,
:mod:`.providers`; local simulators of both in :mod:`.simulator`)."""

from __future__ import annotations

from lienthong.notify.messages import (
    OUTBOX_TOPIC,
    Delivery,
    LocalSink,
    Notification,
    NotificationFailed,
    Notifier,
    NotifySettings,
    agency_apology_draft,
    agency_late,
    agency_warning,
    enqueue,
    fmt_dt,
    get_notifier,
    mask_phone,
    relay_agency,
)

__all__ = [
    "OUTBOX_TOPIC", "Delivery", "LocalSink", "Notification", "NotificationFailed", "Notifier", "NotifySettings",
    "agency_apology_draft", "agency_late", "agency_warning", "enqueue", "fmt_dt", "get_notifier", "mask_phone",
    "relay", "relay_agency",
]


def relay(notifier: Notifier | None = None, *, limit: int = 500) -> dict[str, int]:
    """Send what both outboxes hold that is due: agency messages (to ``notifier``, the sink by
    default) and citizen messages (to their providers). Counts are summed over both."""
    from lienthong.notify import citizen

    agency = relay_agency(notifier, limit=limit)
    people = citizen.relay(limit=limit)
    return {"sent": agency["sent"] + people["sent"], "failed": agency["failed"] + people["failed"],
            "pending": people["pending"]}
