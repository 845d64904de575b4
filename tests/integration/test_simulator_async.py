"""The agency simulator's asynchronous mode over real HTTP: a step submitted with a callback URL is
accepted pending, then POSTed back signed as its agency, retried with back-off while the receiver is
down, bounded, never retried after a refusal; polling the same ticket keeps working."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from lienthong.agencies import StepRequest
from lienthong.agencies.client import HttpAgencyClient
from lienthong.gateway.signing import matches
from lienthong.simulators.agency import Simulator, Switches, create_app
from tests.conftest import LiveServer, until

pytestmark = pytest.mark.integration

SECRETS = {"UBND_XA": "commune-secret-0123456789", "BHXH": "bhxh-secret-0123456789ab"}
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")


class Receiver:
    """A stand-in for the gateway's step-result endpoint: checks the signature the way the gateway
    does and answers what the test tells it to."""

    def __init__(self, answer: Callable[[int], int] = lambda n: 202) -> None:
        self.received: list[dict[str, Any]] = []
        self.answer = answer
        self.app = FastAPI()

        @self.app.post("/v1/steps/{ref}/result")
        async def result(ref: str, request: Request) -> JSONResponse:
            raw = await request.body()
            h = request.headers
            ok = matches([SECRETS.get(h.get("x-agency", ""), "")], h.get("x-signature", ""), h.get("x-timestamp", ""),
                         h.get("x-nonce", ""), "POST", request.url.path, hashlib.sha256(raw).hexdigest())
            self.received.append({"ref": ref, "ok": ok, "agency": h.get("x-agency"), "nonce": h.get("x-nonce"),
                                  "key": h.get("idempotency-key"), "body": await request.json()})
            return JSONResponse({"accepted": ok}, status_code=self.answer(len(self.received)) if ok else 401)


def request(n: int = 1, callback_url: str | None = None, agency: str = "UBND_XA") -> StepRequest:
    decl = {"child": {"full_name": "Nguyễn Văn A", "date_of_birth": "2026-03-01", "sex": "male"},
            "applicant": {"citizen_id": "079203001234"}}
    code = f"000.00.06.H56-260310-{n:04d}"
    return StepRequest(request_id=f"{code}:khai_sinh", dossier_code=code,
                       procedure_id="lien-thong-khai-sinh", step_key="khai_sinh", agency=agency,
                       action="Đăng ký khai sinh", started_at=T, due_at=T + timedelta(hours=6),
                       outputs=["personal_id", "birth_extract"], data={"declaration": decl},
                       callback_url=callback_url)


def fast(**kw: Any) -> Switches:
    base: dict[str, Any] = {"mode": "instant", "callback_delay_seconds": 0.05, "callback_backoff_seconds": 0.05,
                            "callback_backoff_max_seconds": 0.2, "callback_attempts": 8}
    return Switches(**{**base, **kw})


@pytest.fixture
def simulator() -> Iterator[Callable[..., tuple[Simulator, HttpAgencyClient]]]:
    made: list[tuple[Simulator, LiveServer]] = []

    def make(switches: Switches) -> tuple[Simulator, HttpAgencyClient]:
        sim = Simulator(switches, secrets=SECRETS)
        server = LiveServer(create_app(sim)).__enter__()
        made.append((sim, server))
        return sim, HttpAgencyClient(server.url)

    yield make
    for sim, server in made:
        sim.close()
        server.__exit__(None, None, None)


def test_a_step_with_a_callback_url_is_pending_then_called_back_signed_and_pollable(simulator):
    receiver = Receiver()
    with LiveServer(receiver.app) as gw:
        sim, client = simulator(fast())
        ticket = client.submit(request(1, f"{gw.url}/v1/steps/ref1/result"))
        assert ticket.state == "pending"  # instant mode, yet an asynchronous agency answers later
        until(lambda: sim.deliveries()[ticket.request_id]["state"] == "delivered", "the callback")
        polled = client.poll(ticket.ticket)
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got["ok"] and got["agency"] == "UBND_XA" and got["ref"] == "ref1"
    assert got["key"] == f"callback-{ticket.ticket}"
    body = got["body"]
    assert body["state"] == "done" and body["ticket"] == ticket.ticket and body["request_id"] == ticket.request_id
    assert set(body["result"]) == {"personal_id", "birth_extract"} and "reason" not in body
    # Polling the same ticket tells the same result.
    assert polled.state == "done" and polled.result == body["result"]
    assert datetime.fromisoformat(body["finished_at"]) == polled.finished_at


def test_the_callback_is_retried_while_the_gateway_is_down_then_delivered_once(simulator):
    receiver = Receiver()
    gw = LiveServer(receiver.app)  # its port is chosen, nothing listens there yet
    sim, client = simulator(fast())
    ticket = client.submit(request(2, f"{gw.url}/v1/steps/ref2/result"))
    until(lambda: sim.deliveries()[ticket.request_id]["attempts"] >= 3, "three failed attempts")
    assert sim.deliveries()[ticket.request_id]["state"] == "scheduled"
    assert sim.deliveries()[ticket.request_id]["last_error"] == "ConnectError"
    with gw:
        until(lambda: sim.deliveries()[ticket.request_id]["state"] == "delivered", "delivery after the outage")
    assert len(receiver.received) == 1 and receiver.received[0]["ok"]


def test_a_gateway_answering_503_is_retried_with_the_same_idempotency_key_and_fresh_nonces(simulator):
    receiver = Receiver(answer=lambda n: 503 if n <= 2 else 202)
    with LiveServer(receiver.app) as gw:
        sim, client = simulator(fast())
        ticket = client.submit(request(3, f"{gw.url}/v1/steps/ref3/result"))
        until(lambda: sim.deliveries()[ticket.request_id]["state"] == "delivered", "the third attempt")
    assert len(receiver.received) == 3 and sim.deliveries()[ticket.request_id]["attempts"] == 3
    assert len({r["key"] for r in receiver.received}) == 1
    assert len({r["nonce"] for r in receiver.received}) == 3  # a replayed nonce would be refused


def test_retries_are_bounded_and_a_refusal_is_not_retried(simulator):
    nobody = LiveServer(FastAPI())  # never started
    sim, client = simulator(fast(callback_attempts=3))
    lost = client.submit(request(4, f"{nobody.url}/v1/steps/ref4/result"))
    receiver = Receiver(answer=lambda n: 409)  # e.g. the step was closed already
    with LiveServer(receiver.app) as gw:
        closed = client.submit(request(5, f"{gw.url}/v1/steps/ref5/result"))
        until(lambda: sim.deliveries()[closed.request_id]["state"] == "rejected", "the refusal")
        until(lambda: sim.deliveries()[lost.request_id]["state"] == "gave_up", "giving up")
    assert sim.deliveries()[lost.request_id]["attempts"] == 3
    assert sim.deliveries()[closed.request_id]["attempts"] == 1 and len(receiver.received) == 1


def test_an_agency_without_a_secret_cannot_call_back_and_says_so(simulator):
    receiver = Receiver()
    with LiveServer(receiver.app) as gw:
        sim, client = simulator(fast())
        ticket = client.submit(request(6, f"{gw.url}/v1/steps/ref6/result", agency="CONG_AN_XA"))
        until(lambda: sim.deliveries()[ticket.request_id]["state"] == "gave_up", "the refusal to send unsigned")
    assert "CONG_AN_XA" in sim.deliveries()[ticket.request_id]["last_error"] and not receiver.received


def test_switching_callbacks_off_at_run_time_makes_the_callback_url_ignored(simulator):
    sim, client = simulator(fast())
    base = str(client._http.base_url).rstrip("/")
    assert httpx.put(f"{base}/admin/switches", json={"callbacks": False}).json()["callbacks"] is False
    ticket = client.submit(request(7, "http://127.0.0.1:9/v1/steps/ref7/result"))
    assert ticket.state == "done" and not sim.deliveries()


def test_results_and_callback_timing_are_a_function_of_the_seed(simulator):
    receiver = Receiver()
    with LiveServer(receiver.app) as gw:
        url = f"{gw.url}/v1/steps/ref8/result"
        runs = []
        for seed in (11, 11, 12):
            sim, client = simulator(fast(seed=seed))
            t = client.submit(request(8, url))
            until(lambda sim=sim, t=t: sim.deliveries()[t.request_id]["state"] == "delivered", "the callback")
            runs.append(client.poll(t.ticket).result)
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_release_sends_a_far_scheduled_callback_now(simulator):
    receiver = Receiver()
    with LiveServer(receiver.app) as gw:
        sim, client = simulator(fast(callback_delay_seconds=3600))
        ticket = client.submit(request(9, f"{gw.url}/v1/steps/ref9/result"))
        assert client.poll(ticket.ticket).state == "pending"
        base = str(client._http.base_url).rstrip("/")
        assert httpx.post(f"{base}/admin/callbacks/release").json() == {"released": [ticket.request_id]}
        until(lambda: sim.deliveries()[ticket.request_id]["state"] == "delivered", "the released callback")
    assert len(receiver.received) == 1 and sim.deliveries()[ticket.request_id]["attempts"] == 1


def test_the_request_log_gives_real_times_of_each_request_and_of_its_accepted_callback(simulator):
    """What the latency benchmark reads (GET /admin/requests): a synchronous step has no callback
    time; an asynchronous one gets the time the receiver accepted it, never before it arrived."""
    receiver = Receiver(answer=lambda n: 503 if n == 1 else 202)
    with LiveServer(receiver.app) as gw:
        sim, client = simulator(fast())
        sync = client.submit(request(1))
        later = client.submit(request(2, f"{gw.url}/v1/steps/ref2/result"))
        until(lambda: sim.deliveries()[later.request_id]["state"] == "delivered", "the second attempt")
        log = {r["request_id"]: r for r in client._http.get("/admin/requests").json()}
    assert log[sync.request_id]["delivered_at"] is None
    assert log[sync.request_id]["dossier_code"] == "000.00.06.H56-260310-0001"
    entry = log[later.request_id]
    assert entry["step_key"] == "khai_sinh" and entry["kind"] == "agency"
    assert entry["delivered_at"] > entry["requested_at"]  # after the refused first attempt's back-off
