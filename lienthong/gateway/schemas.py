"""Bodies the gateway accepts besides the dossier payload (``lienthong.payloads.Submission``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from lienthong.payloads import Component, Submission, nfc


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _nfc(cls, data: Any) -> Any:
        return nfc(data)


class SupplementBody(_Body):
    """The citizen's supplement (bổ sung hồ sơ): the same shape as the suspended run's input
    (``tasks.quality.SupplementInput``): corrected ``fields`` by dotted path, or a full ``payload``,
    and ``components`` added or replaced by code."""

    fields: dict[str, Any] = Field(default_factory=dict)
    payload: Submission | None = None
    components: list[Component] = Field(default_factory=list)
    note: str | None = None

    def run_input(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "fields": self.fields,
            "components": [c.model_dump(mode="json", exclude_none=True) for c in self.components],
        }
        if self.payload is not None:
            out["payload"] = self.payload.model_dump(mode="json")
        if self.note is not None:
            out["note"] = self.note
        return out


class StepResultBody(_Body):
    """An agency's result for a step routed to it (the shape of the agency API's ticket)."""

    state: Literal["done", "refused"]
    result: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None
    ticket: str | None = None
    request_id: str | None = None
    finished_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _refusal_has_reason(self) -> StepResultBody:
        if self.state == "refused" and not self.reason:
            raise ValueError("a refusal states its reason")
        return self


class Accepted(BaseModel):
    """The 202 answer; a redelivery with the same Idempotency-Key gets the same one."""

    accepted: Literal[True] = True
    kind: Literal["dossier", "supplement", "step_result"]
    dossier_code: str
    status_url: str
    received_at: datetime
    due_at: datetime | None = None
    round: int | None = None
    step_id: str | None = None


class ErrorBody(BaseModel):
    error: str
    message: str
    message_vi: str | None = None
    errors: list[dict[str, Any]] | None = None


class StepView(BaseModel):
    step: str
    agency: str
    status: str
    due_at: datetime | None
    finished_at: datetime | None
    verdict: str | None


class SupplementView(BaseModel):
    """The request for supplement (Form 02): every line the citizen must provide."""

    round: int
    phase: str
    requested_at: datetime
    completed_at: datetime | None
    lines: list[str]


class DossierView(BaseModel):
    """What the sender may see: status and dates; personal data masked."""

    dossier_code: str
    procedure_id: str
    procedure_code: str
    status: int
    status_label: str
    received_at: datetime
    due_at: datetime | None
    finished_at: datetime | None
    owner: str
    owner_citizen_id: str
    run_started: bool
    steps: list[StepView]
    supplement_request: SupplementView | None = None
    reason: str | None = None
