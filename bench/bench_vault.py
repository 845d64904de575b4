"""Benchmark of the result vault, printed as ratios against anchors measured in the same run.

1. Publications per second (a 200 KB PDF + its JSON + sealed metadata, index row and chain event in
   PostgreSQL) to the filesystem and to S3 over HTTP (moto's standalone server in a subprocess).
   Regression floors (issue 18): >= 100/s on the file store, >= 50/s on S3; the need is well
   under one publication per second. Each is shown beside a raw loop writing the same bytes with
   no index, no seal and no chain (file write + fsync / put_object): on the filesystem the three
   files a plain file store keeps per result (PDF, data JSON, metadata JSON), each fsynced; on S3
   the PDF and the JSON. The raw loop is easier work than a publication (no database transaction,
   no lock, no signature): its ratio says what the vault's guarantees cost, not a target.
   Contenders take turns on slices of the work (``--rounds``, order alternating), so that load
   from other work on the machine falls on each alike.
2. Index look-ups per second (owner + result code, valid results) over N indexed results loaded
   with COPY (default 1,000,000), beside a primary-key SELECT through psycopg. Target >= 2,000/s.

Needs the local PostgreSQL (``--pg-admin``); a scratch database is created and dropped.
    python -m bench.bench_vault [--publications 400] [--rounds 10] [--rows 1000000] [--lookups 3000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.common import line, paired

PDF_BYTES = 200 * 1024


def _scratch_db(admin: str) -> str:
    name = f"lienthong_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_db(admin: str, name: str) -> None:
    from lienthong.db import dispose_engines

    dispose_engines()
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _payloads(n: int, seed: int) -> list[tuple[bytes, dict[str, str]]]:
    from samples.results import death_extract_data

    rng = random.Random(seed)
    # Each seed's JSON objects are new bytes too.
    return [
        (b"%PDF-1.7\n" + rng.randbytes(PDF_BYTES - 9), death_extract_data(f"{seed}-{i:06d}", f"001055{i:06d}"))
        for i in range(n)
    ]


def _drafts(payloads, run: str):  # type: ignore[no-untyped-def]
    from samples.results import death_extract_draft

    return [
        death_extract_draft(f"bench-{run}-{i}", data, pdf, dossier_seq=i % 10000)
        for i, (pdf, data) in enumerate(payloads)
    ]


def _publish_time(store, keyring, drafts, url: str) -> float:  # type: ignore[no-untyped-def]
    from lienthong.vault.publish import publish

    t0 = time.perf_counter()
    for d in drafts:
        publish(d, store=store, keyring=keyring, session_url=url)
    return time.perf_counter() - t0


def _raw_files(payloads, drafts) -> list[list[bytes]]:  # type: ignore[no-untyped-def]
    """What a plain file store writes for each result: the PDF, the JSON of its data and its
    metadata document (the bytes the vault seals), computed before any clock starts."""
    from lienthong.vault.prepare import prepare_result
    from lienthong.vault.seal import canonical_json

    return [
        [pdf, canonical_json(data), canonical_json(prepare_result(d).metadata)]
        for (pdf, data), d in zip(payloads, drafts, strict=True)
    ]


def _raw_file_time(root: Path, results: list[list[bytes]]) -> float:
    """Write each result's files (:func:`_raw_files`) under new names, each fsynced."""
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i, blobs in enumerate(results):
        for suffix, blob in zip((".pdf", ".json", ".meta.json"), blobs, strict=True):
            with open(root / f"{i}{suffix}", "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
    return time.perf_counter() - t0


def _raw_s3_time(client, bucket: str, payloads, prefix: str) -> float:  # type: ignore[no-untyped-def]
    from lienthong.vault.seal import canonical_json

    t0 = time.perf_counter()
    for i, (pdf, data) in enumerate(payloads):
        client.put_object(
            Bucket=bucket,
            Key=f"raw/{prefix}/{i}.pdf",
            Body=pdf,
            ContentType="application/pdf",
            ServerSideEncryption="AES256",
        )
        client.put_object(
            Bucket=bucket,
            Key=f"raw/{prefix}/{i}.json",
            Body=canonical_json(data),
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )
    return time.perf_counter() - t0


def _interleaved(n: int, rounds: int, contenders: dict[str, Any]) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Rates per second of each contender, run in turns on slices of the same n items (the order
    rotating every round), so that the load other work puts on the shared disk and cores falls on
    all of them alike rather than on whichever happened to run first. Also returns each round's
    time per contender, for :func:`bench.common.paired`."""
    bounds = [(n * r // rounds, n * (r + 1) // rounds) for r in range(rounds)]
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r, (lo, hi) in enumerate(bounds):
        turn = names[r % len(names) :] + names[: r % len(names)]
        for name in turn:
            times[name].append(contenders[name](r, lo, hi))
    return {name: n / sum(t) for name, t in times.items()}, times


def _throughput(times: dict[str, list[float]], anchor: str = "raw") -> list[float]:
    """Each round's vault/anchor throughput ratio (the anchor's time over the vault's)."""
    return [a / v for v, a in zip(times["vault"], times[anchor], strict=True)]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    import httpx

    port = _free_port()
    exe = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            httpx.get(url + "/moto-api/", timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("moto_server did not start")


FILE_FLOOR, S3_FLOOR = 100.0, 50.0


def bench_publications(url: str, n: int, tmp: Path, rounds: int = 10) -> list[str]:
    """Returns the floors that did not hold."""
    from lienthong.vault.seal import Keyring
    from lienthong.vault.settings import VaultSettings
    from lienthong.vault.store import FileVault, S3Vault

    missed: list[str] = []
    keyring = Keyring(VaultSettings(keys_dir=tmp / "keys"))
    payloads = _payloads(n, 1)
    warm = _payloads(5, 2)
    # Filesystem: the same bytes, each contender under its own directory of the same disk.
    store = FileVault(tmp / "vault")
    _publish_time(store, keyring, _drafts(warm, "warm-fs"), url)
    drafts = _drafts(payloads, "fs")
    raw_files = _raw_files(payloads, drafts)
    fs, fs_times = _interleaved(
        n,
        rounds,
        {
            "vault": lambda r, lo, hi: _publish_time(store, keyring, drafts[lo:hi], url),
            "raw": lambda r, lo, hi: _raw_file_time(tmp / "raw" / str(r), raw_files[lo:hi]),
        },
    )
    print(
        line(
            "vault publication, filesystem",
            fs["vault"],
            "publications/s",
            fs["raw"],
            "raw PDF + JSON + metadata write + fsync loop /s",
            f">= {FILE_FLOOR:.0f}/s",
        )
    )
    print(paired("vault publication, filesystem, vs raw loop", _throughput(fs_times), "none"))
    if fs["vault"] < FILE_FLOOR:
        missed.append(f"filesystem {fs['vault']:.1f}/s < {FILE_FLOOR:.0f}/s")
    # S3 over HTTP.
    proc, endpoint = _start_moto()
    try:
        settings = VaultSettings(
            backend="s3",
            s3_endpoint_url=endpoint,
            s3_bucket="bench-vault",
            s3_access_key_id="bench",
            s3_secret_access_key="bench",
        )  # type: ignore[arg-type]
        s3 = S3Vault(settings)
        s3.ensure_bucket()
        _publish_time(s3, keyring, _drafts(_payloads(5, 3), "warm-s3"), url)
        s3_payloads = _payloads(n, 4)
        s3_drafts = _drafts(s3_payloads, "s3")
        rates, s3_times = _interleaved(
            n,
            rounds,
            {
                "vault": lambda r, lo, hi: _publish_time(s3, keyring, s3_drafts[lo:hi], url),
                "raw": lambda r, lo, hi: _raw_s3_time(
                    s3.client, s3.bucket, s3_payloads[lo:hi], str(r)
                ),
            },
        )
        print(
            line(
                "vault publication, S3 over HTTP (moto)",
                rates["vault"],
                "publications/s",
                rates["raw"],
                "raw put_object loop /s",
                f">= {S3_FLOOR:.0f}/s",
            )
        )
        print(paired("vault publication, S3 over HTTP, vs raw loop", _throughput(s3_times), "none"))
        if rates["vault"] < S3_FLOOR:
            missed.append(f"S3 {rates['vault']:.1f}/s < {S3_FLOOR:.0f}/s")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return missed


def _copy_rows(url: str, rows: int) -> list[str]:
    """Load ``rows`` synthetic results with COPY; returns a sample of owner IDs to look up."""
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    cols = (
        "address, lineage, issuer, result_code, local_id, version, owner_citizen_id, name, number, "
        "issued_on, issuing_body, signer, permanent, scope, procedure_code, source_dossier_code, "
        "pdf_key, pdf_sha256, json_key, json_sha256, sealed, sealed_sha256, signature, key_id, "
        "published_at, status, needs_reissue"
    )
    codes = ["KQ.G15.000031", "KQ.G15.000034", "KQ.G01.000065", "KQ.G18.000285"]
    sample: list[str] = []
    rng = random.Random(7)
    t0 = time.perf_counter()
    with psycopg.connect(plain) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY vault_results ({cols}) FROM STDIN") as copy:
            day0 = date(2020, 1, 1)
            for i in range(rows):
                owner = f"0{i % 96 + 1:02d}{rng.randrange(4)}{rng.randrange(100):02d}{i:06d}"[:12]
                code = codes[i % 4]
                local = f"b-{i}"
                addr = f"vault://UBND_XA/{code}/{local}/v1"
                h = f"{i:064x}"
                copy.write_row(
                    (
                        addr,
                        addr[:-3],
                        "UBND_XA",
                        code,
                        local,
                        1,
                        owner,
                        "Kết quả",
                        str(i),
                        day0 + timedelta(days=i % 2000),
                        "UBND xã",
                        "Cán bộ",
                        True,
                        "Toàn quốc",
                        "1.001193",
                        f"000.00.06.H56-260310-{i % 10000:04d}",
                        f"objects/sha256/{h[:2]}/{h}",
                        h,
                        f"objects/sha256/{h[:2]}/{h}",
                        h,
                        "{}",
                        h,
                        "sig",
                        "UBND_XA:0",
                        "2026-03-10T10:00:00+07:00",
                        "valid",
                        False,
                    )
                )
                if i % max(1, rows // 5000) == 0:
                    sample.append((owner, code))  # type: ignore[arg-type]
        conn.commit()
        cur.execute("ANALYZE vault_results")
    print(f"loaded {rows:,} indexed results with COPY in {time.perf_counter() - t0:.1f} s")
    return sample  # type: ignore[return-value]


def bench_lookups(url: str, rows: int, lookups: int) -> None:
    from lienthong.vault.reads import reusable_addresses

    sample = _copy_rows(url, rows)
    rng = random.Random(3)
    picks = [rng.choice(sample) for _ in range(lookups)]
    from sqlalchemy.orm import Session

    from lienthong.db import get_engine

    # One session for all look-ups, as a long-lived intake service holds one.
    with Session(get_engine(url)) as session:
        for owner, code in picks[:50]:
            reusable_addresses(owner, code, session=session)
        t0 = time.perf_counter()
        found = sum(len(reusable_addresses(owner, code, session=session)) for owner, code in picks)
    rate = lookups / (time.perf_counter() - t0)
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain) as conn:
        ids = [rng.randrange(1, rows) for _ in range(lookups)]
        t0 = time.perf_counter()
        for i in ids:
            conn.execute("SELECT address FROM vault_results WHERE id = %s", (i,)).fetchone()
        anchor = lookups / (time.perf_counter() - t0)
    assert found >= lookups  # every sampled owner has its result
    print(
        line(
            f"vault look-ups (owner + result code), {rows:,} results",
            rate,
            "look-ups/s",
            anchor,
            "psycopg primary-key SELECT /s",
            ">= 2,000/s",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pg-admin",
        default=os.environ.get(
            "LIENTHONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--publications", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=3000)
    args = parser.parse_args(argv)
    name = _scratch_db(args.pg_admin)
    base = args.pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    url = f"{base}/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-vault-"))
    try:
        from lienthong.db.migrate import upgrade

        upgrade(url)
        missed = bench_publications(url, args.publications, tmp, args.rounds)
        bench_lookups(url, args.rows, args.lookups)
    finally:
        _drop_db(args.pg_admin, name)
        shutil.rmtree(tmp, ignore_errors=True)
    for floor in missed:
        print(f"FLOOR NOT HELD: vault publication, {floor}")
    return 1 if missed else 0


if __name__ == "__main__":
    from bench.common import standalone

    sys.exit(standalone("bench_vault", main))
