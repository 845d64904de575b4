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
- ``seed``: every decision is a function of the seed and the request id, so runs are reproducible;
- ``callbacks``: honour a request's ``callback_url`` (asynchronous agencies, on by default): the step
  is accepted ``pending`` and, once its result is ready, POSTed to the callback URL signed as that
  agency (``lienthong.gateway.signing``, secrets from ``LIENTHONG_AGENCY_SECRETS``). Ready means
  ``callback_delay_seconds`` real seconds (times a seeded factor in 0.5-1.5) have passed and, in
  realistic mode, the shared clock has reached the processing time (compressed with the demo's
  simulated clock). A gateway that is down or answers 5xx/429 is retried with exponential back-off
  (``callback_backoff_seconds`` doubling up to ``callback_backoff_max_seconds``) for at most
  ``callback_attempts`` attempts, each logged; the same ``Idempotency-Key`` is sent every time, so
  a retry after a lost answer is not a second result. Polling the ticket keeps working.
  ``POST /admin/callbacks/release`` sends every scheduled callback at once; ``GET /admin/callbacks``
  shows each delivery (scheduled, delivered, rejected, gave_up) and its attempts. ``GET /admin/requests``
  lists every step request with the real time (epoch seconds) it arrived and, for a callback, the
  time the gateway accepted it: what a benchmark needs to tell the orchestrator's latency from the
  agencies' time.

``GET /admin/steps`` lists every step handed over, with the time its result is ready and whether the
lateness switch chose it (``Simulator.made_late``).
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic_settings import BaseSettings, SettingsConfigDict

from lienthong.agencies import StepRequest, StepTicket
from lienthong.agencies.results import generate
from lienthong.calendar import get_calendar
from lienthong.catalog import get_catalog
from lienthong.clock import get_clock

log = logging.getLogger("lienthong.simulators.agency")

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
    callbacks: bool = True
    callback_delay_seconds: float = 2.0
    callback_attempts: int = 8
    callback_backoff_seconds: float = 1.0
    callback_backoff_max_seconds: float = 60.0


class _Entry:
    def __init__(self, request: StepRequest, ticket: str, ready_at: datetime, refused: bool,
                 result: dict[str, Any], reason: str | None) -> None:
        self.request, self.ticket, self.ready_at = request, ticket, ready_at
        self.refused, self.result, self.reason = refused, result, reason
        self.requested_at = time.time()  # real time, for the latency benchmark
        # Asynchronous steps stay pending (for polling too) until their callback is due.
        self.held = False
        self.delivery: dict[str, Any] | None = None

    def view(self, now: datetime) -> StepTicket:
        if self.held or now < self.ready_at:
            return StepTicket(ticket=self.ticket, request_id=self.request.request_id, state="pending")
        return StepTicket(
            ticket=self.ticket, request_id=self.request.request_id,
            state="refused" if self.refused else "done",
            result={} if self.refused else self.result, reason=self.reason,
            finished_at=self.ready_at,
        )


class _Courier:
    """One thread delivering due callbacks, retrying with back-off while the receiver is down."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._queue: list[tuple[float, int, str]] = []  # (monotonic due, tiebreak, ticket)
        self._seq = 0
        self._current: dict[str, int] = {}  # ticket -> the schedule that counts
        self._cv = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._http = httpx.Client(timeout=10.0)

    def schedule(self, ticket: str, delay: float) -> None:
        """(Re)schedule the ticket's callback; an earlier schedule of the same ticket is void."""
        with self._cv:
            self._seq += 1
            self._current[ticket] = self._seq
            heapq.heappush(self._queue, (time.monotonic() + max(delay, 0.0), self._seq, ticket))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sim-callbacks", daemon=True)
                self._thread.start()
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._http.close()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stop and (not self._queue or self._queue[0][0] > time.monotonic()):
                    self._cv.wait(timeout=(self._queue[0][0] - time.monotonic()) if self._queue else None)
                if self._stop:
                    return
                _, seq, ticket = heapq.heappop(self._queue)
                if self._current.get(ticket) != seq:
                    continue  # rescheduled meanwhile (released early)
                del self._current[ticket]
            try:
                self._attempt(ticket)
            except Exception:  # never let one callback kill the courier
                log.exception("callback of ticket %s failed unexpectedly", ticket)

    def _attempt(self, ticket: str) -> None:
        sim, sw = self.sim, self.sim.switches
        with sim._lock:
            entry = sim._by_ticket[ticket]
        if get_clock().now() < entry.ready_at:  # realistic mode: the agency is still working on it
            self.schedule(ticket, 0.2)
            return
        entry.held = False
        delivery = entry.delivery
        assert delivery is not None
        delivery["attempts"] += 1
        url = str(entry.request.callback_url)
        status: int | None = None
        try:
            status = self._post(entry, url)
        except httpx.HTTPError as exc:
            delivery["last_error"] = type(exc).__name__
        except _CannotSign as exc:
            delivery.update(state="gave_up", last_error=str(exc))
            log.error("callback of %s not sent: %s", entry.request.request_id, exc)
            return
        delivery["last_status"] = status
        if status is not None and 200 <= status < 300:
            delivery["state"], delivery["delivered_at"] = "delivered", time.time()
            log.info("callback of %s delivered (attempt %d)", entry.request.request_id, delivery["attempts"])
            return
        if status is not None and status < 500 and status != 429:
            # 409 (step already closed, result already received) and other refusals: do not insist.
            delivery["state"] = "rejected"
            log.warning("callback of %s refused by %s with %d", entry.request.request_id, url, status)
            return
        if delivery["attempts"] >= sw.callback_attempts:
            delivery["state"] = "gave_up"
            log.error("callback of %s gave up after %d attempts (%s)", entry.request.request_id,
                      delivery["attempts"], status or delivery.get("last_error"))
            return
        backoff = min(sw.callback_backoff_max_seconds,
                      sw.callback_backoff_seconds * 2 ** (delivery["attempts"] - 1))
        log.warning("callback of %s failed (%s), attempt %d of %d; again in %.1f s", entry.request.request_id,
                    status or delivery.get("last_error"), delivery["attempts"], sw.callback_attempts, backoff)
        self.schedule(ticket, backoff)

    def _post(self, entry: _Entry, url: str) -> int:
        from lienthong.gateway.signing import signed_headers

        agency = entry.request.agency
        secret = self.sim.secret_of(agency)
        view = entry.view(get_clock().now())
        body = {"state": view.state, "result": view.result, "reason": view.reason, "ticket": view.ticket,
                "request_id": view.request_id,
                "finished_at": view.finished_at.isoformat() if view.finished_at else None}
        raw = json.dumps({k: v for k, v in body.items() if v is not None}, ensure_ascii=False).encode()
        path = urlsplit(url).path
        headers = signed_headers(agency, secret, "POST", path, raw, idempotency_key=f"callback-{entry.ticket}")
        return self._http.post(url, content=raw, headers=headers).status_code


class _CannotSign(Exception):
    pass


class Simulator:
    def __init__(self, switches: Switches | None = None, *, secrets: Mapping[str, str] | None = None) -> None:
        self.switches = switches or Switches()
        self._by_ticket: dict[str, _Entry] = {}
        self._by_request: dict[str, str] = {}
        self._lock = threading.Lock()
        self._secrets = dict(secrets) if secrets is not None else None
        self._courier = _Courier(self)
        self.calls = 0

    def secret_of(self, agency: str) -> str:
        """The secret the simulator signs callbacks with: the newest active one of the agency."""
        if self._secrets is None:
            from lienthong.gateway.settings import GatewaySettings

            self._secrets = {code: values[-1].get_secret_value()
                             for code, values in GatewaySettings().agency_secrets.items()}
        try:
            return self._secrets[agency]
        except KeyError:
            raise _CannotSign(f"no secret for agency {agency} in LIENTHONG_AGENCY_SECRETS") from None

    def deliveries(self) -> dict[str, dict[str, Any]]:
        """Callback deliveries by request id: state (scheduled, delivered, rejected, gave_up), attempts."""
        with self._lock:
            return {e.request.request_id: dict(e.delivery) for e in self._by_ticket.values() if e.delivery}

    def requests(self) -> list[dict[str, Any]]:
        """Every step request: dossier, step, kind, when it arrived and when its callback was
        accepted (real epoch seconds; None while not delivered or when answered synchronously)."""
        with self._lock:
            entries = list(self._by_ticket.values())
        return [{"request_id": e.request.request_id, "dossier_code": e.request.dossier_code,
                 "step_key": e.request.step_key, "kind": e.request.kind, "requested_at": e.requested_at,
                 "delivered_at": (e.delivery or {}).get("delivered_at")} for e in entries]

    def release(self) -> list[str]:
        """Send every scheduled callback now (an operator's or a test's control): request ids."""
        with self._lock:
            due = [e for e in self._by_ticket.values() if e.delivery and e.delivery["state"] == "scheduled"]
        for e in due:
            self._courier.schedule(e.ticket, 0.0)
        return [e.request.request_id for e in due]

    def close(self) -> None:
        self._courier.stop()

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
            if req.callback_url and sw.callbacks:
                entry.held = True
                entry.delivery = {"state": "scheduled", "attempts": 0, "callback_url": req.callback_url}
                delay = sw.callback_delay_seconds * (0.5 + self._rng(req.request_id, "callback").random())
                self._courier.schedule(entry.ticket, delay)
            return entry.view(now)

    def poll(self, ticket: str) -> StepTicket | None:
        with self._lock:
            entry = self._by_ticket.get(ticket)
        return entry.view(get_clock().now()) if entry else None

    def made_late(self, request_id: str, kind: str = "agency") -> bool:
        """Whether the ``late_share`` switch makes this step finish after its due time: the only
        source of lateness the simulator has (every other step ends within 90% of its budget)."""
        return (self.switches.mode == "realistic" and kind != "payment"
                and self._rng(request_id, "time").random() < self.switches.late_share)

    def _ready_at(self, req: StepRequest, now: datetime) -> datetime:
        if self.switches.mode == "instant":
            return now
        cal = get_calendar()
        rng = self._rng(req.request_id, "time")
        if req.kind == "payment":  # the applicant pays within half a day to three working days
            return cal.add_working_seconds(now, rng.uniform(0.5, 3.0) * 9.5 * 3600)
        budget = cal.working_seconds_between(now, req.due_at)
        if rng.random() < self.switches.late_share:  # the draw made_late() repeats
            return cal.add_working_seconds(req.due_at, rng.uniform(1.0, 12.0) * 3600)
        return cal.add_working_seconds(now, rng.uniform(0.15, 0.9) * max(budget, 1800.0))

    def steps(self) -> dict[str, dict[str, Any]]:
        """Every step handed to an agency, by request id: when its result is (or will be) ready on
        the shared clock, and whether the lateness switch chose it. The demo steers its clock by
        this (time stops while a ready result is not yet taken in); tests check lateness by it."""
        with self._lock:
            entries = list(self._by_ticket.values())
        return {e.request.request_id: {"agency": e.request.agency, "kind": e.request.kind,
                                       "ready_at": e.ready_at.isoformat(), "refused": e.refused,
                                       "late_by_switch": self.made_late(e.request.request_id, e.request.kind)}
                for e in entries}


class SwitchUpdate(BaseModel):
    """A run-time change of switches (PUT /admin/switches): only the fields given change."""

    mode: Literal["instant", "realistic"] | None = None
    late_share: float | None = None
    refusal_rate: float | None = None
    failure_rate: float | None = None
    fail_next: int | None = None
    latency_ms: int | None = None
    seed: int | None = None
    callbacks: bool | None = None
    callback_delay_seconds: float | None = None
    callback_attempts: int | None = None
    callback_backoff_seconds: float | None = None
    callback_backoff_max_seconds: float | None = None


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

    @app.get("/admin/switches")
    def get_switches() -> dict[str, Any]:
        return sim.switches.model_dump()

    @app.get("/admin/callbacks")
    def get_callbacks() -> dict[str, Any]:
        return sim.deliveries()

    @app.get("/admin/requests")
    def get_requests() -> list[dict[str, Any]]:
        return sim.requests()

    @app.get("/admin/steps")
    def get_steps() -> dict[str, Any]:
        return sim.steps()

    @app.post("/admin/callbacks/release")
    def release_callbacks() -> dict[str, list[str]]:
        return {"released": sim.release()}

    @app.put("/admin/switches")
    def put_switches(update: SwitchUpdate) -> dict[str, Any]:
        for k, v in update.model_dump(exclude_none=True).items():
            setattr(sim.switches, k, v)
        return sim.switches.model_dump()

    return app

