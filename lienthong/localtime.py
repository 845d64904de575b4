"""Vietnam's time zone and the one way to make a time aware in it. Below both the calendar and
the clocks (the simulated office-hours clock asks the calendar, so neither may import the other
for this)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

VN_TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def localize(at: datetime) -> datetime:
    """Aware datetime in Asia/Ho_Chi_Minh; a naive one is taken to be local time already."""
    return at.replace(tzinfo=VN_TZ) if at.tzinfo is None else at.astimezone(VN_TZ)
