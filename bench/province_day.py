"""A day of a province through the production topology of ``make up-prod`` (infra/prod.py: Prefect
API replicas on PostgreSQL + Redis, a process work pool, gateways behind nginx, the relay, moto's S3
as the vault, the simulators), on scratch databases and ports of its own: signed webhooks into the
gateway, one deployment run per dossier, paper components OCRed from generated scanned pages,
asynchronous agencies calling the gateway back, results published to the vault.

Two modes:

- ``capacity`` (the default): agencies answer by callback, but at once (as the anchor's do), and
  every dossier is sent as fast as the gateway takes it. Reported: the steady-state rate
  (completions between the 20th and the 80th percentile of completion times, over that interval),
  core-seconds per dossier by part (psutil: Prefect API, Prefect services, PostgreSQL backends,
  workers with their flow-run processes, gateway, relay, simulators, S3, Redis, proxy), Prefect REST
  calls per dossier by route (the proxy's access log) and events per dossier (the Prefect database).
  In the same run, on the same stack's PostgreSQL and S3, the anchor (bench/anchor.py: the same core
  functions in one process, no Prefect) takes the first ``--anchor-max`` of the same dossiers; the
  ratio is anchor core-seconds per dossier over the stack's, beside the ratio of rates.
- ``latency``: realistic agencies on a compressed clock, dossiers offered at ``--rate`` a minute.
  Reported, p50 and p99, the orchestrator's own latency apart from the agencies' time: webhook to
  the first agency request; an agency's callback to the dossier's next request, or to the end of
  its run; an operator's decision (the bench answers every approval) to the run moving on.

    python -m bench.province_day [--mode capacity|latency] [--dossiers N] [--paper-share 0.3]
                                 [--rate 10] [--async-delay 1.0] [--workers 2] [--anchor-max 200]

``--async-delay`` (latency mode) is the real seconds one simulated office hour lasts (agencies take
a share of their legal time limit, in office hours, on the shared clock) and the least real time
before an agency calls back.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from bench.common import line

PROCS = ["lien-thong-khai-sinh", "lien-thong-khai-tu", "chuyen-nhuong-dat"]
# Statuses: 3 refused at reception, 7 withdrawn, 8 stopped, 10 delivered; 5 waits for the citizen.
TERMINAL, WAITING = {3, 7, 8, 10}, {5}
DAY = datetime.fromisoformat("2026-03-10T07:30:00+07:00")
ANNUAL = 20_742  # Mỹ Tho's reported yearly volume of dossiers
QUICK = 24


@dataclass
class Item:
    """One dossier of the day: its procedure, whether its components come on paper, the sender's
    idempotency key, and the files its paper components name (relative to the var directory).
    The payload is made when it is sent, received at the shared clock's time of that moment."""

    index: int
    procedure: str
    paper: bool
    key: str
    seed: int
    files: dict[str, str] = field(default_factory=dict)  # component code -> file name

    def body(self, received_at: datetime) -> bytes:
        from samples.dossiers import make_submission

        sub = make_submission(self.procedure, random.Random(self.seed), received_at, paper_components=self.paper)
        payload = json.loads(sub.model_dump_json())
        for comp in payload["components"]:
            if comp.get("paper") and comp["code"] in self.files:
                comp["file"] = self.files[comp["code"]]
        return json.dumps(payload, ensure_ascii=False).encode()


@dataclass
class Tracking:
    accepted_at: dict[str, float] = field(default_factory=dict)  # dossier code -> real time of the 202
    done_at: dict[str, float] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    on_time: dict[str, bool] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


# --- the dossiers -------------------------------------------------------------------------------


def page_pool(directory: Path, size: int = 6) -> dict[str, list[Path]]:
    """Scanned-looking pages from the project's form generator (light desk-scan damage), a few of
    each kind; dossiers hard-link them so that each component is a file of its own."""
    from samples.forms import birth_certificate, death_notice, write_pdf

    directory.mkdir(parents=True, exist_ok=True)
    pool: dict[str, list[Path]] = {"birth": [], "death": []}
    for i in range(size):
        for kind, make in (("birth", birth_certificate), ("death", death_notice)):
            path = directory / f"{kind}-{i}.pdf"
            if not path.exists():
                write_pdf([make(1000 + i, level=0.4).image], path)
            pool[kind].append(path)
    return pool


def make_items(n: int, paper_share: float, seed: int,
               pool: dict[str, list[Path]]) -> tuple[list[Item], dict[str, Path]]:
    """``n`` dossiers over the three procedures; a ``paper_share`` of them carry their digitizable
    components on paper (a scanned page each). Returns the items and the files they refer to
    (relative name under var_dir -> pool file)."""
    from lienthong.catalog import get_catalog

    rng = random.Random(seed)
    items: list[Item] = []
    files: dict[str, Path] = {}
    for i in range(n):
        proc = PROCS[i % 3]
        item = Item(i, proc, rng.random() < paper_share, f"day-{seed}-{i}", seed * 1_000_003 + i)
        if item.paper:
            kind = "death" if proc == "lien-thong-khai-tu" else "birth"
            for j, comp in enumerate(c for c in get_catalog().get(proc).components if c.digitize):
                name = f"uploads/{i:06d}-{j}-{comp.code.lower()}.pdf"
                files[name] = pool[kind][(i + j) % len(pool[kind])]
                item.files[comp.code] = name
        items.append(item)
    return items, files


def place_files(var_dir: Path, files: dict[str, Path]) -> None:
    for name, src in files.items():
        dst = var_dir / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.exists():
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)


# --- pushing through the stack ------------------------------------------------------------------


def post_signed(http: Any, secret: str, path: str, body: bytes, key: str) -> Any:
    from lienthong.gateway.signing import signed_headers

    headers = signed_headers("DVCQG", secret, "POST", path, body, idempotency_key=key)
    return http.post(path, content=body, headers=headers)


def submit_all(stack: Any, items: list[Item], track: Tracking, progress: Any, task: Any,
               concurrency: int = 6, pace: float = 0.0) -> None:
    """Every dossier POSTed, signed, to the gateway; a 503/429 is retried after its Retry-After
    with the same idempotency key, as a portal would. ``pace``: seconds between two dossiers offered
    (0: as fast as the gateway takes them)."""
    import httpx

    from lienthong.clock import get_clock

    secret = stack.secrets["DVCQG"][0]
    local = threading.local()

    def one(item: Item) -> None:
        http = getattr(local, "http", None)
        if http is None:
            http = local.http = httpx.Client(base_url=stack.gateway_url, timeout=60)
        body = item.body(get_clock().now())
        for _attempt in range(30):
            try:
                resp = post_signed(http, secret, "/v1/dossiers", body, item.key)
            except httpx.HTTPError:
                time.sleep(1)
                continue
            if resp.status_code in (429, 503):
                time.sleep(float(resp.headers.get("Retry-After", "1")))
                continue
            if resp.status_code == 202:
                code = resp.json()["dossier_code"]
                with track.lock:
                    track.accepted_at.setdefault(code, time.time())
            else:
                with track.lock:
                    track.rejected.append(f"{resp.status_code} {resp.text[:200]}")
            break
        progress.advance(task)

    if pace <= 0:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, items))
        return
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        start = time.time()
        futures = []
        for i, item in enumerate(items):
            time.sleep(max(0.0, start + i * pace - time.time()))
            futures.append(pool.submit(one, item))
        for f in futures:
            f.result()


def poll_states(track: Tracking) -> None:
    """Read every accepted dossier's status; note when it first reached a terminal state."""
    from sqlalchemy import select

    from lienthong.db import session_scope
    from lienthong.db.models import DossierRow

    with track.lock:
        codes = [c for c in track.accepted_at if c not in track.done_at]
    now = time.time()
    for start in range(0, len(codes), 500):
        chunk = codes[start:start + 500]
        with session_scope() as s:
            rows = s.execute(select(DossierRow.code, DossierRow.status, DossierRow.finished_at, DossierRow.due_at,
                                    DossierRow.late).where(DossierRow.code.in_(chunk))).all()
        with track.lock:
            for code, status, finished, due, late in rows:
                track.status[code] = status
                if status in TERMINAL:
                    track.done_at[code] = now
                    track.on_time[code] = status == 10 and not late and (
                        due is None or finished is None or finished <= due)


def run_stack(items: list[Item], files: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench import costs
    from bench.prodstack import prod_topology
    from infra.prod import ProdConfig

    capacity = args.mode == "capacity"
    access_log = Path(tempfile.mkdtemp(prefix="bench-province-access-")) / "prefect-api.log"
    extra = {"LIENTHONG_PROD_PREFECT_ACCESS_LOG": str(access_log),
             "LIENTHONG_SIM_REFUSAL_RATE": str(args.refusal_rate)}
    if capacity:  # agencies answer by callback, at once
        extra |= {"LIENTHONG_SIM_MODE": "instant", "LIENTHONG_SIM_CALLBACK_DELAY_SECONDS": "0"}
    else:  # an operator (this benchmark) answers every approval and every review
        extra |= {"LIENTHONG_APPROVAL_POLICY": "operator"}
    track = Tracking()
    api_replicas = args.api_replicas or ProdConfig().api_replicas
    with prod_topology(speed=3600.0 / args.async_delay, callback_delay=args.async_delay, workers=args.workers,
                       pool_limit=args.pool_limit, api_replicas=api_replicas, extra_env=extra) as stack:
        handle: Any = stack.handle
        cfg = stack.cfg
        place_files(stack.var_dir, files)
        direct_api = f"{cfg.url('prefect-api')}/api"  # the bench's own reads bypass the counted proxy
        backends = costs.BackendSampler([cfg.prefect_db, cfg.lienthong_db])
        backends.start()
        anchor = run_anchor(items[: min(len(items), args.anchor_max)], files, handle.env, backends,
                            handle.pid("s3")) if capacity and args.anchor_max > 0 else None
        prefect_dsn = cfg.database_url(cfg.prefect_db, "psycopg").replace("postgresql+psycopg", "postgresql")
        events_before = costs.wait_events_settled(prefect_dsn, quiet=3.0, timeout=20.0)
        window = costs.CpuWindow(lambda: {name: handle.pid(name) for name in handle.processes})
        stack.run_clock()
        backends.mark()
        window.start()
        t0 = time.time()
        operator = Operator(direct_api) if not capacity else None
        columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=not sys.stdout.isatty()) as progress:
            sent = progress.add_task("webhooks accepted", total=len(items))
            done = progress.add_task("dossiers finished", total=len(items))
            pace = 0.0 if capacity else 60.0 / args.rate
            pusher = threading.Thread(target=submit_all, args=(stack, items, track, progress, sent),
                                      kwargs={"pace": pace}, daemon=True)
            pusher.start()
            last_change, waiting_op, checked = time.time(), set(), 0.0
            last_done: Any = None
            while time.time() - t0 < args.timeout:
                time.sleep(0.5)
                poll_states(track)
                n_done = len(track.done_at)
                if operator is not None:
                    operator.answer()
                elif time.time() - checked > 10:
                    waiting_op, checked = waiting_for_operator(direct_api), time.time()
                waiting = sum(1 for c, st in track.status.items() if st in WAITING or c in waiting_op)
                progress.update(done, completed=n_done, description=f"dossiers finished ({waiting} wait)")
                seen = (n_done, tuple(sorted(track.status.items())))
                if seen != last_done:  # any dossier moved on
                    last_change, last_done = time.time(), seen
                if not pusher.is_alive() and n_done + waiting >= len(track.accepted_at):
                    break
                if not pusher.is_alive() and time.time() - last_change > args.stall:
                    break
            pusher.join(timeout=5)
        t_end = time.time()
        used = window.stop()
        pg, n_backends = backends.window()
        backends.stop.set()
        events = costs.wait_events_settled(prefect_dsn) - events_before
        routes = costs.access_log_routes(access_log, t0, t_end)
        requests = httpx_get_json(f"{cfg.url('agency-sim')}/admin/requests") if not capacity else []
        runs = flow_run_times(direct_api) if not capacity else {}
        logs = str(stack.log_dir)
    cpu = costs.by_part(used)
    cpu["PostgreSQL backends (Prefect database)"] = pg.get(cfg.prefect_db, 0.0)
    cpu["PostgreSQL backends (Liên Thông database)"] = pg.get(cfg.lienthong_db, 0.0)
    statuses: dict[int, int] = {}
    for st in track.status.values():
        statuses[st] = statuses.get(st, 0) + 1
    return {
        "operator": len(waiting_op), "answers": operator.answers if operator else [],
        "accepted": len(track.accepted_at), "rejected": track.rejected,
        "completed": sum(1 for c in track.done_at if track.status.get(c) == 10),
        "finished": len(track.done_at),
        "on_time": sum(track.on_time.values()),
        "waiting": sum(1 for st in track.status.values() if st in WAITING),
        "statuses": statuses, "track": track, "t0": t0, "window": t_end - t0,
        "cpu": cpu, "backends_seen": n_backends, "events": events, "routes": routes,
        "requests": requests, "runs": runs, "anchor": anchor, "api_replicas": api_replicas,
        "logs": logs,
    }


def httpx_get_json(url: str) -> Any:
    import httpx

    return httpx.get(url, timeout=60).json()


def flow_run_times(api: str) -> dict[str, dict[str, float | None]]:
    """Each dossier's procedure run: real time of its start and end (epoch seconds)."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    out: dict[str, dict[str, float | None]] = {}
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        offset = 0
        while True:
            page = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["procedure"])),
                                         limit=200, offset=offset)
            for run in page:
                code = run.parameters.get("dossier_code")
                if code:
                    out[code] = {"start": run.start_time.timestamp() if run.start_time else None,
                                 "end": run.end_time.timestamp() if run.end_time else None}
            if len(page) < 200:
                return out
            offset += 200


class Operator:
    """The officers of the latency mode: every run suspended on an approval is approved, every
    digitized component under review confirmed, as soon as it is seen (polled each half second)."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.answers: list[tuple[str, float]] = []  # (dossier code, real time of the answer)
        self.done: set[str] = set()

    def answer(self) -> None:
        from prefect import get_client
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
        from prefect.client.schemas.objects import StateType
        from prefect.flow_runs import resume_flow_run
        from prefect.settings import PREFECT_API_URL, temporary_settings

        flt = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
        with temporary_settings({PREFECT_API_URL: self.api}):
            with get_client(sync_client=True) as client:
                runs = client.read_flow_runs(flow_run_filter=flt, limit=200)
            for run in runs:
                key = (run.state.state_details.pause_key or "") if run.state else ""
                code = run.parameters.get("dossier_code")
                if not code or f"{run.id}:{key}" in self.done:
                    continue
                if key.startswith("approval-"):
                    run_input: dict[str, Any] = {"decision": "approve", "officer": "bench"}
                elif key.startswith("review-"):
                    run_input = {"confirmed": True}
                else:
                    continue
                try:
                    resume_flow_run(run.id, run_input=run_input)
                except Exception as exc:  # noqa: BLE001 - resumed already, or not paused any more
                    print(f"operator: could not answer {key} of {code}: {exc!r}")
                    continue
                self.done.add(f"{run.id}:{key}")
                self.answers.append((code, time.time()))


def waiting_for_operator(api: str) -> set[str]:
    """Dossiers whose run is suspended for a person (a weak page to review, an approval): they wait,
    they are not in progress."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.settings import PREFECT_API_URL, temporary_settings

    out: set[str] = set()
    flt = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    with temporary_settings({PREFECT_API_URL: api}), get_client(sync_client=True) as client:
        for run in client.read_flow_runs(flow_run_filter=flt, limit=200):
            key = (run.state.state_details.pause_key or "") if run.state else ""
            if key.startswith(("review-", "approval-")) and run.parameters.get("dossier_code"):
                out.add(run.parameters["dossier_code"])
    return out


# --- the anchor: the same dossiers through the core pipeline, one process, no Prefect ----------


def run_anchor(items: list[Item], files: dict[str, Path], stack_env: dict[str, str],
               backends: Any, s3_pid: int | None) -> dict[str, Any]:
    """The first dossiers through bench/anchor.py in this process, agencies answering at once, on
    the stack's PostgreSQL server (a scratch database) and its S3 endpoint (a bucket of its own):
    the same durability as the stack's. Its CPU: this process (with the tesseract runs it reaped),
    its PostgreSQL backends and the S3 endpoint's process during the run."""
    from bench import costs
    from bench.common import scratch_database

    var = Path(tempfile.mkdtemp(prefix="bench-province-anchor-"))
    vault = {k: v for k, v in stack_env.items() if k.startswith(("LIENTHONG_VAULT_", "AWS_"))}
    environ = mock.patch.dict(os.environ, {**vault, "LIENTHONG_VAR_DIR": str(var),
                                           "LIENTHONG_VAULT_S3_BUCKET": "lienthong-anchor",
                                           "LIENTHONG_CLOCK": "fixed:2026-03-10T16:30:00+07:00"})
    environ.start()  # stopped below: every variable set here or later is put back as it was
    from infra.processes import LiveServer
    from lienthong.agencies.client import HttpAgencyClient
    from lienthong.db import dispose_engines
    from lienthong.payloads import Submission
    from lienthong.settings import reset_settings
    from lienthong.simulators.agency import Simulator, Switches, create_app

    reset_settings()
    reset_settings()
    dispose_engines()
    place_files(var, files)
    try:
        with scratch_database("lienthong_bench_anchor") as url, \
                LiveServer(create_app(Simulator(Switches(mode="instant", refusal_rate=float(
                    stack_env.get("LIENTHONG_SIM_REFUSAL_RATE", "0")))))) as sim:
            db_name = url.rsplit("/", 1)[1]
            os.environ["LIENTHONG_AGENCY_API_URL"] = sim.url
            reset_settings()
            from bench.anchor import Pipeline
            from lienthong.reception import receive
            from samples.dossiers import make_submission

            pipeline = Pipeline(HttpAgencyClient(sim.url))
            subs = [Submission.model_validate_json(it.body(DAY + timedelta(hours=2))) for it in items]
            for proc in PROCS:  # warm-up, not counted: suites, fonts, keys
                pipeline.run(receive(make_submission(proc, random.Random(99_999), DAY)).dossier_code)
            backends.databases.add(db_name)
            backends.mark()
            cpu0, s3_0, t0 = costs.own_cpu(), costs.tree_cpu(s3_pid) if s3_pid else 0.0, time.perf_counter()
            sampler0 = backends.spent
            statuses: dict[int, int] = {}
            for sub in subs:
                result = pipeline.run(receive(sub).dossier_code)
                statuses[int(result.status)] = statuses.get(int(result.status), 0) + 1
            seconds = time.perf_counter() - t0
            own = costs.own_cpu() - cpu0 - (backends.spent - sampler0)  # not the sampler's thread
            s3 = (costs.tree_cpu(s3_pid) - s3_0) if s3_pid else 0.0
            pg, _ = backends.window()
            backends.databases.discard(db_name)
            dispose_engines()
    finally:
        environ.stop()
        reset_settings()
        reset_settings()
        shutil.rmtree(var, ignore_errors=True)
    cpu = {"the anchor's process (with its simulator and tesseract)": own,
           "PostgreSQL backends": pg.get(db_name, 0.0), "S3 endpoint (moto)": s3}
    return {"per_minute": len(items) / seconds * 60, "seconds": seconds, "n": len(items),
            "statuses": statuses, "cpu": cpu}


# --- the report ---------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def steady_rate(done_at: list[float]) -> tuple[float, int, float]:
    """Completions between the 20th and 80th percentile of completion times, over that interval:
    (dossiers/min, completions counted, interval in s)."""
    if len(done_at) < 5:
        return float("nan"), len(done_at), 0.0
    lo, hi = _pct(done_at, 0.2), _pct(done_at, 0.8)
    inside = sum(1 for t in done_at if lo <= t <= hi)
    return (inside / (hi - lo) * 60 if hi > lo else float("nan")), inside, hi - lo


def hops(track: Tracking, requests: list[dict[str, Any]], runs: dict[str, dict[str, float | None]],
         answers: list[tuple[str, float]]) -> dict[str, list[float]]:
    """The orchestrator's own latencies (real seconds), from the simulator's request log (arrival of
    each request, acceptance of each callback by the gateway), the runs' ends and the operator's
    answers. Every "move" of a dossier (an agency request, the end of its run) is charged to the
    last thing it waited for: the webhook, an agency's callback (only once every step then running
    has answered, so the last callback before the move) or an operator's answer."""
    by_dossier: dict[str, list[dict[str, Any]]] = {}
    for r in requests:
        by_dossier.setdefault(r["dossier_code"], []).append(r)
    answered: dict[str, list[float]] = {}
    for code, at in answers:
        answered.setdefault(code, []).append(at)
    out: dict[str, list[float]] = {"webhook": [], "callback": [], "operator": []}
    for code, accepted in track.accepted_at.items():
        reqs = by_dossier.get(code, [])
        end = (runs.get(code) or {}).get("end")
        moves = sorted({r["requested_at"] for r in reqs} | ({end} if end is not None else set()))
        causes = sorted([(accepted, "webhook")]
                        + [(r["delivered_at"], "callback") for r in reqs if r["delivered_at"] is not None]
                        + [(at, "operator") for at in answered.get(code, [])])
        previous = float("-inf")
        for move in moves:
            before = [(at, kind) for at, kind in causes if previous <= at <= move]
            if before:
                at, kind = before[-1]
                out[kind].append(move - at)
            previous = move
    return out


def report(args: argparse.Namespace, n: int, r: dict[str, Any]) -> None:
    print(f"# province day, {args.mode} mode: {n} dossiers over {len(PROCS)} procedures, {args.paper_share:.0%} "
          f"with paper components; {args.workers} workers, {r['api_replicas']} Prefect API replica(s), "
          f"work pool limit {args.pool_limit}; " + ("agencies answer by callback at once" if args.mode == "capacity"
          else f"realistic agencies, an office hour lasts {args.async_delay:g} s, {args.rate:g} dossiers/min offered"))
    print(f"accepted {r['accepted']}, refused by the gateway {len(r['rejected'])}, finished {r['finished']} "
          f"(delivered {r['completed']}, on time {r['on_time']}), waiting for the citizen {r['waiting']}, "
          f"for an operator {r['operator']}, statuses {dict(sorted(r['statuses'].items()))}")
    track: Tracking = r["track"]
    done_at = sorted(track.done_at.values())
    rate, inside, span = steady_rate(done_at)
    ends = r["finished"] or 1
    print(line("dossiers accepted", r["accepted"], "dossiers"))
    print(line("dossiers finished", r["finished"], "dossiers"))
    print(line("dossiers delivered (status 10)", r["completed"], "dossiers"))
    lat = [track.done_at[c] - track.accepted_at[c] for c in track.done_at if c in track.accepted_at]
    print(line("webhook to finished, p50", _pct(lat, 0.5), "s"))
    print(line("webhook to finished, p99", _pct(lat, 0.99), "s"))
    print(line("measured window (first webhook to last finish)", r["window"], "s"))
    total = sum(r["cpu"].values())
    anchor = r["anchor"]
    if args.mode == "capacity":
        a_rate = anchor["per_minute"] if anchor else None
        print(f"steady state: {inside} completions in {span:.1f} s between the 20th and 80th percentile of "
              "completion times")
        print(line("steady-state rate through the stack", rate, "dossiers/min", a_rate,
                   "anchor (one process, sequential)"))
    print(f"\n## core-seconds per dossier by part ({total:.1f} core-s over {r['window']:.0f} s = "
          f"{total / max(r['window'], 1e-9):.2f} cores busy on average; {r['backends_seen']} PostgreSQL "
          "backends seen)")
    for part, cpu in sorted(r["cpu"].items(), key=lambda kv: -kv[1]):
        print(line(f"  {part}", cpu / ends, "core-s/dossier"))
    a_per = sum(anchor["cpu"].values()) / anchor["n"] if anchor else None
    print(line("stack, all parts", total / ends, "core-s/dossier"))
    if anchor:
        for part, cpu in anchor["cpu"].items():
            print(line(f"  anchor: {part}", cpu / anchor["n"], "core-s/dossier"))
        print(line("anchor, all parts", a_per or 0.0, "core-s/dossier"))
        inverse = (total / ends) and (a_per or 0.0) / (total / ends)
        print(line("core-s ratio: anchor per dossier / stack per dossier", inverse, "ratio",
                   target=">= 0.5"))
        print(f"anchor: {anchor['n']} of the same dossiers in {anchor['seconds']:.1f} s, statuses "
              f"{dict(sorted(anchor['statuses'].items()))}")
    calls = sum(r["routes"].values())
    print(f"\n## Prefect REST calls per dossier by route ({calls} calls through the proxy)")
    print(line("Prefect REST calls, all routes", calls / ends, "calls/dossier"))
    for route, count in r["routes"].most_common(25):
        print(f"  {count / ends:8.2f}  {route}")
    events = sum(r["events"].values())
    print(f"\n## Prefect events per dossier ({events} events stored)")
    print(line("Prefect events, all", events / ends, "events/dossier"))
    for name, count in r["events"].most_common(20):
        print(f"  {count / ends:8.2f}  {name}")
    if args.mode == "latency":
        h = hops(track, r["requests"], r["runs"], r["answers"])
        print(f"\n## the orchestrator's latency, apart from the agencies' time ({len(r['requests'])} agency "
              f"requests, {len(r['answers'])} operator answers)")
        for key, label in (("webhook", "webhook to first agency request"),
                           ("callback", "agency callback to next request or end"),
                           ("operator", "operator's answer to the run moving on")):
            values = h[key]
            print(line(f"{label}, p50 ({len(values)} hops)", _pct(values, 0.5), "s"))
            print(line(f"{label}, p99", _pct(values, 0.99), "s",
                       target="<= 2 s" if key == "callback" else ""))
    if r["rejected"]:
        print("gateway refusals (first 3):", *r["rejected"][:3], sep="\n  ")
    print(f"stack logs: {r['logs']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("capacity", "latency"), default="capacity")
    ap.add_argument("--dossiers", type=int, default=int(os.environ.get("LIENTHONG_PROVINCE_DOSSIERS", "0")) or None,
                    help="dossiers (default 200 in capacity mode, 40 in latency mode)")
    ap.add_argument("--paper-share", type=float, default=0.3)
    ap.add_argument("--rate", type=float, default=10.0, help="latency mode: dossiers offered a minute")
    ap.add_argument("--async-delay", type=float, default=1.0,
                    help="latency mode: real seconds per simulated office hour (agency delays)")
    ap.add_argument("--refusal-rate", type=float, default=0.02, help="share of steps the agencies refuse")
    ap.add_argument("--workers", type=int, default=2, help="workers of the process work pool")
    ap.add_argument("--api-replicas", type=int, default=0, help="Prefect API replicas (0: infra/prod.py's default)")
    ap.add_argument("--pool-limit", type=int, default=4,
                    help="flow runs the work pool runs at once (suspended runs hold none)")
    ap.add_argument("--anchor-max", type=int, default=200,
                    help="capacity mode: the anchor runs the first N of the same dossiers (it is sequential)")
    ap.add_argument("--timeout", type=float, default=6 * 3600)
    ap.add_argument("--stall", type=float, default=300, help="stop after this long without progress")
    ap.add_argument("--seed", type=int, default=63)
    ap.add_argument("--quick", action="store_true", help=f"{QUICK} dossiers (CI smoke)")
    args = ap.parse_args(argv)
    n = QUICK if args.quick else args.dossiers or (200 if args.mode == "capacity" else 40)
    pool = page_pool(Path(tempfile.gettempdir()) / "lienthong-province-pages")
    items, files = make_items(n, args.paper_share, args.seed, pool)
    r = run_stack(items, files, args)
    report(args, n, r)
    return 0 if r["accepted"] == n and not r["rejected"] else 1


if __name__ == "__main__":
    from bench.common import standalone

    sys.exit(standalone("province_day", main))
