"""Dossier (hồ sơ), its status (the national portal's codes 1-10) and the allowed transitions.

The aggregate is plain data plus rules: every change goes through :meth:`Dossier.apply`, which
refuses anything the one-stop rules do not allow with a typed error, and appends to the history.
Persistence lives in ``lienthong.db``; this module never touches a database.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from lienthong.calendar import TimeLimit, WorkingCalendar
from lienthong.errors import (
    ReappointmentRefused,
    SupplementAlreadyRequested,
    TransitionRefused,
)


class Status(enum.IntEnum):
    """Dossier status as synchronised with the National Public Service Portal (Cổng DVCQG)."""

    SUBMITTED = 1  # Mới đăng ký
    ACCEPTED = 2  # Được tiếp nhận
    REFUSED_AT_RECEPTION = 3  # Không được tiếp nhận
    PROCESSING = 4  # Đang xử lý
    SUPPLEMENT_REQUESTED = 5  # Yêu cầu bổ sung giấy tờ
    AWAITING_PAYMENT = 6  # Yêu cầu thực hiện nghĩa vụ tài chính
    WITHDRAWN = 7  # Công dân yêu cầu rút hồ sơ
    STOPPED = 8  # Dừng xử lý
    RESOLVED = 9  # Đã xử lý xong
    RETURNED = 10  # Đã trả kết quả

    @property
    def label_vi(self) -> str:
        return _LABELS_VI[self]

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


_LABELS_VI = {
    Status.SUBMITTED: "Mới đăng ký",
    Status.ACCEPTED: "Được tiếp nhận",
    Status.REFUSED_AT_RECEPTION: "Không được tiếp nhận",
    Status.PROCESSING: "Đang xử lý",
    Status.SUPPLEMENT_REQUESTED: "Yêu cầu bổ sung giấy tờ",
    Status.AWAITING_PAYMENT: "Yêu cầu thực hiện nghĩa vụ tài chính",
    Status.WITHDRAWN: "Công dân yêu cầu rút hồ sơ",
    Status.STOPPED: "Dừng xử lý",
    Status.RESOLVED: "Đã xử lý xong",
    Status.RETURNED: "Đã trả kết quả",
}

TERMINAL = frozenset({Status.REFUSED_AT_RECEPTION, Status.WITHDRAWN, Status.STOPPED, Status.RETURNED})
# End of processing for the service index: the first of these reached (Decision 766, indicator 2.1).
END_OF_PROCESSING = frozenset({Status.RESOLVED, Status.RETURNED, Status.STOPPED, Status.REFUSED_AT_RECEPTION})

Event = Literal[
    "receive",
    "refuse_at_reception",
    "request_supplement",
    "supplement_received",
    "supplement_expired",
    "start_processing",
    "request_payment",
    "payment_received",
    "withdraw",
    "stop",
    "resolve",
    "deliver",
]
Phase = Literal["reception", "processing"]

_S = Status
# (event, from) -> to. Events whose target depends on the phase are resolved in ``apply``.
TRANSITIONS: dict[tuple[str, Status], Status] = {
    ("receive", _S.SUBMITTED): _S.ACCEPTED,
    ("refuse_at_reception", _S.SUBMITTED): _S.REFUSED_AT_RECEPTION,
    ("refuse_at_reception", _S.ACCEPTED): _S.REFUSED_AT_RECEPTION,
    ("request_supplement", _S.SUBMITTED): _S.SUPPLEMENT_REQUESTED,
    ("request_supplement", _S.ACCEPTED): _S.SUPPLEMENT_REQUESTED,
    ("request_supplement", _S.PROCESSING): _S.SUPPLEMENT_REQUESTED,
    ("start_processing", _S.ACCEPTED): _S.PROCESSING,
    ("request_payment", _S.PROCESSING): _S.AWAITING_PAYMENT,
    ("payment_received", _S.AWAITING_PAYMENT): _S.PROCESSING,
    ("stop", _S.PROCESSING): _S.STOPPED,
    ("stop", _S.AWAITING_PAYMENT): _S.STOPPED,
    ("resolve", _S.PROCESSING): _S.RESOLVED,
    ("deliver", _S.RESOLVED): _S.RETURNED,
    **{("withdraw", s): _S.WITHDRAWN for s in (_S.SUBMITTED, _S.ACCEPTED, _S.PROCESSING,
                                                _S.SUPPLEMENT_REQUESTED, _S.AWAITING_PAYMENT)},
    # After a supplement the dossier returns to the phase it left; expiry ends it in that phase.
    ("supplement_received", _S.SUPPLEMENT_REQUESTED): _S.ACCEPTED,  # or PROCESSING, see apply()
    ("supplement_expired", _S.SUPPLEMENT_REQUESTED): _S.REFUSED_AT_RECEPTION,  # or STOPPED
}  # fmt: skip

REASON_REQUIRED = frozenset(
    {"refuse_at_reception", "request_supplement", "supplement_expired", "withdraw", "stop"}
)


@dataclass
class StatusChange:
    """One line of the append-only status history."""

    from_status: Status | None
    to_status: Status
    at: datetime
    event: str
    actor: str
    reason: str | None = None


@dataclass
class SupplementRequest:
    """A request for supplement (yêu cầu bổ sung, Form 02): one per phase, with every missing item."""

    phase: Phase
    requested_at: datetime
    items: list[str]
    completed_at: datetime | None = None


@dataclass
class Reappointment:
    """Apology and new appointment (Form 04): at most one, at least one working day before the deadline."""

    original_due: datetime
    new_due: datetime
    reason: str
    recorded_at: datetime
    agency: str


@dataclass
class Dossier:
    code: str
    procedure_id: str
    procedure_version: str
    time_limit: TimeLimit
    received_at: datetime
    status: Status = Status.SUBMITTED
    clock_started_at: datetime | None = None
    due_at: datetime | None = None
    clock_paused_at: datetime | None = None
    finished_at: datetime | None = None
    delivered_at: datetime | None = None
    reason: str | None = None
    supplements: list[SupplementRequest] = field(default_factory=list)
    reappointment: Reappointment | None = None
    history: list[StatusChange] = field(default_factory=list)
    deliveries: dict[str, datetime] = field(default_factory=dict)

    # --- transitions -------------------------------------------------------------------------

    def allowed_events(self) -> list[str]:
        return sorted({ev for (ev, s) in TRANSITIONS if s == self.status})

    def apply(
        self,
        event: Event,
        at: datetime,
        calendar: WorkingCalendar,
        *,
        actor: str = "system",
        reason: str | None = None,
        items: list[str] | None = None,
    ) -> StatusChange:
        """Apply one event; refuse it with :class:`TransitionRefused` if the rules do not allow it."""
        key = (event, self.status)
        if key not in TRANSITIONS:
            raise TransitionRefused(
                f"{self.code}: '{event}' is not allowed in status {int(self.status)} "
                f"({self.status.name}); allowed: {', '.join(self.allowed_events()) or 'none'}",
                message_vi=f"Hồ sơ {self.code} đang ở trạng thái \"{self.status.label_vi}\": "
                f"không thể thực hiện thao tác này.",
            )
        if event in REASON_REQUIRED and not (reason or items):
            raise TransitionRefused(
                f"{self.code}: '{event}' needs a reason",
                message_vi="Thao tác này phải ghi rõ lý do.",
            )
        target = TRANSITIONS[key]
        if event == "request_supplement":
            phase: Phase = "processing" if self.status == Status.PROCESSING else "reception"
            if any(s.phase == phase for s in self.supplements):
                raise SupplementAlreadyRequested(
                    f"{self.code}: a supplement was already requested in the {phase} phase; "
                    "the law allows one complete request",
                    message_vi="Hồ sơ đã được yêu cầu bổ sung một lần ở giai đoạn này; "
                    "không được yêu cầu bổ sung lần thứ hai.",
                )
            self.supplements.append(SupplementRequest(phase, at, list(items or [reason or ""])))
            self.clock_paused_at = at
        elif event == "supplement_received":
            pending = self.supplements[-1]
            pending.completed_at = at
            if pending.phase == "processing":
                target = Status.PROCESSING
            # The clock restarts from zero when the complete dossier arrives (Decree 61 Art. 19(4)).
            self.clock_paused_at = None
            self._start_clock(at, calendar)
        elif event == "supplement_expired":
            if self.supplements[-1].phase == "processing":
                target = Status.STOPPED
        elif event == "receive":
            self._start_clock(at, calendar)
        elif event == "request_payment":
            self.clock_paused_at = at
        elif event == "payment_received":
            self._resume_clock(at, calendar)
        change = StatusChange(self.status, target, at, event, actor, reason)
        self.status = target
        if target in (Status.REFUSED_AT_RECEPTION, Status.STOPPED, Status.WITHDRAWN):
            self.reason = reason or "; ".join(items or [])
        if target in END_OF_PROCESSING and self.finished_at is None:
            self.finished_at = at
        if target == Status.RETURNED:
            self.delivered_at = at
        self.history.append(change)
        return change

    def _start_clock(self, at: datetime, calendar: WorkingCalendar) -> None:
        self.clock_started_at = at
        self.due_at = calendar.due(at, self.time_limit)

    def _resume_clock(self, at: datetime, calendar: WorkingCalendar) -> None:
        """Waiting for the applicant to pay does not count: push the deadline by the office time paused."""
        if self.clock_paused_at is not None and self.due_at is not None:
            paused = calendar.working_seconds_between(self.clock_paused_at, at)
            remaining = calendar.working_seconds_between(self.clock_paused_at, self.due_at)
            self.due_at = calendar.add_working_seconds(at, remaining) if paused else self.due_at
        self.clock_paused_at = None

    # --- re-appointment ----------------------------------------------------------------------

    def reappoint(
        self, new_due: datetime, reason: str, at: datetime, agency: str, calendar: WorkingCalendar
    ) -> Reappointment:
        """Record the apology and new appointment (Form 04): once, and at least D-1."""
        if self.reappointment is not None:
            raise ReappointmentRefused(
                f"{self.code}: the return date was already re-set once",
                message_vi="Hồ sơ đã được hẹn lại ngày trả kết quả một lần; không được hẹn lại lần nữa.",
            )
        if self.due_at is None or self.status.terminal:
            raise ReappointmentRefused(
                f"{self.code}: no running deadline to re-set (status {int(self.status)})",
                message_vi="Hồ sơ không có hạn giải quyết đang chạy để hẹn lại.",
            )
        latest = calendar.latest_reappointment(self.due_at)
        if at > latest:
            raise ReappointmentRefused(
                f"{self.code}: a re-appointment must be recorded by {latest.isoformat()}, "
                f"at least one working day before the deadline {self.due_at.isoformat()}",
                message_vi="Phiếu xin lỗi và hẹn lại phải được lập chậm nhất trước hạn một ngày làm việc.",
            )
        if new_due <= self.due_at:
            raise ReappointmentRefused(
                f"{self.code}: the new appointment must be later than the current one",
                message_vi="Ngày hẹn mới phải sau ngày hẹn cũ.",
            )
        self.reappointment = Reappointment(self.due_at, new_due, reason, at, agency)
        self.due_at = new_due
        return self.reappointment

    # --- derived -----------------------------------------------------------------------------

    @property
    def supplement_count(self) -> int:
        return len(self.supplements)

    def supplement_wait(self, until: datetime) -> timedelta:
        """Time spent waiting for the applicant's supplements (subtracted by the service index)."""
        total = timedelta()
        for s in self.supplements:
            total += (s.completed_at or until) - s.requested_at
        return total

    def is_late(self, now: datetime) -> bool:
        if self.due_at is None or self.clock_paused_at is not None:
            return False
        end = self.finished_at or now
        return end > self.due_at

    def record_delivery(self, destination: str, at: datetime) -> None:
        """Delivery to each destination (citizen, vault, VNeID) is tracked on its own."""
        self.deliveries.setdefault(destination, at)

    def summary(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "procedure": self.procedure_id,
            "status": int(self.status),
            "status_vi": self.status.label_vi,
            "received_at": self.received_at.isoformat(),
            "due_at": self.due_at.isoformat() if self.due_at else None,
        }
