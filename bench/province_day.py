"""A day of a province through the production topology of ``make up-prod`` (infra/prod.py: Prefect
API replicas on PostgreSQL + Redis, a process work pool with two workers, two gateways behind nginx,
the relay, moto's S3 as the vault, the simulators), on scratch databases and ports of its own:
signed webhooks into the gateway, one deployment run per dossier, paper components OCRed from
generated scanned pages, asynchronous agencies calling the gateway back on a compressed simulated
clock, results published to the vault. Beside it, the same core pipeline run in one process without
Prefect (lienthong.pipeline, agencies answering at once) on the same dossiers: the ratio's anchor.

    python -m bench.province_day [--dossiers 5000] [--paper-share 0.3] [--async-delay 1.0]
                                 [--quick] [--annual] [--workers 2] [--anchor-max 300]

``--async-delay`` is the real seconds one simulated office hour lasts (agencies take a share of
their legal time limit, in office hours, on the shared clock; 1.0 makes a working day ~9.5 s), and
the least real time before an agency calls back.
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

from bench.common import line, machine

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
               concurrency: int = 6) -> None:
    """Every dossier POSTed, signed, to the gateway; a 503/429 is retried after its Retry-After
    with the same idempotency key, as a portal would."""
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

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, items))


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


def waiting_for_operator() -> set[str]:
    """Dossiers whose run is suspended for a person (a weak page to review, an approval): they wait,
    they are not in progress."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType

    out: set[str] = set()
    flt = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])))
    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs(flow_run_filter=flt, limit=200):
            key = (run.state.state_details.pause_key or "") if run.state else ""
            if key.startswith(("review-", "approval-")) and run.parameters.get("dossier_code"):
                out.add(run.parameters["dossier_code"])
    return out


class RssSampler(threading.Thread):
    def __init__(self, stack: Any, every: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.stack, self.every, self.peak = stack, every, {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for name, rss in self.stack.rss_by_service().items():
                self.peak[name] = max(self.peak.get(name, 0), rss)
            self.stop.wait(self.every)


def run_stack(items: list[Item], files: dict[str, Path], *, speed: float, callback_delay: float, workers: int,
              pool_limit: int, timeout: float, stall: float) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.prodstack import prod_topology

    track = Tracking()
    with prod_topology(speed=speed, callback_delay=callback_delay, workers=workers, pool_limit=pool_limit) as stack:
        place_files(stack.var_dir, files)
        sampler = RssSampler(stack)
        sampler.start()
        stack.run_clock()
        t0 = time.time()
        columns = (TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, transient=not sys.stdout.isatty()) as progress:
            sent = progress.add_task("webhooks accepted", total=len(items))
            done = progress.add_task("dossiers finished", total=len(items))
            pusher = threading.Thread(target=submit_all, args=(stack, items, track, progress, sent), daemon=True)
            pusher.start()
            last_change, operator, checked = time.time(), set(), 0.0
            last_done: Any = None
            while time.time() - t0 < timeout:
                time.sleep(1.0)
                poll_states(track)
                n_done = len(track.done_at)
                if time.time() - checked > 10:
                    operator, checked = waiting_for_operator(), time.time()
                waiting = sum(1 for c, st in track.status.items() if st in WAITING or c in operator)
                progress.update(done, completed=n_done, description=f"dossiers finished ({waiting} wait)")
                seen = (n_done, tuple(sorted(track.status.items())))
                if seen != last_done:  # any dossier moved on
                    last_change, last_done = time.time(), seen
                if not pusher.is_alive() and n_done + waiting >= len(track.accepted_at):
                    break
                if not pusher.is_alive() and time.time() - last_change > stall:
                    break
            pusher.join(timeout=5)
        elapsed_end = (max(track.done_at.values()) if track.done_at else time.time()) - t0
        sampler.stop.set()
        sampler.join()
        logs = str(stack.log_dir)
    latencies = sorted(track.done_at[c] - track.accepted_at[c] for c in track.done_at)
    statuses: dict[int, int] = {}
    for st in track.status.values():
        statuses[st] = statuses.get(st, 0) + 1
    return {
        "operator": len(operator),
        "accepted": len(track.accepted_at), "rejected": track.rejected,
        "completed": sum(1 for c in track.done_at if track.status.get(c) == 10),
        "finished": len(track.done_at),
        "on_time": sum(track.on_time.values()),
        "waiting": sum(1 for st in track.status.values() if st in WAITING),
        "statuses": statuses,
        "elapsed": elapsed_end,
        "latencies": latencies,
        "rss": sampler.peak,
        "logs": logs,
    }


# --- the anchor: the same dossiers through the core pipeline, one process, no Prefect ----------


def run_anchor(items: list[Item], files: dict[str, Path]) -> dict[str, float]:
    from bench.common import scratch_database

    var = Path(tempfile.mkdtemp(prefix="bench-province-anchor-"))
    environ = mock.patch.dict(os.environ, {"LIENTHONG_VAR_DIR": str(var), "LIENTHONG_VAULT_BACKEND": "file",
                                           "LIENTHONG_CLOCK": "fixed:2026-03-10T16:30:00+07:00"})
    environ.start()  # stopped below: every variable set here or later is put back as it was
    from lienthong.agencies.client import HttpAgencyClient
    from lienthong.db import dispose_engines
    from lienthong.payloads import Submission
    from lienthong.settings import reset_settings
    from lienthong.simulators.agency import Simulator, Switches, create_app
    from lienthong.vault.settings import reset_vault_settings
    from tests.conftest import LiveServer

    reset_settings()
    reset_vault_settings()
    dispose_engines()
    place_files(var, files)
    try:
        with scratch_database("lienthong_bench_anchor"), \
                LiveServer(create_app(Simulator(Switches(mode="instant")))) as sim:
            os.environ["LIENTHONG_AGENCY_API_URL"] = sim.url
            reset_settings()
            from lienthong.pipeline import Pipeline
            from lienthong.reception import receive

            pipeline = Pipeline(HttpAgencyClient(sim.url))
            subs = [Submission.model_validate_json(it.body(DAY + timedelta(hours=2))) for it in items]
            from samples.dossiers import make_submission

            for proc in PROCS:  # warm-up, not counted: suites, fonts, keys
                pipeline.run(receive(make_submission(proc, random.Random(99_999), DAY)).dossier_code)
            t0 = time.perf_counter()
            statuses: dict[int, int] = {}
            for sub in subs:
                result = pipeline.run(receive(sub).dossier_code)
                statuses[int(result.status)] = statuses.get(int(result.status), 0) + 1
            seconds = time.perf_counter() - t0
    finally:
        environ.stop()
        reset_settings()
        reset_vault_settings()
        shutil.rmtree(var, ignore_errors=True)
    return {"per_minute": len(items) / seconds * 60, "seconds": seconds, "n": len(items),
            "delivered": statuses.get(10, 0)}


# --- the report ---------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def report(args: argparse.Namespace, n: int, r: dict[str, Any], anchor: dict[str, float]) -> None:
    print(f"# province day: {n} dossiers over {len(PROCS)} procedures, {args.paper_share:.0%} with paper "
          f"components; agencies on a clock where an office hour lasts {args.async_delay:g} s; {machine()}")
    print(f"accepted {r['accepted']}, refused by the gateway {len(r['rejected'])}, finished {r['finished']} "
          f"(delivered {r['completed']}, on time {r['on_time']}), waiting for the citizen {r['waiting']}, "
          f"for an operator {r['operator']}, "
          f"statuses {dict(sorted(r['statuses'].items()))}")
    rate = r["finished"] / r["elapsed"] * 60 if r["elapsed"] > 0 else 0.0
    print(line("dossiers accepted", r["accepted"], "dossiers"))
    print(line("dossiers delivered (status 10)", r["completed"], "dossiers"))
    print(line("dossiers delivered on time", r["on_time"], "dossiers"))
    print(line("end to end through the stack", rate, "dossiers/min", anchor["per_minute"],
               f"core pipeline without Prefect ({anchor['n']} of the same dossiers)"))
    print(line("core pipeline without Prefect (anchor)", anchor["per_minute"], "dossiers/min"))
    lat = r["latencies"]
    print(line("webhook to finished, p50", _pct(lat, 0.5), "s"))
    print(line("webhook to finished, p99", _pct(lat, 0.99), "s"))
    for name, rss in sorted(r["rss"].items()):
        label = name.replace("+runs", " with its flow runs") if name != "flow run" else "one flow run (largest)"
        print(line(f"peak RSS {label}", rss / 2**20, "MiB"))
    if r["rejected"]:
        print("gateway refusals (first 3):", *r["rejected"][:3], sep="\n  ")
    print(f"stack logs: {r['logs']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dossiers", type=int, default=int(os.environ.get("LIENTHONG_PROVINCE_DOSSIERS", "5000")))
    ap.add_argument("--paper-share", type=float, default=0.3)
    ap.add_argument("--async-delay", type=float, default=1.0,
                    help="real seconds per simulated office hour (agency delays)")
    ap.add_argument("--workers", type=int, default=2, help="workers of the process work pool")
    ap.add_argument("--pool-limit", type=int, default=4,
                    help="flow runs the work pool runs at once (suspended runs hold none)")
    ap.add_argument("--anchor-max", type=int, default=300,
                    help="the anchor runs the first N of the same dossiers (it is sequential)")
    ap.add_argument("--timeout", type=float, default=6 * 3600)
    ap.add_argument("--stall", type=float, default=300, help="stop after this long without progress")
    ap.add_argument("--seed", type=int, default=63)
    ap.add_argument("--quick", action="store_true", help=f"{QUICK} dossiers (CI smoke)")
    ap.add_argument("--annual", action="store_true", help=f"Mỹ Tho's annual volume, {ANNUAL:,} dossiers")
    args = ap.parse_args(argv)
    n = QUICK if args.quick else ANNUAL if args.annual else args.dossiers
    pool = page_pool(Path(tempfile.gettempdir()) / "lienthong-province-pages")
    items, files = make_items(n, args.paper_share, args.seed, pool)
    anchor_items = items[: min(n, args.anchor_max)]
    anchor_files = {k: v for k, v in files.items() if int(k.split("/")[1][:6]) < len(anchor_items)}
    anchor = run_anchor(anchor_items, anchor_files)
    r = run_stack(items, files, speed=3600.0 / args.async_delay, callback_delay=args.async_delay,
                  workers=args.workers, pool_limit=args.pool_limit, timeout=args.timeout, stall=args.stall)
    report(args, n, r, anchor)
    return 0 if r["accepted"] == n and not r["rejected"] else 1


if __name__ == "__main__":
    from bench.common import standalone

    sys.exit(standalone("province_day", main))
