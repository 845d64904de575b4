"""Webhook gateway throughput: signed dossier submissions accepted per second, each one durably
stored in PostgreSQL (inbox row + idempotency key + dossier committed before the 202), with
p50/p99 latency, beside a bare FastAPI endpoint that does no work, served the same way (same
uvicorn, same worker count) in the same run.

Both apps run under uvicorn in their own processes, side by side; the load comes from this
process over loopback: N keep-alive connections (a small asyncio HTTP/1.1 client; requests are
signed before each phase, so the load generator spends as little of the shared CPU as possible).

Two measurements, because a closed loop ties latency to throughput (Little's law: with 100
connections always busy, the mean latency is 100 / throughput, so p99 <= 100 ms would need
well over 1,000 requests/s even from an endpoint that does nothing):

* throughput: 100 connections sending back to back (closed loop), in rounds that alternate bare
  and gateway so both see the same machine (other work shares these cores); medians reported;
* latency: a paced (open-loop) phase offering 200 requests/s over the same 100 connections,
  latency measured from each request's scheduled time (a late connection counts its wait).

Also printed: CPU milliseconds per request of each app's processes, a figure other load on the
machine disturbs far less than throughput. Regression floors (issue 18; the need is a few requests
a second): >= 500 accepted/s, and p99 <= 100 ms at 200 requests/s offered. The bare endpoint does no
work at all (no signature, no database): its ratio says what the gateway's work costs, not a target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from bench.common import machine, record, scratch_database
from lienthong.gateway.app import telemetry_options

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-portal-secret-0123456789"
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")

# FastAPI's own OpenTelemetry instrumentation off, as in the gateway (its default there): the
# anchor pays no more per request than the gateway does for the same framework.
bare_app = FastAPI(**telemetry_options(os.environ.get("LIENTHONG_GATEWAY_TELEMETRY", "").lower() in ("1", "true")))


@bare_app.post("/v1/dossiers")
async def _bare(_: dict) -> JSONResponse:  # parses the JSON body, like any FastAPI endpoint
    return JSONResponse({"accepted": True}, status_code=202)


@bare_app.get("/healthz")
async def _health() -> dict[str, str]:
    return {"status": "ok"}


@contextmanager
def serve(
    target: str, port: int, workers: int, env: dict[str, str], factory: bool
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if factory:
        argv.append("--factory")
    proc = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{target} did not start")
            time.sleep(0.2)
        yield url, proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def bodies(count: int, day: int = 0, seed: int = 7) -> list[bytes]:
    """Distinct synthetic birth-registration submissions (a few shapes, varied names), all
    received on day ``day`` after the bench's date: a same-day burst, as in real intake (every
    dossier of a day takes that day's numbering lock; 9,999 numbers a day at most)."""
    from samples.dossiers import make_submission

    rng = random.Random(seed)
    base = [
        json.loads(make_submission("lien-thong-khai-sinh", random.Random(rng.random()), T).model_dump_json())
        for _ in range(50)
    ]
    out = []
    for i in range(count):
        payload = dict(base[i % len(base)])
        payload["extra"] = {"bench_seq": i, "bench_day": day}
        payload["received_at"] = (T + timedelta(days=day)).isoformat()
        out.append(json.dumps(payload, ensure_ascii=False).encode())
    return out


def request_bytes(path: str, body: bytes) -> bytes:
    from lienthong.gateway.signing import signed_headers

    h = signed_headers("DVCQG", SECRET, "POST", path, body, idempotency_key=secrets.token_hex(12))
    head = "".join(f"{k}: {v}\r\n" for k, v in h.items())
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def _drive(
    port: int, requests: list[bytes], connections: int, seconds: float, rate: float | None
) -> tuple[list[float], dict[int, int], float]:
    """Send ``requests`` over ``connections`` keep-alive connections: back to back (``rate``
    None), or the j-th at start + j / rate, its latency counted from that scheduled time."""
    latencies: list[float] = []
    codes: dict[int, int] = {}
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(connections)]
    queue = list(enumerate(requests))
    t0 = time.perf_counter()
    deadline = t0 + seconds

    async def worker(c: int) -> None:
        reader, writer = streams[c]
        mine = queue[c::connections] if rate else None
        pos = 0
        while True:
            if mine is None:
                if not queue:
                    return
                j, data = queue.pop()
            elif pos < len(mine):
                j, data = mine[pos]
                pos += 1
            else:
                return
            now = time.perf_counter()
            if now > deadline:
                return
            start = now
            if rate:
                start = t0 + j / rate
                if start > now:
                    await asyncio.sleep(start - now)
            writer.write(data)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            codes[status] = codes.get(status, 0) + 1

    try:
        await asyncio.gather(*(worker(c) for c in range(connections)))
    finally:
        for _, writer in streams:
            writer.close()
    return latencies, codes, time.perf_counter() - t0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (uvicorn workers), from /proc."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return total / os.sysconf("SC_CLK_TCK")


def drive(
    url: str, proc: subprocess.Popen[bytes], payloads: list[bytes], connections: int, seconds: float,
    rate: float | None = None,
) -> dict[str, float]:
    port = int(url.rsplit(":", 1)[1])
    requests = [request_bytes("/v1/dossiers", body) for body in payloads]  # signed before the clock starts
    cpu0 = _cpu_seconds(proc.pid)
    lat, codes, elapsed = asyncio.run(_drive(port, requests, connections, seconds, rate))
    cpu = _cpu_seconds(proc.pid) - cpu0
    lat.sort()
    accepted = codes.get(202, 0)
    return {
        "accepted": accepted,
        "sent": len(lat),
        "elapsed": elapsed,
        "rate": accepted / elapsed,
        "p50_ms": 1000 * lat[len(lat) // 2],
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))],
        "other": sum(v for k, v in codes.items() if k != 202),
        "cpu_ms": 1000 * cpu / max(1, len(lat)),
        "load": os.getloadavg()[0],
    }


def stored(url: str) -> tuple[int, int]:
    from sqlalchemy import func, select

    from lienthong.db import session_scope
    from lienthong.db.models import DossierRow, InboxRow

    with session_scope(url) as s:
        inbox = s.execute(select(func.count()).select_from(InboxRow).where(InboxRow.response.is_not(None))).scalar_one()
        dossiers = s.execute(select(func.count()).select_from(DossierRow)).scalar_one()
    return int(inbox), int(dossiers)


def _line(name: str, r: dict[str, float]) -> str:
    return (
        f"  {name:<9} {r['rate']:7.0f} req/s accepted  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
        f"{r['cpu_ms']:5.2f} ms CPU/req  ({int(r['accepted'])} accepted, {int(r['other'])} other, "
        f"{r['elapsed']:.1f} s, load {r['load']:.1f})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--count", type=int, default=3000, help="submissions per round (max 9999: one day's numbers)")
    p.add_argument("--rounds", type=int, default=3, help="closed-loop rounds, bare and gateway alternating")
    p.add_argument("--connections", type=int, default=100)
    p.add_argument("--seconds", type=float, default=30.0, help="time limit per phase")
    p.add_argument("--rate", type=float, default=200.0, help="offered requests/s of the paced latency phase")
    p.add_argument("--paced-seconds", type=float, default=6.0, help="length of the paced phase")
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes of each app")
    p.add_argument("--fastapi-telemetry", action="store_true",
                   help="both apps with FastAPI's OpenTelemetry on (FastAPI's default, the gateway's off)")
    args = p.parse_args(list(argv or []))
    from infra.processes import free_port

    warm = bodies(300, day=0)
    rounds = [bodies(args.count, day=1 + r) for r in range(args.rounds)]
    paced = bodies(int(args.rate * args.paced_seconds), day=1 + args.rounds)
    bare_rounds: list[dict[str, float]] = []
    gw_rounds: list[dict[str, float]] = []
    with scratch_database("lienthong_bench_gw") as db_url:
        env = {
            "LIENTHONG_DATABASE_URL": db_url,
            "LIENTHONG_AGENCY_SECRETS": json.dumps({"DVCQG": [SECRET]}),
            "LIENTHONG_GATEWAY_RATE_PER_SECOND": "1000000",
            "LIENTHONG_GATEWAY_RATE_BURST": "1000000",
            "LIENTHONG_GATEWAY_TELEMETRY": "true" if args.fastapi_telemetry else "false",
        }
        with (
            serve("bench.bench_gateway:bare_app", free_port(), args.workers, env, False) as (bare_url, bare_proc),
            serve("lienthong.gateway.app:create_app", free_port(), args.workers, env, True) as (gw_url, gw_proc),
        ):
            drive(bare_url, bare_proc, warm, args.connections, args.seconds)
            drive(gw_url, gw_proc, warm, args.connections, args.seconds)
            for payloads in rounds:
                bare_rounds.append(drive(bare_url, bare_proc, payloads, args.connections, args.seconds))
                gw_rounds.append(drive(gw_url, gw_proc, payloads, args.connections, args.seconds))
            bare_paced = drive(bare_url, bare_proc, paced, args.connections, args.seconds, args.rate)
            gw_paced = drive(gw_url, gw_proc, paced, args.connections, args.seconds, args.rate)
        inbox, dossiers = stored(db_url)
    accepted = len(warm) + sum(int(r["accepted"]) for r in gw_rounds) + int(gw_paced["accepted"])
    print(
        f"machine: {machine()}; {args.workers} uvicorn workers per app, {args.connections} "
        f"connections, load generator in this process, FastAPI telemetry "
        f"{'on' if args.fastapi_telemetry else 'off'} in both apps"
    )
    print("closed loop (back to back), rounds alternating bare / gateway:")
    for i, (b, g) in enumerate(zip(bare_rounds, gw_rounds, strict=True), 1):
        print(f" round {i}: ratio {g['rate'] / b['rate']:.3f}")
        print(_line("bare", b))
        print(_line("gateway", g))
    med = statistics.median
    bare_rate, gw_rate = med(r["rate"] for r in bare_rounds), med(r["rate"] for r in gw_rounds)
    gw_p99 = med(r["p99_ms"] for r in gw_rounds)
    ratio = gw_rate / bare_rate
    cpu_ratio = med(r["cpu_ms"] for r in bare_rounds) / med(r["cpu_ms"] for r in gw_rounds)
    print(
        f"median of {args.rounds}: gateway {gw_rate:.0f} accepted/s (p50 {med(r['p50_ms'] for r in gw_rounds):.0f} ms, "
        f"p99 {gw_p99:.0f} ms), bare {bare_rate:.0f}/s (p99 {med(r['p99_ms'] for r in bare_rounds):.0f} ms); "
        f"ratio gateway/bare {ratio:.3f}; CPU per request bare/gateway {cpu_ratio:.3f}"
    )
    print(f"paced: {args.rate:.0f} requests/s offered over {args.connections} connections, "
          f"latency from each request's scheduled time:")
    print(_line("bare", bare_paced))
    print(_line("gateway", gw_paced))
    durable = inbox == dossiers == accepted
    print(
        f"durably stored: {inbox} inbox rows with their answer, {dossiers} dossiers, for "
        f"{accepted} accepted -> {'all stored' if durable else 'MISMATCH'}"
    )
    floors = gw_rate >= 500 and gw_paced["p99_ms"] <= 100
    print(
        f"floors: accepted/s >= 500: {'held' if gw_rate >= 500 else 'NOT held'}; p99 <= 100 ms at "
        f"{args.rate:.0f}/s offered: {'held' if gw_paced['p99_ms'] <= 100 else 'NOT held'} (closed loop at "
        f"saturation: p99 {gw_p99:.0f} ms)"
    )
    record("gateway, 100 connections, accepted/s (median)", gw_rate, "req/s", bare_rate,
           "bare FastAPI endpoint, same workers", ">= 500/s")
    record(f"gateway p99 at {args.rate:.0f} req/s offered", gw_paced["p99_ms"], "ms", bare_paced["p99_ms"],
           "bare endpoint, same pacing", "<= 100 ms")
    clean = durable and not gw_paced["other"] and not any(r["other"] for r in gw_rounds)
    return 0 if clean and floors else 1


if __name__ == "__main__":
    from bench.common import standalone

    sys.exit(standalone("bench_gateway", main))
