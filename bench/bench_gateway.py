"""Webhook gateway throughput: signed dossier submissions accepted per second, each one durably
stored in PostgreSQL (inbox row + dossier in one committed transaction), with p50/p99 latency,
beside a bare FastAPI endpoint that does no work, served the same way in the same run.

Both apps run under uvicorn in their own processes; the load comes from this process over
loopback: N concurrent keep-alive connections (a small asyncio HTTP/1.1 client, so the load
generator takes as little of the shared CPU as possible), a bounded count and a time limit.
Targets (issue 6): >= 500 accepted/s, ratio >= 0.15 against the bare endpoint, p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
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

from bench.common import machine, scratch_database

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-portal-secret-0123456789"
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")

bare_app = FastAPI()


@bare_app.post("/v1/dossiers")
async def _bare(_: dict) -> JSONResponse:  # parses the JSON body, like any FastAPI endpoint
    return JSONResponse({"accepted": True}, status_code=202)


@bare_app.get("/healthz")
async def _health() -> dict[str, str]:
    return {"status": "ok"}


@contextmanager
def serve(target: str, port: int, workers: int, env: dict[str, str], factory: bool) -> Iterator[str]:
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
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def bodies(count: int, days: int = 1, seed: int = 7) -> list[bytes]:
    """Distinct synthetic birth-registration submissions (a few shapes, varied names), received
    over ``days`` consecutive days (1: all on the same day, as in a real burst)."""
    from samples.dossiers import make_submission

    rng = random.Random(seed)
    base = [
        json.loads(make_submission("lien-thong-khai-sinh", random.Random(rng.random()), T).model_dump_json())
        for _ in range(50)
    ]
    out = []
    for i in range(count):
        payload = dict(base[i % len(base)])
        payload["extra"] = {"bench_seq": i}
        if days > 1:
            payload["received_at"] = (T + timedelta(days=i % days)).isoformat()
        out.append(json.dumps(payload, ensure_ascii=False).encode())
    return out


def request_bytes(path: str, body: bytes) -> bytes:
    from lienthong.gateway.signing import signed_headers

    h = signed_headers("DVCQG", SECRET, "POST", path, body, idempotency_key=secrets.token_hex(12))
    head = "".join(f"{k}: {v}\r\n" for k, v in h.items())
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


async def _drive(
    port: int, path: str, payloads: list[bytes], connections: int, seconds: float
) -> tuple[list[float], dict[int, int], float]:
    latencies: list[float] = []
    codes: dict[int, int] = {}
    it = iter(payloads)
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for body in it:
                if time.perf_counter() > deadline:
                    return
                data = request_bytes(path, body)
                t0 = time.perf_counter()
                writer.write(data)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                codes[status] = codes.get(status, 0) + 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies, codes, time.perf_counter() - t0


def drive(url: str, payloads: list[bytes], connections: int, seconds: float) -> dict[str, float]:
    port = int(url.rsplit(":", 1)[1])
    lat, codes, elapsed = asyncio.run(_drive(port, "/v1/dossiers", payloads, connections, seconds))
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
    }


def stored(url: str) -> tuple[int, int]:
    from sqlalchemy import func, select

    from lienthong.db import session_scope
    from lienthong.db.models import DossierRow, InboxRow

    with session_scope(url) as s:
        inbox = s.execute(select(func.count()).select_from(InboxRow).where(InboxRow.response.is_not(None))).scalar_one()
        dossiers = s.execute(select(func.count()).select_from(DossierRow)).scalar_one()
    return int(inbox), int(dossiers)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--count",
        type=int,
        default=4000,
        help="submissions per endpoint (max 9999: a unit's dossier numbers per day)",
    )
    p.add_argument("--connections", type=int, default=100)
    p.add_argument("--seconds", type=float, default=30.0, help="time limit per endpoint")
    p.add_argument(
        "--days",
        type=int,
        default=1,
        help="spread receptions over N days (each day "
        "has its own dossier-number row lock); 1 = the realistic same-day burst",
    )
    p.add_argument("--workers", type=int, default=2, help="uvicorn worker processes of each app")
    args = p.parse_args(list(argv or []))
    from tests.conftest import free_port

    payloads = bodies(args.count + 200, args.days)
    warm, load = payloads[:200], payloads[200:]
    with scratch_database("lienthong_bench_gw") as db_url:
        env = {
            "LIENTHONG_DATABASE_URL": db_url,
            "LIENTHONG_AGENCY_SECRETS": json.dumps({"DVCQG": [SECRET]}),
            "LIENTHONG_GATEWAY_RATE_PER_SECOND": "1000000",
            "LIENTHONG_GATEWAY_RATE_BURST": "1000000",
        }
        with serve("bench.bench_gateway:bare_app", free_port(), args.workers, env, False) as url:
            drive(url, warm, args.connections, args.seconds)
            bare = drive(url, load, args.connections, args.seconds)
        with serve("lienthong.gateway.app:create_app", free_port(), args.workers, env, True) as url:
            drive(url, warm, args.connections, args.seconds)
            gw = drive(url, load, args.connections, args.seconds)
        inbox, dossiers = stored(db_url)
    print(
        f"machine: {machine()}; {args.workers} uvicorn workers per app, {args.connections} "
        f"connections, load generator in this process"
    )
    for name, r in (("bare FastAPI endpoint (no work)", bare), ("gateway POST /v1/dossiers", gw)):
        print(
            f"{name:<34} {r['rate']:8.1f} req/s accepted  p50 {r['p50_ms']:6.1f} ms  "
            f"p99 {r['p99_ms']:6.1f} ms  ({int(r['accepted'])} accepted, {int(r['other'])} other, "
            f"{r['elapsed']:.1f} s)"
        )
    ratio = gw["rate"] / bare["rate"]
    durable = inbox == dossiers == gw["accepted"] + len(warm)
    print(f"ratio gateway/bare: {ratio:.3f} (target >= 0.15)")
    print(
        f"durably stored: {inbox} inbox rows with their answer, {dossiers} dossiers, for "
        f"{int(gw['accepted']) + len(warm)} accepted -> {'all stored' if durable else 'MISMATCH'}"
    )
    print(
        f"targets: accepted/s >= 500: {'met' if gw['rate'] >= 500 else 'NOT met'}; ratio >= 0.15: "
        f"{'met' if ratio >= 0.15 else 'NOT met'}; p99 <= 100 ms: "
        f"{'met' if gw['p99_ms'] <= 100 else 'NOT met'}"
    )
    return 0 if durable else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
