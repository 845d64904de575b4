"""Portal sync and service index at backlog scale, against anchors measured in the same run.

Loads N synthetic dossiers (default 200,000; with one component, two steps and three status
changes each) into a scratch PostgreSQL database with COPY, then measures:

- rows read per second by the sync's keyset reader (dossier + related rows, batch by batch),
  beside a raw ``COPY (SELECT ...) TO STDOUT`` of the same rows (the floor of reading them);
- payloads built per second (HoSo + progress, content hashes);
- payloads sent per second to the portal simulator (a separate process) by the client, beside raw
  httpx POSTs of the same sample, as the median of paired rounds in alternating order; and an
  end-to-end catch-up of a sample (read, build, send, ledger, checkpoint), extrapolated to the
  1.3 million dossiers a province reported;
- the index over the whole period, as a ratio to the raw read.

    python -m bench.bench_portal [--rows 200000] [--send 4000] [--batch 1000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import psycopg

from bench.common import alternating_pairs, line, machine, paired, scratch_database

NULL = "\\N"  # COPY's NULL
DOSSIER_COLS = (
    "id, code, unit_id, procedure_id, procedure_code, procedure_version, "
    "time_limit_days, channel, status, received_at, clock_started_at, "
    "clock_paused_at, due_at, finished_at, delivered_at, late, reason, "
    "owner_citizen_id, options, payload, deliveries, created_at, updated_at"
)
AGENCY_STEPS = [("tham_dinh", "VPDKDD"), ("xac_dinh_thue", "THUE")]


def _pg(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def load(url: str, n: int) -> float:
    """COPY n synthetic dossiers with their components, steps and status history; seconds taken."""
    from lienthong.calendar import get_calendar
    from lienthong.clock import VN_TZ

    cal = get_calendar()
    rng = random.Random(20260301)
    t0 = time.perf_counter()
    start = datetime(2026, 1, 5, 8, 0, tzinfo=VN_TZ)
    dossiers, comps, steps, hist = io.StringIO(), io.StringIO(), io.StringIO(), io.StringIO()
    step_id = 0
    due_cache: dict[date, datetime] = {}
    for i in range(1, n + 1):
        received = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 170))
        if not cal.is_working_day(received.date()):
            received += timedelta(days=2)
        d0 = received.date()
        if d0 not in due_cache:
            due_cache[d0] = cal.due(received.replace(hour=9), 18)
        due = due_cache[d0]
        finished = received + timedelta(days=rng.randrange(3, 30)) if rng.random() < 0.9 else None
        status = (9 if rng.random() < 0.5 else 10) if finished else 4
        code = f"000.00.06.H56-{received:%y%m%d}-{i % 10000:04d}x{i}"[:40]
        channel = "online" if rng.random() < 0.4 else "in_person"
        fin = finished.isoformat() if finished else r"\N"
        dossiers.write(
            f"{i}\t{code}\t000.00.06.H56\tchuyen-nhuong-dat\t1.013831\t2025-07-01\t18\t{channel}\t{status}\t"
            f"{received.isoformat()}\t{received.isoformat()}\t\\N\t{due.isoformat()}\t{fin}\t\\N\tf\t\\N\t"
            f"0382030{i % 100000:05d}\t{{}}\t"
            '{"applicant": {"full_name": "Nguyễn Văn An", "phone": "0912345678"}}\t{}\t'
            f"{received.isoformat()}\t{(finished or received).isoformat()}\n"
        )
        comps.write(
            f"{i}\tGCN\tGiấy chứng nhận\tscan/{i}.pdf\t\\N\tt\t{'t' if i % 3 else 'f'}\t"
            f"{'t' if i % 5 == 0 else 'f'}\tf\treceived\t\\N\t{{}}\n"
        )
        t = received
        for key, agency in AGENCY_STEPS:
            step_id += 1
            done = t + timedelta(days=rng.randrange(1, 8))
            ok = finished is not None
            step_due = t + timedelta(days=5)
            steps.write(
                f"{step_id}\tr{step_id}\t{i}\t{key}\t{agency}\t{key}\tagency\t5\t"
                f"{'done' if ok else 'pending'}\t{t.isoformat()}\t{step_due.isoformat()}\t"
                f"{done.isoformat() if ok else NULL}\t"
                f"{('late' if done > step_due else 'on_time') if ok else NULL}\t"
                f"f\t\\N\t\\N\t0\t{{}}\t\\N\n"
            )
            t = done
        hist.write(f"{i}\t\\N\t2\treceive\t{received.isoformat()}\tMOT_CUA\t\\N\n")
        hist.write(f"{i}\t2\t4\tstart_processing\t{received.isoformat()}\tMOT_CUA\t\\N\n")
        if finished:
            hist.write(f"{i}\t4\t9\tresolve\t{finished.isoformat()}\tMOT_CUA\t\\N\n")
    with psycopg.connect(_pg(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'dossiers' "
            "AND column_name = 'uid'"
        )
        if cur.fetchone():  # the flow-run key of newer schemas: fill it from the id
            dossiers = io.StringIO(
                "".join(
                    f"{ln}\tu{ln.split(chr(9), 1)[0]}\n" for ln in dossiers.getvalue().splitlines()
                )
            )
            dossier_cols = "id, " + DOSSIER_COLS.removeprefix("id, ") + ", uid"
        else:
            dossier_cols = DOSSIER_COLS
        for table, cols, buf in [
            (
                "dossiers",
                dossier_cols,
                dossiers,
            ),
            (
                "components",
                "dossier_id, code, name, file_ref, vault_address, paper, digitized, reused, "
                "from_national_vault, status, confidence, meta",
                comps,
            ),
            (
                "steps",
                "id, ref, dossier_id, step_key, agency, action, kind, time_limit_days, status, "
                "started_at, due_at, finished_at, verdict, late, warned_at, ticket, attempts, "
                "outputs, error",
                steps,
            ),
            (
                "status_history",
                "dossier_id, from_status, to_status, event, at, actor, reason",
                hist,
            ),
        ]:
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as cp:
                cp.write(buf.getvalue())
        cur.execute("SELECT setval('dossiers_id_seq', %s)", (n,))
        cur.execute("SELECT setval('steps_id_seq', %s)", (step_id,))
        conn.commit()
    with psycopg.connect(_pg(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - t0


def raw_copy(url: str) -> tuple[float, int]:
    """COPY ... TO STDOUT of every row the reader reads (dossiers and their related rows)."""
    t0 = time.perf_counter()
    size = 0
    with psycopg.connect(_pg(url)) as conn, conn.cursor() as cur:
        for table in (
            "dossiers",
            "components",
            "steps",
            "status_history",
            "supplement_requests",
            "reappointments",
        ):
            with cur.copy(f"COPY (SELECT * FROM {table} ORDER BY 1) TO STDOUT") as cp:
                for block in cp:
                    size += len(block)
    return time.perf_counter() - t0, size


def keyset_read(batch: int) -> tuple[float, float, int, list[Any]]:
    """(read seconds, build seconds, dossiers, a sample of built payloads)."""
    from sqlalchemy import select

    from lienthong.catalog import get_catalog
    from lienthong.db import session_scope
    from lienthong.db.models import DossierRow
    from lienthong.portal.payloads import build, get_portal_config, load_bundles

    catalog, cfg = get_catalog(), get_portal_config()
    read = built = 0.0
    last, count, sample = 0, 0, []
    while True:
        t0 = time.perf_counter()
        with session_scope() as s:
            rows = (
                s.execute(
                    select(DossierRow)
                    .where(DossierRow.id > last)
                    .order_by(DossierRow.id)
                    .limit(batch)
                )
                .scalars()
                .all()
            )
            bundles = load_bundles(s, rows)
        t1 = time.perf_counter()
        if not rows:
            break
        payloads = [build(b, catalog=catalog, cfg=cfg) for b in bundles]
        built += time.perf_counter() - t1
        read += t1 - t0
        if len(sample) < 20000:
            sample.extend(payloads[: 20000 - len(sample)])
        last, count = rows[-1].id, count + len(rows)
    return read, built, count, sample


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--send", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=4, help="paired send rounds, order alternating")
    args = ap.parse_args(argv)
    print(f"machine: {machine()}; {args.rows} dossiers, {args.send} sent")
    port = _free_port()
    sim = subprocess.Popen(
        [sys.executable, "-c", f"from lienthong.simulators.portal import serve; serve(port={port})"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ["LIENTHONG_PORTAL_URL"] = f"http://127.0.0.1:{port}"
    os.environ["LIENTHONG_PORTAL_CONCURRENCY"] = str(args.concurrency)
    try:
        with scratch_database("lienthong_bench_portal") as url:
            secs = load(url, args.rows)
            print(line("load with COPY FROM (rows of 4 tables)", args.rows / secs, "dossiers/s"))
            copy_s, size = raw_copy(url)
            copy_rate = args.rows / copy_s
            print(
                line("anchor: raw COPY TO of the same rows", copy_rate, "dossiers/s")
                + f"  ({size / 1e6:.0f} MB)"
            )
            read_s, build_s, n, sample = keyset_read(args.batch)
            assert n == args.rows, (n, args.rows)
            print(
                line(
                    "keyset reader (ORM, batches)", n / read_s, "dossiers/s", copy_rate, "raw COPY"
                )
            )
            print(line("payloads built (HoSo + progress + hashes)", n / build_s, "payloads/s"))

            for _ in range(100):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/_sim/stats", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            send = sample[: args.send]
            # Paired rounds in alternating order (bench.common.alternating_pairs), each side on its
            # own slice of the same sample (a dossier pushed twice would be an update the second time).
            step = max(1, len(send) // (2 * args.rounds))
            slices = iter([send[i : i + step] for i in range(0, 2 * args.rounds * step, step)])
            tok = httpx.post(
                f"http://127.0.0.1:{port}/api/auth/token",
                json={"username": "lienthong", "password": "lienthong"},
            ).json()["access_token"]
            from concurrent.futures import ThreadPoolExecutor

            from lienthong.portal.client import PortalClient

            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {tok}"}
            ) as raw, PortalClient() as client:

                def post(p: Any) -> None:
                    raw.post(
                        "/api/hoso/create", json={"madonvi": "x", "data": p.hoso}
                    ).raise_for_status()
                    raw.post(
                        "/api/hoso/progress",
                        json={"madonvi": "x", "MaHoSo": p.code, "TienTrinh": p.progress},
                    )

                def push(p: Any) -> None:
                    client.push_dossier(p.hoso)
                    client.push_progress(p.code, p.progress)

                def timed(send_one: Any) -> float:
                    part = next(slices)
                    t0 = time.perf_counter()
                    with ThreadPoolExecutor(args.concurrency) as pool:
                        list(pool.map(send_one, part))
                    return (time.perf_counter() - t0) / len(part)  # seconds per dossier

                for _ in range(50):  # warm the connections and the simulator before timing
                    raw.get("/_sim/stats")
                # a = raw, b = client: raw seconds over client seconds is client/raw throughput.
                pairs = alternating_pairs(lambda: timed(post), lambda: timed(push), args.rounds)
            raw_rate = 1 / statistics.median(pairs.a)
            client_rate = 1 / statistics.median(pairs.b)
            print(line("anchor: raw httpx POST create+progress", raw_rate, "dossiers/s"))
            print(line("client push (retries, auth, create-or-update)", client_rate, "dossiers/s"))
            print(paired("client push / raw POST, throughput", pairs, ""))

            httpx.post(f"http://127.0.0.1:{port}/_sim/reset")
            from lienthong.portal.sync import catch_up

            t0 = time.perf_counter()
            report = catch_up(batch_size=500, max_batches=max(1, args.send // 500), reset=True)
            e2e = report.processed / (time.perf_counter() - t0)
            print(
                line(
                    "catch-up end to end (read, build, send, ledger)",
                    e2e,
                    "dossiers/s",
                    raw_rate,
                    "raw POST",
                )
            )
            print(f"  -> 1.3 million dossiers at this rate: {1_300_000 / e2e / 3600:.1f} h")
            t0 = time.perf_counter()
            rerun = catch_up(batch_size=500, max_batches=max(1, args.send // 500), reset=True)
            unchanged = rerun.processed / (time.perf_counter() - t0)
            print(
                line(
                    "re-run, nothing changed (hash skip)",
                    unchanged,
                    "dossiers/s",
                    copy_rate,
                    "raw COPY",
                )
            )

            from lienthong.calendar import get_calendar
            from lienthong.clock import VN_TZ
            from lienthong.db import session_scope
            from lienthong.index.compute import compute_index
            from lienthong.index.config import get_index_config
            from lienthong.index.records import load_records

            cfg, cal = get_index_config(), get_calendar()
            p0, p1 = datetime(2026, 1, 1, tzinfo=VN_TZ), datetime(2026, 7, 1, tzinfo=VN_TZ)
            t0 = time.perf_counter()
            with session_scope() as s:
                records = load_records(s, p0, p1, rule=cfg.rule, result_keys=cfg.result_keys)
            t1 = time.perf_counter()
            result = compute_index(records, p0, p1, p1, cal, cfg)
            t2 = time.perf_counter()
            print(
                line(
                    "index: facts loaded",
                    len(records) / (t1 - t0),
                    "dossiers/s",
                    copy_rate,
                    "raw COPY",
                )
            )
            print(line("index: computed (province)", len(records) / (t2 - t1), "dossiers/s"))
            print(
                f"  index time / raw COPY time: {(t2 - t0) / copy_s:.2f}  "
                f"(2.1 on-time {result.indicator('2.1').value:.4f}, {result.points} points)"
            )
    finally:
        sim.terminate()
        sim.wait(timeout=10)
    return 0


if __name__ == "__main__":
    from bench.common import standalone

    sys.exit(standalone("bench_portal", main))
