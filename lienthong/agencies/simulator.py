"""The bundled agency simulator: an HTTP service implementing the agency API of
``lienthong.agencies`` for every agency of ``config/agencies.yaml``.

It stands in for the agencies' own systems (civil status, police, social insurance, land office,
tax), which this project cannot reach. Switches (environment ``LIENTHONG_SIM_*`` at start, or
``PUT /admin/switches`` at run time):

- ``mode``: ``instant`` (a step is done when submitted) or ``realistic`` (done after a processing
  time in working hours on the shared clock, so deadlines and lateness happen for real);
- ``late_share``: share of steps finished after their due time (realistic mode);
- ``refusal_rate``: share of steps the agency refuses, with a reason in Vietnamese;
- ``failure_rate``: share of calls answered ``503`` (the client retries);
- ``fail_next``: the next N calls answer ``503`` (a deterministic outage for tests);
- ``latency_ms``: real delay added to every answer;
- ``seed``: every decision is a function of the seed and the request id, so runs are reproducible.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from lienthong.agencies import StepRequest, StepTicket
from lienthong.agencies.results import generate
from lienthong.calendar import get_calendar
from lienthong.catalog import get_catalog
from lienthong.clock import get_clock

REFUSAL_REASONS = [
    "Thông tin trên tờ khai không khớp với cơ sở dữ liệu quốc gia về dân cư.",
    "Giấy tờ kèm theo không đủ điều kiện theo quy định.",
    "Người yêu cầu không thuộc đối tượng được giải quyết.",
]


class Switches(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIENTHONG_SIM_", extra="ignore")

    mode: Literal["instant", "realistic"] = "instant"
    late_share: float = 0.15
    refusal_rate: float = 0.0
    failure_rate: float = 0.0
    fail_next: int = 0
    latency_ms: int = 0
    seed: int = 7


class _Entry:
    def __init__(self, request: StepRequest, ticket: str, ready_at: datetime, refused: bool,
                 result: dict[str, Any], reason: str | None) -> None:
        self.request, self.ticket, self.ready_at = request, ticket, ready_at
        self.refused, self.result, self.reason = refused, result, reason

    def view(self, now: datetime) -> StepTicket:
        if now < self.ready_at:
            return StepTicket(ticket=self.ticket, request_id=self.request.request_id, state="pending")
        return StepTicket(
            ticket=self.ticket, request_id=self.request.request_id,
            state="refused" if self.refused else "done",
            result={} if self.refused else self.result, reason=self.reason,
            finished_at=self.ready_at,
        )


class Simulator:
    def __init__(self, switches: Switches | None = None) -> None:
        self.switches = switches or Switches()
        self._by_ticket: dict[str, _Entry] = {}
        self._by_request: dict[str, str] = {}
        self._lock = threading.Lock()
        self.calls = 0

    def _rng(self, request_id: str, salt: str) -> random.Random:
        h = hashlib.sha256(f"{self.switches.seed}:{request_id}:{salt}".encode()).digest()
        return random.Random(int.from_bytes(h[:8], "big"))

    def submit(self, req: StepRequest) -> StepTicket:
        now = get_clock().now()
        with self._lock:
            known = self._by_request.get(req.request_id)
            if known is not None:
                return self._by_ticket[known].view(now)
            sw = self.switches
            refused = req.kind == "agency" and self._rng(req.request_id, "refuse").random() < sw.refusal_rate
            ready_at = self._ready_at(req, now)
            rng = self._rng(req.request_id, "result")
            result: dict[str, Any] = {}
            for name in req.outputs:
                result[name] = generate(name, req.data, result, ready_at, rng)
            reason = self._rng(req.request_id, "reason").choice(REFUSAL_REASONS) if refused else None
            entry = _Entry(req, uuid.uuid4().hex, ready_at, refused, result, reason)
            self._by_ticket[entry.ticket] = entry
            self._by_request[req.request_id] = entry.ticket
            return entry.view(now)

    def poll(self, ticket: str) -> StepTicket | None:
        with self._lock:
            entry = self._by_ticket.get(ticket)
        return entry.view(get_clock().now()) if entry else None

    def _ready_at(self, req: StepRequest, now: datetime) -> datetime:
        if self.switches.mode == "instant":
            return now
        cal = get_calendar()
        rng = self._rng(req.request_id, "time")
        if req.kind == "payment":  # the applicant pays within half a day to three working days
            return cal.add_working_seconds(now, rng.uniform(0.5, 3.0) * 9.5 * 3600)
        budget = cal.working_seconds_between(now, req.due_at)
        if rng.random() < self.switches.late_share:
            return cal.add_working_seconds(req.due_at, rng.uniform(1.0, 12.0) * 3600)
        return cal.add_working_seconds(now, rng.uniform(0.15, 0.9) * max(budget, 1800.0))


def create_app(simulator: Simulator | None = None) -> FastAPI:
    sim = simulator or Simulator()
    agencies = set(get_catalog().agencies)
    app = FastAPI(title="Liên Thông agency simulator", version="1",
                  description=__doc__ or "")
    app.state.simulator = sim

    @app.middleware("http")
    async def switches(request: Request, call_next):  # type: ignore[no-untyped-def]
        sim.calls += 1
        sw = sim.switches
        if sw.latency_ms:
            await asyncio.sleep(sw.latency_ms / 1000)
        if request.url.path.startswith("/v1/"):
            outage = sw.fail_next > 0 or (sw.failure_rate and random.random() < sw.failure_rate)
            if sw.fail_next > 0:
                sw.fail_next -= 1
            if outage:
                return JSONResponse({"error": "unavailable", "message": "simulated outage"}, status_code=503)
        return await call_next(request)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/steps", response_model=StepTicket)
    def submit(req: StepRequest) -> StepTicket:
        if req.agency not in agencies:
            raise HTTPException(404, detail={"error": "unknown_agency", "message": req.agency})
        return sim.submit(req)

    @app.get("/v1/steps/{ticket}", response_model=StepTicket)
    def poll(ticket: str) -> StepTicket:
        found = sim.poll(ticket)
        if found is None:
            raise HTTPException(404, detail={"error": "unknown_ticket", "message": ticket})
        return found

    class SwitchUpdate(BaseModel):
        mode: Literal["instant", "realistic"] | None = None
        late_share: float | None = None
        refusal_rate: float | None = None
        failure_rate: float | None = None
        fail_next: int | None = None
        latency_ms: int | None = None
        seed: int | None = None

    @app.get("/admin/switches")
    def get_switches() -> dict[str, Any]:
        return sim.switches.model_dump()

    @app.put("/admin/switches")
    def put_switches(update: SwitchUpdate) -> dict[str, Any]:
        for k, v in update.model_dump(exclude_none=True).items():
            setattr(sim.switches, k, v)
        return sim.switches.model_dump()

    return app

