"""Benchmark of the result vault, printed as ratios against anchors measured in the same run.

1. Publications per second (a 200 KB PDF + its JSON + sealed metadata, index row and chain event in
   PostgreSQL) to the filesystem and to S3 over HTTP (moto's standalone server in a subprocess),
   each beside a raw loop writing the same bytes (file write + fsync / put_object). Target >= 0.5.
2. Index look-ups per second (owner + result code, valid results) over N indexed results loaded
   with COPY (default 1,000,000), beside a primary-key SELECT through psycopg. Target >= 2,000/s.

Needs the local PostgreSQL (``--pg-admin``); a scratch database is created and dropped.
    python -m bench.bench_vault [--publications 150] [--rows 1000000] [--lookups 3000]
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

import psycopg

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
    rng = random.Random(seed)
    out = []
    for i in range(n):
        pdf = b"%PDF-1.7\n" + rng.randbytes(PDF_BYTES - 9)
        data = {
            "so_trich_luc": f"{i:06d}",
            "ho_ten": "Trần Văn Bình",
            "ngay_chet": "2026-03-05",
            "so_dinh_danh": f"001055{i:06d}",
        }
        out.append((pdf, data))
    return out


def _drafts(payloads, run: str):  # type: ignore[no-untyped-def]
    from lienthong.vault.publish import ResultDraft

    return [
        ResultDraft(
            issuer="UBND_XA",
            result_code="KQ.G15.000034",
            name="Trích lục khai tử",
            local_id=f"bench-{run}-{i}",
            data=data,
            owner_citizen_id=data["so_dinh_danh"],
            procedure_code="1.000656",
            source_dossier_code=f"000.00.06.H56-260310-{i % 10000:04d}",
            source_step="khai_tu",
            issued_on=date(2026, 3, 10),
            issuing_body="Ủy ban nhân dân xã",
            signer="Công chức hộ tịch",
            number=data["so_trich_luc"],
            pdf=pdf,
        )
        for i, (pdf, data) in enumerate(payloads)
    ]


def _publish_rate(store, keyring, drafts, url: str) -> float:  # type: ignore[no-untyped-def]
    from lienthong.vault.publish import publish

    t0 = time.perf_counter()
    for d in drafts:
        publish(d, store=store, keyring=keyring, session_url=url)
    return len(drafts) / (time.perf_counter() - t0)


def _raw_file_rate(root: Path, payloads) -> float:  # type: ignore[no-untyped-def]
    from lienthong.vault.seal import canonical_json

    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i, (pdf, data) in enumerate(payloads):
        for suffix, blob in ((".pdf", pdf), (".json", canonical_json(data))):
            with open(root / f"{i}{suffix}", "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
    return len(payloads) / (time.perf_counter() - t0)


def _raw_s3_rate(client, bucket: str, payloads) -> float:  # type: ignore[no-untyped-def]
    from lienthong.vault.seal import canonical_json

    t0 = time.perf_counter()
    for i, (pdf, data) in enumerate(payloads):
        client.put_object(
            Bucket=bucket,
            Key=f"raw/{i}.pdf",
            Body=pdf,
            ContentType="application/pdf",
            ServerSideEncryption="AES256",
        )
        client.put_object(
            Bucket=bucket,
            Key=f"raw/{i}.json",
            Body=canonical_json(data),
            ContentType="application/json",
            ServerSideEncryption="AES256",
        )
    return len(payloads) / (time.perf_counter() - t0)


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


def bench_publications(url: str, n: int, tmp: Path) -> None:
    from lienthong.vault.seal import Keyring
    from lienthong.vault.settings import VaultSettings
    from lienthong.vault.store import FileVault, S3Vault

    keyring = Keyring(VaultSettings(keys_dir=tmp / "keys"))
    payloads = _payloads(n, 1)
    warm = _payloads(5, 2)
    # Filesystem.
    store = FileVault(tmp / "vault")
    _publish_rate(store, keyring, _drafts(warm, "warm-fs"), url)
    raw = _raw_file_rate(tmp / "raw", payloads)
    pub = _publish_rate(store, keyring, _drafts(payloads, "fs"), url)
    print(
        f"filesystem: {pub:8.1f} publications/s   raw file write+fsync loop {raw:8.1f}/s   "
        f"ratio {pub / raw:.2f} (target >= 0.5)"
    )
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
        _publish_rate(s3, keyring, _drafts(_payloads(5, 3), "warm-s3"), url)
        raw = _raw_s3_rate(s3.client, s3.bucket, payloads)
        pub = _publish_rate(s3, keyring, _drafts(_payloads(n, 4), "s3"), url)
        print(
            f"S3 (moto over HTTP): {pub:8.1f} publications/s   raw put_object loop {raw:8.1f}/s   "
            f"ratio {pub / raw:.2f} (target >= 0.5)"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _copy_rows(url: str, rows: int) -> list[str]:
    """Load ``rows`` synthetic results with COPY; returns a sample of owner IDs to look up."""
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    cols = (
        "address, lineage, issuer, result_code, local_id, version, owner_citizen_id, name, number, "
        "issued_on, issuing_body, signer, permanent, scope, procedure_code, source_dossier_code, "
        "pdf_key, pdf_sha256, json_key, json_sha256, sealed, sealed_sha256, signature, key_id, "
        "published_at, status, needs_reissue"
    )
    codes = ["KQ.G15.000031", "KQ.G15.000034", "KQ.G05.000101", "KQ.G20.000006"]
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
        f"index look-ups (owner + result code, valid): {rate:8.0f}/s over {rows:,} results "
        f"(target >= 2,000/s); raw psycopg primary-key SELECT {anchor:8.0f}/s; ratio {rate / anchor:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pg-admin",
        default=os.environ.get(
            "LIENTHONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    parser.add_argument("--publications", type=int, default=150)
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
        bench_publications(url, args.publications, tmp)
        bench_lookups(url, args.rows, args.lookups)
    finally:
        _drop_db(args.pg_admin, name)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
