"""Faults injected into the production topology (infra/prod.py) under a small load of signed
dossiers, each test ending with the shared invariants (tests/faults/invariants.py):

- a worker killed mid-flow (its whole process tree, as a host dies): the zombie automation marks
  the run crashed, the bounded re-run finishes it, nothing is published twice;
- the agency simulator frozen for a while (SIGSTOP: no answer, no callback): steps retry with
  back-off and finish after it returns, while deadlines keep running and the sweep warns;
- the S3 endpoint gone for a while (a TCP proxy in front of moto stopped; moto keeps its objects):
  publication retries, nothing half-written (``vault verify``);
- PostgreSQL (a cluster of our own, holding the Liên Thông database) stopped and started under
  submissions: the gateway answers 503 with Retry-After and stores nothing it cannot, nothing
  accepted is lost;
- one vault object corrupted: ``lienthong vault verify --all`` finds it (exit 1).

The topology runs one Prefect API, one gateway, two workers; agencies are asynchronous (they
call the gateway back) on a simulated clock where an office hour lasts one real second.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import psutil
import pytest

from infra.processes import OwnPostgres, Process, free_port, free_port_range, scratch_database
from tests.conftest import PG_ADMIN
from tests.faults.invariants import TERMINAL, WAITING, check_invariants

pytestmark = [pytest.mark.faults, pytest.mark.topology]

PROCS = ["lien-thong-khai-sinh", "lien-thong-khai-tu", "chuyen-nhuong-dat"]
ASYNC_AGENCIES = ["UBND_XA", "CONG_AN_XA", "BHXH", "VPDKDD", "THUE"]
SPEED = 3600.0  # simulated office seconds per real second


@dataclass
class Topology:
    handle: Any
    pg: OwnPostgres
    s3_proxy: Process
    clock: Any
    secret: str
    gateway: str
    seed: int = 0
    accepted: list[str] = field(default_factory=list)

    # --- load -----------------------------------------------------------------------------------

    def body(self, i: int, *, received_now: bool = True) -> bytes:
        from lienthong.clock import get_clock
        from samples.dossiers import make_submission

        self.seed += 1
        sub = make_submission(PROCS[i % 3], random.Random(1000 + self.seed), get_clock().now())
        return sub.model_dump_json().encode()

    def post(self, http: httpx.Client, body: bytes, key: str) -> httpx.Response:
        from lienthong.gateway.signing import signed_headers

        headers = signed_headers("DVCQG", self.secret, "POST", "/v1/dossiers", body, idempotency_key=key)
        return http.post("/v1/dossiers", content=body, headers=headers)

    def push(self, n: int, tag: str) -> list[str]:
        """``n`` signed dossiers through the gateway (a 503 is retried after its Retry-After)."""
        codes: list[str] = []
        with httpx.Client(base_url=self.gateway, timeout=30) as http:
            for i in range(n):
                body, key = self.body(i), f"{tag}-{i}"
                for _ in range(60):
                    resp = self.post(http, body, key)
                    if resp.status_code == 202:
                        codes.append(resp.json()["dossier_code"])
                        break
                    assert resp.status_code in (429, 503), resp.text
                    time.sleep(float(resp.headers["Retry-After"]))
        self.accepted += codes
        return codes

    def statuses(self, codes: list[str]) -> dict[str, int]:
        from sqlalchemy import select

        from lienthong.db import session_scope
        from lienthong.db.models import DossierRow

        with session_scope() as s:
            return dict(s.execute(select(DossierRow.code, DossierRow.status).where(DossierRow.code.in_(codes))).all())

    def step_counts(self, codes: list[str]) -> tuple[tuple[str, int], ...]:
        """How many steps of these dossiers are in each status (with their statuses, what changes
        while the dossiers move on)."""
        from sqlalchemy import func, select

        from lienthong.db import session_scope
        from lienthong.db.models import DossierRow, StepRow

        with session_scope() as s:
            steps = s.execute(select(StepRow.status, func.count()).join(DossierRow)
                              .where(DossierRow.code.in_(codes)).group_by(StepRow.status)).all()
        return tuple(sorted((status, n) for status, n in steps))

    def settle(self, codes: list[str], timeout: float = 300.0, *, terminal_only: bool = True,
               cap: float = 900.0) -> dict[str, int]:
        """Wait until every dossier is terminal (or, unless ``terminal_only``, waiting). The wait
        ends after ``timeout`` seconds without progress (no dossier or step changed status), or
        after ``cap`` seconds in all: a slow machine is given time, a stuck dossier is not."""
        wanted = TERMINAL if terminal_only else TERMINAL | WAITING
        start = last_change = time.time()
        seen: tuple[Any, ...] = ()
        while True:
            states = self.statuses(codes)
            if len(states) == len(codes) and all(v in wanted for v in states.values()):
                return states
            now, mark = time.time(), (tuple(sorted(states.items())), self.step_counts(codes))
            if mark != seen:
                seen, last_change = mark, now
            if now - last_change > timeout or now - start > cap:
                return states
            time.sleep(2)

    def explain(self, codes: list[str]) -> str:
        """For an assertion message: each unsettled dossier, its steps and its flow runs, with the
        failed or unfinished task runs of those (name, state, message)."""
        from uuid import UUID

        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
        from sqlalchemy import select

        from lienthong.db import session_scope
        from lienthong.db.models import DossierRow, StepRow
        from tests.faults.invariants import flow_runs_by_dossier

        lines: list[str] = []
        runs = flow_runs_by_dossier()
        open_codes = [c for c, st in self.statuses(codes).items() if st not in TERMINAL]
        with session_scope() as s, get_client(sync_client=True) as client:
            for code in open_codes:
                steps = s.execute(select(StepRow.step_key, StepRow.agency, StepRow.status).join(DossierRow)
                                  .where(DossierRow.code == code)).all()
                lines.append(f"{code}: steps {[tuple(r) for r in steps]}")
                for run_id, state in runs.get(code, []):
                    run = client.read_flow_run(UUID(run_id))
                    msg = run.state.message if run.state else ""
                    lines.append(f"  run {run_id} {state} (runs {run.run_count}): {msg}")
                    tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
                    for t in tasks:
                        if t.state is not None and t.state.type.value != "COMPLETED":
                            lines.append(f"    task {t.name}: {t.state.type.value} {t.state.message or ''}"[:400])
        return "\n".join(lines)

    def worker_running(self, codes: list[str], timeout: float = 180.0) -> tuple[str, list[str]]:
        """Wait for a moment when a worker's process runs a flow run of ``codes`` that the API has
        Running, and none of them is Pending (claimed by a worker, not started yet: a worker dying
        then leaves it Pending for good, as no heartbeat ever comes; see the report of issue 8).
        Returns the worker and the ids of the runs its processes hold."""
        from tests.faults.invariants import flow_runs_by_dossier

        deadline = time.time() + timeout
        while time.time() < deadline:
            runs = [r for c, rs in flow_runs_by_dossier().items() if c in codes for r in rs]
            running = {run_id for run_id, state in runs if state == "RUNNING"}
            if running and not any(state == "PENDING" for _, state in runs):
                for name in ("worker-1", "worker-2"):
                    held = running & _flow_runs_of(self.handle.pid(name))
                    if held:
                        return name, sorted(held)
            time.sleep(0.2)
        raise AssertionError("no worker ran a flow run of these dossiers")


def _runs_a_flow(cmdline: list[str]) -> bool:
    """A flow-run process of a worker: started cold (``-m prefect.engine``) or the client of a
    run forked by the worker's fork server (``-m infra.forkclient``, see ``infra/worker.py``)."""
    return any(m in cmdline for m in ("prefect.engine", "infra.forkclient"))


def _flow_runs_of(worker_pid: int | None) -> set[str]:
    """The ids of the flow runs a worker's processes run now (the worker hands each run its id in
    ``PREFECT__FLOW_RUN_ID``)."""
    held: set[str] = set()
    if worker_pid is None:  # not running (psutil.Process(None) would be this test process)
        return held
    with contextlib.suppress(psutil.Error, TypeError, ValueError):
        for kid in psutil.Process(worker_pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if _runs_a_flow(kid.cmdline()) and (run_id := kid.environ().get("PREFECT__FLOW_RUN_ID")):
                    held.add(run_id)
    return held


def _kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and every descendant (the flow runs a process worker started)."""
    proc = psutil.Process(pid)
    victims = [proc, *proc.children(recursive=True)]
    for p in victims:
        with contextlib.suppress(psutil.Error):
            p.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=10)
    return [p.pid for p in victims]


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    from infra.prod import ProdConfig, point_at_stack, start_prod, stop_prod
    from lienthong.clock import SimulatedClock
    from lienthong.db import dispose_engines
    from lienthong.settings import reset_settings

    root = tmp_path_factory.mktemp("faults")
    saved = dict(os.environ)
    pg = OwnPostgres().init()
    pg.start()
    prefect_scope = contextlib.ExitStack()
    prefect_url = prefect_scope.enter_context(
        scratch_database(PG_ADMIN, "lienthong_fault_prefect", driver="asyncpg", migrate=False))
    prefect_db = prefect_url.rsplit("/", 1)[1]
    base = free_port_range(60)
    cfg0 = ProdConfig(port_base=base)
    s3_port = free_port()
    pause_file = root / "clock.json"
    clock = SimulatedClock(datetime.fromisoformat("2026-03-10T07:30:00+07:00"),
                           time.time(), SPEED, working_hours=True, pause_file=pause_file)
    env = {
        "LIENTHONG_CLOCK": clock.spec(),
        "LIENTHONG_AGENCY_MODES": json.dumps(dict.fromkeys(ASYNC_AGENCIES, "async")),
        "LIENTHONG_CALLBACK_BASE_URL": cfg0.url("gateway"),
        "LIENTHONG_APPROVAL_POLICY": "auto",  # no officer answers during the faults
        "LIENTHONG_AGENCY_POLL_SECONDS": "0.25",
        "LIENTHONG_SIM_MODE": "realistic",
        "LIENTHONG_SIM_REFUSAL_RATE": "0",
        "LIENTHONG_SIM_LATE_SHARE": "0.1",
        "LIENTHONG_SIM_CALLBACK_DELAY_SECONDS": "1",
        "LIENTHONG_GATEWAY_RATE_PER_SECOND": "1000",
        "LIENTHONG_GATEWAY_RETRY_AFTER_SECONDS": "1",
        "LIENTHONG_VAULT_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_url,
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30",  # the least Prefect accepts: zombies show after 90 s
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_WORKER_PREFETCH_SECONDS": "5",
    }
    cfg = ProdConfig(port_base=base, pg_admin_url=pg.admin_url, prefect_db=prefect_db,
                     lienthong_db="lienthong_faults", api_replicas=1, gateways=1, workers=2, env=env)
    os.environ["LIENTHONG_VAR_DIR"] = str(root / "var")
    reset_settings()
    proxy = Process("s3-endpoint", [sys.executable, "-m", "bench.tcp_proxy", str(s3_port), str(cfg.port("s3"))],
                    log_dir=root / "logs")
    proxy.start()
    handle = None
    prefect_settings = contextlib.ExitStack()
    try:
        handle = start_prod(cfg, timeout=300)
        point_at_stack(handle.env, prefect_settings)  # the pool runs 4 flow runs at once (ProdConfig)
        secret = json.loads(handle.env["LIENTHONG_AGENCY_SECRETS"])["DVCQG"][0]
        yield Topology(handle, pg, proxy, clock, secret, handle.urls["gateway"])
    finally:
        # The processes this test started, newest first (through their Popen, which reaps them),
        # then whatever else is recorded under this test's var directory.
        with contextlib.suppress(Exception):
            handle.stop() if handle is not None else stop_prod()
        with contextlib.suppress(Exception):
            proxy.stop()
        prefect_settings.close()
        dispose_engines()
        pg.destroy()
        prefect_scope.close()
        os.environ.clear()
        os.environ.update(saved)
        reset_settings()
        reset_settings()


def _assert_invariants(codes: list[str]) -> None:
    report = check_invariants(codes)
    assert report.ok, str(report)


# --- the faults -----------------------------------------------------------------------------------


def test_worker_killed_mid_flow_is_rerun_once(topology: Topology) -> None:
    from uuid import UUID

    from prefect import get_client

    from infra.automations import MAX_PROCEDURE_RUNS
    from tests.faults.invariants import flow_runs_by_dossier

    # A run with asynchronous agencies is Running for moments only (it suspends while an agency
    # works): the kill may land just after its run suspended or finished. Only a run still Running
    # once its process is dead was killed mid-flow; try again with fresh dossiers until one was.
    codes: list[str] = []
    killed: list[str] = []
    for attempt in range(3):
        batch = topology.push(6, f"kill-worker-{attempt}")
        codes += batch
        victim, held = topology.worker_running(batch)
        pid = topology.handle.pid(victim)
        if pid is not None:  # else it died on its own a moment ago (a crash all the same)
            _kill_tree(pid)
        time.sleep(1.0)  # a state the run sent just before it died has reached the API
        states_now = {r: st for rs in flow_runs_by_dossier().values() for r, st in rs}
        killed = [run_id for run_id in held if states_now.get(run_id) == "RUNNING"]
        topology.handle.restart(victim)
        if killed:
            break
    assert killed, "no kill landed while a run was Running in three tries"
    states = topology.settle(codes, timeout=480)
    assert all(v in TERMINAL for v in states.values()), f"{states}\n{topology.explain(codes)}"
    _assert_invariants(codes)
    # The runs that were running when their worker died ran again (crashed by the zombie
    # automation, then re-run by the other one), and none went past the bound.
    with get_client(sync_client=True) as client:
        counts = {run_id: client.read_flow_run(UUID(run_id)).run_count for run_id in killed}
    assert max(counts.values()) >= 2, counts
    assert max(counts.values()) <= MAX_PROCEDURE_RUNS + 1, counts


def test_agency_outage_retries_and_deadlines_keep_running(topology: Topology) -> None:
    from sqlalchemy import func, select

    from lienthong.db import session_scope
    from lienthong.db.models import DossierRow, StepRow
    from lienthong.sweep import sweep

    codes = topology.push(6, "agency-down")
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until agencies are at work on these dossiers
        with session_scope() as s:
            started = s.scalar(select(func.count()).select_from(StepRow).join(DossierRow)
                               .where(DossierRow.code.in_(codes)))
        if started:
            break
        time.sleep(0.5)
    sim_pid = topology.handle.pid("agency-sim")
    os.kill(sim_pid, signal.SIGSTOP)  # no answers, no callbacks; its state survives
    try:
        time.sleep(25)  # 25 office hours pass on the shared clock: deadlines come close
        report = sweep()
    finally:
        os.kill(sim_pid, signal.SIGCONT)
    assert report.warnings or report.late_steps, "the sweep found nothing near its deadline during the outage"
    states = topology.settle(codes, timeout=300)
    assert all(v in TERMINAL for v in states.values()), f"{states}\n{topology.explain(codes)}"
    _assert_invariants(codes)


def test_s3_outage_publication_retries_nothing_half_written(topology: Topology) -> None:
    from sqlalchemy import func, select

    from lienthong.db import session_scope
    from lienthong.db.models import DossierRow, StepRow

    codes = topology.push(6, "s3-down")
    deadline = time.time() + 120
    while time.time() < deadline:  # a step is done: its publication is near
        with session_scope() as s:
            done = s.scalar(select(func.count()).select_from(StepRow).join(DossierRow)
                            .where(DossierRow.code.in_(codes), StepRow.status == "done"))
        if done:
            break
        time.sleep(0.3)
    topology.s3_proxy.stop()
    stopped = time.time()
    in_flight = topology.explain(codes)  # what a failure message would show, while S3 is away
    assert any(code in in_flight for code in codes), in_flight
    time.sleep(max(0.0, 6 - (time.time() - stopped)))
    topology.s3_proxy.start()
    states = topology.settle(codes, timeout=300)
    assert all(v in TERMINAL for v in states.values()), f"{states}\n{topology.explain(codes)}"
    _assert_invariants(codes)
    cli = subprocess.run([sys.executable, "-m", "lienthong.cli", "vault", "verify", "--all"],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stdout + cli.stderr


def test_postgres_restart_gateway_answers_503_and_loses_nothing(topology: Topology) -> None:
    N = 16  # noqa: N806 - submissions sent while the database stops and starts
    answers: list[tuple[int, str | None]] = []
    codes: list[str] = []
    stop = threading.Event()

    def sender() -> None:
        with httpx.Client(base_url=topology.gateway, timeout=30) as http:
            i = 0
            while not stop.is_set() and i < N:
                body, key = topology.body(i), f"pg-restart-{i}"
                while True:  # the same key until stored, as a portal retries
                    try:
                        resp = topology.post(http, body, key)
                    except httpx.HTTPError:
                        time.sleep(0.5)
                        continue
                    answers.append((resp.status_code, resp.headers.get("Retry-After")))
                    if resp.status_code == 202:
                        codes.append(resp.json()["dossier_code"])
                        break
                    assert resp.status_code == 503, resp.text
                    time.sleep(float(resp.headers["Retry-After"]))
                i += 1
                time.sleep(0.3)

    t = threading.Thread(target=sender)
    t.start()
    time.sleep(2)
    topology.pg.stop()
    time.sleep(4)
    topology.pg.start()
    t.join(timeout=300)
    stop.set()
    assert not t.is_alive()
    unavailable = [a for a in answers if a[0] == 503]
    assert unavailable, "no submission met the database down"
    assert all(ra is not None and int(ra) > 0 for _, ra in unavailable)
    assert len(codes) == len(set(codes)) == N
    topology.accepted += codes
    states = topology.settle(codes, timeout=600, terminal_only=False)
    _assert_invariants(codes)
    assert states


def _a_published_result(topology: Topology) -> tuple[str, str]:
    """The address and JSON object key of a result in the vault: the first one published, or, when
    this test runs alone (nothing published yet), one of dossiers pushed and finished here."""
    from sqlalchemy import select

    from lienthong.db import session_scope
    from lienthong.vault.index import VaultResult

    def first() -> tuple[str, str] | None:
        with session_scope() as s:
            row = s.execute(select(VaultResult).order_by(VaultResult.id).limit(1)).scalar_one_or_none()
            return (row.address, row.json_key) if row is not None else None

    found = first()
    if found is None:
        codes = topology.push(3, "vault-verify")
        states = topology.settle(codes, timeout=300)
        assert all(v in TERMINAL for v in states.values()), f"{states}\n{topology.explain(codes)}"
        found = first()
    assert found is not None, "dossiers finished, yet nothing was published to the vault"
    return found


def test_corrupted_vault_object_is_found_by_vault_verify(topology: Topology) -> None:
    from lienthong.vault.settings import get_vault_settings

    address, target = _a_published_result(topology)
    import boto3

    settings = get_vault_settings()
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region,
                      aws_access_key_id="x", aws_secret_access_key="x")
    original = s3.get_object(Bucket=settings.s3_bucket, Key=target)["Body"].read()
    s3.put_object(Bucket=settings.s3_bucket, Key=target, Body=original[:-1] + bytes([original[-1] ^ 0x55]))
    try:
        cli = subprocess.run([sys.executable, "-m", "lienthong.cli", "vault", "verify", "--all"],
                             capture_output=True, text=True, timeout=300)
        assert cli.returncode == 1, cli.stdout + cli.stderr
        assert address in cli.stdout + cli.stderr
    finally:
        s3.put_object(Bucket=settings.s3_bucket, Key=target, Body=original)
    cli = subprocess.run([sys.executable, "-m", "lienthong.cli", "vault", "verify", "--all"],
                         capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stdout + cli.stderr
