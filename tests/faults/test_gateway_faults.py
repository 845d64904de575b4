"""Fault test of issue 6: the gateway, the Prefect server and the relay are killed (SIGKILL) at
random (seeded) points while 1,000 signed submissions are sent, 10% of them duplicates (same
Idempotency-Key and body, freshly signed) and 5% replays (a request already accepted, resent byte
for byte with its used nonce); each is restarted after a short pause. The sender behaves like a
real client: on a connection error or a 503 it sends again with the same idempotency key and a new
nonce, timestamp and signature, so every distinct submission is eventually accepted.

Afterwards, once the relay has drained the inbox:

- the dossiers in the database are exactly the distinct accepted submissions (one per key);
- every answer for one key carries the same dossier code, and that dossier exists;
- every replay was refused (401 ``replayed_nonce``);
- every inbox row is relayed, and the Prefect API holds exactly one flow run per dossier, keyed on
  the dossier's UID, whose id the dossier and its inbox row record.

No worker runs: the invariant is about flow runs created, not executed.
``LIENTHONG_FAULT_SEED`` and ``LIENTHONG_FAULT_SUBMISSIONS`` change the seed and the volume.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from lienthong.gateway.signing import signed_headers
from tests.faults.conftest import Process, free_port, prefect_server

# Three minutes or so on an idle 2-core machine; the limit leaves room for a loaded one.
pytestmark = [pytest.mark.faults, pytest.mark.topology, pytest.mark.timeout(1800)]

SEED = int(os.environ.get("LIENTHONG_FAULT_SEED", "6006"))
TOTAL = int(os.environ.get("LIENTHONG_FAULT_SUBMISSIONS", "1000"))
DUPLICATE_SHARE, REPLAY_SHARE = 0.10, 0.05
CONCURRENCY = 32
KILLS = {"gateway": 4, "prefect-server": 3, "relay": 2}
PATH = "/v1/dossiers"
SECRETS = {"DVCQG": ["dvcqg-fault-secret-0123456789"], "UBND_XA": ["ubnd-fault-secret-0123456789"]}
RECEIVED = datetime.fromisoformat("2026-03-10T09:15:00+07:00")
CLOCK = "fixed:2026-03-10T10:00:00+07:00"
RETRYABLE_STATUS = (503, 429)
GIVE_UP_SECONDS = 600.0  # one delivery that never gets an answer fails the test instead of hanging it


# --- the plan: what is sent, in which order, and where each service dies ------------------------


@dataclass
class Original:
    index: int
    agency: str
    key: str
    body: bytes
    answers: list[httpx.Response] = field(default_factory=list)
    accepted: asyncio.Event = field(default_factory=asyncio.Event)
    accepted_headers: dict[str, str] | None = None  # the headers of the attempt answered 202


@dataclass(frozen=True)
class Send:
    kind: str  # "original", "duplicate" or "replay"
    target: int  # index of the original


@dataclass(frozen=True)
class Kill:
    at: int  # the position in the stream before which the service dies
    service: str
    pause: float  # seconds before it is started again


def plan(rng: random.Random) -> tuple[list[Original], list[Send], list[Kill]]:
    from samples.dossiers import make_submission

    n_dup, n_replay = round(TOTAL * DUPLICATE_SHARE), round(TOTAL * REPLAY_SHARE)
    n_distinct = TOTAL - n_dup - n_replay
    procedures = ["lien-thong-khai-sinh", "lien-thong-khai-tu", "chuyen-nhuong-dat"]
    originals = []
    for i in range(n_distinct):
        agency = "UBND_XA" if rng.random() < 0.2 else "DVCQG"
        sub = make_submission(rng.choice(procedures), random.Random(rng.getrandbits(32)), RECEIVED)
        originals.append(Original(i, agency, f"fault-{SEED}-{i:04d}", sub.model_dump_json().encode()))
    # Each extra send goes somewhere after its original in the stream (float positions, sorted).
    slots: list[tuple[float, Send]] = [(float(i), Send("original", i)) for i in range(n_distinct)]
    for _ in range(n_dup):
        t = rng.randrange(n_distinct)
        slots.append((rng.uniform(t + 0.5, n_distinct), Send("duplicate", t)))
    for t in rng.sample(range(n_distinct - 1), n_replay):
        slots.append((rng.uniform(t + 0.5, n_distinct), Send("replay", t)))
    stream = [send for _, send in sorted(slots, key=lambda s: s[0])]
    kills = [
        Kill(rng.randrange(TOTAL // 20, TOTAL - TOTAL // 20), service, round(rng.uniform(0.2, 2.0), 2))
        for service, n in KILLS.items()
        for _ in range(n)
    ]
    return originals, stream, sorted(kills, key=lambda k: k.at)


# --- the processes --------------------------------------------------------------------------


@dataclass
class Stack:
    services: dict[str, Process]
    gateway_url: str
    prefect_api: str
    pg_url: str

    def kill_and_restart(self, kill: Kill) -> None:
        """Blocking: wait until the service is up (a previous restart may still be under way),
        kill it, then start it again after the pause without waiting for it."""
        proc = self.services[kill.service]
        proc.wait_healthy()
        proc.kill()
        time.sleep(kill.pause)
        proc.start(wait=False)


@pytest.fixture
def stack(
    pg_scratch: str, prefect_pg: str, services: list[Process], tmp_path: Path
) -> Stack:
    logs = tmp_path / "logs"
    prefect = prefect_server(tmp_path / "prefect", logs, database_url=prefect_pg)
    services.append(prefect)  # registered first: stopped at teardown even if it never gets healthy
    prefect.start()
    api = prefect.env["PREFECT_API_URL"]
    register_deployments(api, tmp_path / "client")

    port = free_port()
    env = {
        "LIENTHONG_DATABASE_URL": pg_scratch,
        "LIENTHONG_VAR_DIR": str(tmp_path / "var"),
        "LIENTHONG_CLOCK": CLOCK,
        "LIENTHONG_AGENCY_SECRETS": json.dumps(SECRETS),
        # The per-agency token bucket is not under test here (a 429 would only be retried).
        "LIENTHONG_GATEWAY_RATE_PER_SECOND": "100000",
        "LIENTHONG_GATEWAY_RATE_BURST": "100000",
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(tmp_path / "client"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    gateway = Process(
        "gateway",
        [sys.executable, "-m", "lienthong.cli", "gateway", "--port", str(port), "--log-level", "warning"],
        env,
        health=f"http://127.0.0.1:{port}/healthz",
        log_dir=logs,
    )
    relay = Process("relay", [sys.executable, "-m", "infra.cli", "relay", "--idle", "0.2"], env, log_dir=logs)
    services += [gateway, relay]
    gateway.start()
    relay.start()
    return Stack({"gateway": gateway, "prefect-server": prefect, "relay": relay}, f"http://127.0.0.1:{port}",
                 api, pg_scratch)


def register_deployments(api: str, home: Path) -> None:
    """Every procedure's deployment, as `lienthong serve` registers them (no run executes here)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    from infra.deployments import procedure_deployments

    home.mkdir(parents=True, exist_ok=True)
    with temporary_settings({PREFECT_API_URL: api, PREFECT_HOME: str(home)}):
        for deployment in procedure_deployments():
            deployment.apply()


# --- the sender -----------------------------------------------------------------------------


@dataclass
class Tally:
    attempts: int = 0
    connection_errors: int = 0
    retry_status: Counter[int] = field(default_factory=Counter)
    replay_answers: list[tuple[httpx.Response, float]] = field(default_factory=list)  # and its age, s
    duplicate_answers: list[tuple[int, httpx.Response]] = field(default_factory=list)
    fired: list[Kill] = field(default_factory=list)


async def post_until_answered(
    client: httpx.AsyncClient,
    body: bytes,
    headers_for: Callable[[], dict[str, str]],
    pause: Callable[[int], float],
    tally: Tally,
    what: str,
) -> tuple[httpx.Response, dict[str, str], float]:
    """POST until a definite answer (neither a retryable status nor a broken connection); returns
    it, the headers of the answered attempt and the wall-clock time that attempt was sent."""
    deadline, attempt = time.monotonic() + GIVE_UP_SECONDS, 0
    while True:
        headers = headers_for()
        attempt += 1
        tally.attempts += 1
        try:
            sent = time.time()
            r = await client.post(PATH, content=body, headers=headers)
            if r.status_code not in RETRYABLE_STATUS:
                return r, headers, sent
            tally.retry_status[r.status_code] += 1
        except httpx.TransportError:
            tally.connection_errors += 1
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: no answer after {attempt} attempts")
        await asyncio.sleep(pause(attempt))


async def deliver(client: httpx.AsyncClient, original: Original, tally: Tally) -> tuple[httpx.Response, dict[str, str]]:
    """Send one request until it gets a definite answer: a fresh signature for every attempt,
    backing off as a well-behaved agency would."""
    secret = SECRETS[original.agency][0]
    r, headers, _ = await post_until_answered(
        client,
        original.body,
        lambda: signed_headers(original.agency, secret, "POST", PATH, original.body, idempotency_key=original.key),
        lambda attempt: min(2.0, 0.05 * 2 ** min(attempt, 6)) * random.uniform(0.5, 1.0),
        tally,
        original.key,
    )
    return r, headers


async def replay(client: httpx.AsyncClient, original: Original, tally: Tally) -> tuple[httpx.Response, float]:
    """An attacker (or a confused proxy) resends an accepted request byte for byte; returns the
    answer and how old the request's signature was when it was sent."""
    await original.accepted.wait()
    headers = original.accepted_headers
    assert headers is not None
    r, _, sent = await post_until_answered(
        client, original.body, lambda: headers, lambda _attempt: 0.2, tally, f"replay of {original.key}"
    )
    return r, sent - int(headers["X-Timestamp"])


async def send_all(stack: Stack, originals: list[Original], stream: list[Send], kills: list[Kill]) -> Tally:
    tally = Tally()
    position = 0
    gate = asyncio.Lock()  # taking the next send (and firing a kill due there) happens one at a time
    pending_kills = list(kills)

    async def next_send() -> Send | None:
        nonlocal position
        async with gate:
            while pending_kills and pending_kills[0].at <= position:
                kill = pending_kills.pop(0)
                await asyncio.to_thread(stack.kill_and_restart, kill)  # in-flight requests go on
                tally.fired.append(kill)
            if position >= len(stream):
                return None
            position += 1
            return stream[position - 1]

    async def worker(client: httpx.AsyncClient) -> None:
        while (send := await next_send()) is not None:
            original = originals[send.target]
            if send.kind == "replay":
                tally.replay_answers.append(await replay(client, original, tally))
                continue
            r, headers = await deliver(client, original, tally)
            original.answers.append(r)
            if send.kind == "duplicate":
                tally.duplicate_answers.append((send.target, r))
            if r.status_code == 202 and not original.accepted.is_set():
                original.accepted_headers = headers
                original.accepted.set()

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return tally


# --- reading the outcome --------------------------------------------------------------------


def wait_until_relayed(stack: Stack, timeout: float = 600.0) -> None:
    from sqlalchemy import func, select

    from lienthong.db import session_scope
    from lienthong.db.models import InboxRow

    deadline = time.monotonic() + timeout
    while True:
        with session_scope() as s:
            pending = s.execute(select(func.count()).where(InboxRow.state == "pending")).scalar_one()
        if not pending:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{pending} inbox rows still pending:\n{stack.services['relay'].log_tail()}")
        if not stack.services["relay"].alive:
            raise AssertionError(f"the relay died:\n{stack.services['relay'].log_tail()}")
        time.sleep(1.0)


def flow_runs(api: str) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    async def read_all() -> list[Any]:
        runs: list[Any] = []
        async with get_client() as client:
            while True:
                page = await client.read_flow_runs(limit=200, offset=len(runs))
                runs.extend(page)
                if len(page) < 200:
                    return runs

    with temporary_settings({PREFECT_API_URL: api}):
        return asyncio.run(read_all())


# --- the test -------------------------------------------------------------------------------


def test_every_accepted_submission_makes_one_dossier_and_one_flow_run_through_kills(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(SEED)
    originals, stream, kills = plan(rng)
    print(f"seed {SEED}: {len(originals)} distinct, {len(stream) - len(originals)} resent; kills at "
          + ", ".join(f"{k.at}:{k.service}" for k in kills))

    started = time.monotonic()
    tally = asyncio.run(send_all(stack, originals, stream, kills))
    sent = time.monotonic()
    for proc in stack.services.values():  # the last restarts finish
        proc.wait_healthy()
    monkeypatch.setenv("LIENTHONG_DATABASE_URL", stack.pg_url)
    from lienthong.settings import reset_settings

    reset_settings()
    wait_until_relayed(stack)
    print(f"sent in {sent - started:.0f} s, relayed {time.monotonic() - sent:.0f} s later; "
          f"{tally.attempts} attempts, {tally.connection_errors} connection errors, "
          f"retried statuses {dict(tally.retry_status)}, kills "
          + ", ".join(f"{n}: {p.kills}" for n, p in stack.services.items()))

    # Every kill planned happened while the submissions were being sent.
    assert [(k.at, k.service) for k in tally.fired] == [(k.at, k.service) for k in kills]
    assert {n: p.kills for n, p in stack.services.items()} == KILLS

    # The sender: every distinct submission accepted, each key answered with one dossier code.
    codes: dict[str, str] = {}
    for o in originals:
        statuses = {r.status_code for r in o.answers}
        assert statuses == {202}, (o.key, [(r.status_code, r.text[:200]) for r in o.answers])
        bodies = {json.dumps(r.json(), sort_keys=True) for r in o.answers}  # the original answer, unchanged
        assert len(bodies) == 1, (o.key, bodies)
        created = [r for r in o.answers if r.headers.get("Idempotent-Replayed") != "true"]
        assert len(created) <= 1, (o.key, "answered as new more than once")
        codes[f"{o.agency}:{o.key}"] = o.answers[0].json()["dossier_code"]
    assert len(set(codes.values())) == len(originals)  # two keys never share a dossier
    for target, r in tally.duplicate_answers:
        assert r.json()["dossier_code"] == codes[f"{originals[target].agency}:{originals[target].key}"]
    assert len(tally.duplicate_answers) == round(TOTAL * DUPLICATE_SHARE)

    # Replays of accepted requests are refused: as replays while their signature is fresh (a
    # replay delayed past the 300 s window, on a very slow machine, is refused as stale instead).
    assert len(tally.replay_answers) == round(TOTAL * REPLAY_SHARE)
    assert {r.status_code for r, _ in tally.replay_answers} == {401}
    fresh = [r.json()["error"] for r, age in tally.replay_answers if age < 290]
    assert fresh and set(fresh) == {"replayed_nonce"}

    # The database: one dossier per distinct accepted submission, nothing else; inbox relayed.
    from sqlalchemy import select

    from lienthong.db import session_scope
    from lienthong.db.models import DossierRow, InboxRow

    with session_scope() as s:
        dossiers = {d.idempotency_key: (d.code, d.uid, d.flow_run_id) for d in s.execute(select(DossierRow)).scalars()}
        inbox = list(s.execute(select(InboxRow)).scalars())
    assert {k: v[0] for k, v in dossiers.items()} == codes
    assert len(inbox) == len(originals)
    assert {r.state for r in inbox} == {"done"}
    by_code = {code: (uid, run) for code, uid, run in dossiers.values()}
    assert all(r.flow_run_id == by_code[r.dossier_code][1] is not None for r in inbox)

    # Prefect: exactly one flow run per dossier, keyed on its UID, the one the dossier records.
    runs = flow_runs(stack.prefect_api)
    per_dossier: dict[str, list[Any]] = defaultdict(list)
    for run in runs:
        per_dossier[run.parameters.get("dossier_code")].append(run)
    doubles = {code: len(rs) for code, rs in per_dossier.items() if len(rs) != 1}
    assert not doubles, f"dossiers with more than one flow run: {doubles}"
    assert set(per_dossier) == set(by_code)
    for code, (uid, run_id) in by_code.items():
        (run,) = per_dossier[code]
        assert str(run.id) == run_id and run.idempotency_key == f"dossier-{uid}"
