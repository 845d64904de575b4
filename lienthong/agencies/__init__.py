"""The agency API: what Liên Thông sends an agency for a step, and what it gets back.

Contract (served by every agency adapter and by the bundled simulator, ``lienthong.simulators.agency``):

``POST /v1/steps`` with a :class:`StepRequest` JSON body submits a step. ``request_id`` is the
idempotency key: submitting the same id again returns the same ticket. The answer (200) is a
:class:`StepTicket`: ``state`` is ``pending`` (poll later), ``done`` (``result`` holds the data named
by the request's ``outputs``) or ``refused`` (``reason`` in Vietnamese).
``GET /v1/steps/{ticket}`` returns the ticket's current :class:`StepTicket`.
Errors: ``503`` (temporary: retry with back-off), ``4xx`` with ``{"error", "message"}`` (do not retry).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict


class StepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str
    dossier_code: str
    procedure_id: str
    step_key: str
    agency: str
    action: str
    kind: Literal["agency", "payment"] = "agency"
    # The transfer slip states each agency's task and time limit (Decree 61 Art. 19(6)).
    started_at: datetime
    due_at: datetime
    outputs: list[str]
    data: dict[str, Any] = {}
    callback_url: str | None = None


class StepTicket(BaseModel):
    ticket: str
    request_id: str
    state: Literal["pending", "done", "refused"]
    result: dict[str, Any] = {}
    reason: str | None = None
    finished_at: datetime | None = None


class AgencyClient(Protocol):
    """How the flow reaches an agency: submit a step, then ask for its result."""

    def submit(self, request: StepRequest) -> StepTicket: ...

    def poll(self, ticket: str) -> StepTicket: ...
