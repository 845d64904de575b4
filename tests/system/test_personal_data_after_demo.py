"""Personal data stays where it belongs. After a real demo run (its own Prefect server, simulator and
served deployments, on embedded defaults under a temporary ./var), nothing the system wrote outside
the vault and the database carries a synthetic citizen's full ID number or full name:

- every Prefect log line and artifact, read through the Prefect API;
- the application logs (var/logs) and the demo's own terminal output;
- the reports (service index, data quality, sweeps) and Prefect's persisted task results;
- the webhook gateway's answers, errors included, to requests that carry those people's data.

The synthetic citizens are read back from the demo's own database, so the scan knows every name and
ID the run produced (the children's personal ID numbers issued by the simulated civil status too).
Forms (Mẫu 01-05) are the dossier's legal record handed to the citizen and kept with it, like the
vault's documents: they name the applicant by law and are not scanned.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.processes import free_port
from lienthong.gateway.signing import signed_headers
from samples.dossiers import make_submission
from tests.conftest import prefect_texts
from tests.system.conftest import ROOT, SECRET

pytestmark = [pytest.mark.integration, pytest.mark.topology]  # the demo's own stack of processes

# Keys whose values identify a person: names and ID numbers, in the declaration and in results.
PERSONAL_KEYS = {"full_name", "citizen_id", "personal_id", "ho_ten", "ho_ten_me", "ho_ten_cha", "so_dinh_danh"}
# What is allowed to hold personal data: the vault, the databases, and the dossier's own records.
EXEMPT_DIRS = {"vault", "forms", "uploads"}
EXEMPT_SUFFIXES = {".db", ".db-wal", ".db-shm", ".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pid"}


def _walk(value: Any, key: str | None, out: set[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _walk(v, k, out)
    elif isinstance(value, list):
        for v in value:
            _walk(v, key, out)
    elif isinstance(value, str) and key in PERSONAL_KEYS and len(value) >= 6:
        out.add(value)


def synthetic_people(var: Path) -> set[str]:
    """Every full name and ID number the demo's dossiers and agencies' results hold."""
    found: set[str] = set()
    with sqlite3.connect(var / "lienthong.db") as conn:
        for (payload,) in conn.execute("SELECT payload FROM dossiers"):
            _walk(json.loads(payload), None, found)
        for (outputs,) in conn.execute("SELECT outputs FROM steps WHERE outputs IS NOT NULL"):
            _walk(json.loads(outputs), None, found)
    return found


def written_files(var: Path) -> dict[str, str]:
    """Text of every file the run wrote under ./var outside the exempt places (logs, reports,
    Prefect's persisted results and anything else), read leniently as UTF-8."""
    texts = {}
    for path in sorted(var.rglob("*")):
        rel = path.relative_to(var)
        if not path.is_file() or rel.parts[0] in EXEMPT_DIRS or path.suffix.lower() in EXEMPT_SUFFIXES:
            continue
        if rel.parts[:2] == ("prefect", "prefect.db") or path.name.startswith("prefect.db"):
            continue  # Prefect's own database: read through its API above
        texts[str(rel)] = readable(path.read_bytes())
    return texts


def readable(raw: bytes) -> str:
    """A file's text, and for base64 content (Prefect's persisted results are base64 pickles, whose
    strings are plain UTF-8 inside) the decoded bytes as well, so nothing hides in an encoding."""
    text = raw.decode("utf-8", errors="replace")
    try:
        decoded = base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        return text
    return text + "\n" + decoded.decode("utf-8", errors="replace")


def leaks(secrets_: set[str], texts: dict[str, str]) -> dict[str, int]:
    return {where: n for where, text in texts.items() if (n := sum(s in text for s in secrets_))}


def test_demo_writes_no_full_id_or_name_outside_the_vault_and_database(demo: dict[str, Any]) -> None:
    var: Path = demo["var"]
    people = synthetic_people(var)
    assert len(people) > 10, "the demo's dossiers should name people"

    api = f"http://127.0.0.1:{demo['env']['LIENTHONG_PREFECT_PORT']}/api"
    prefect = prefect_texts(api)
    assert len(prefect) > 50  # the runs did log and publish artifacts
    files = written_files(var)
    assert any(k.startswith("logs") for k in files), sorted(files)[:20]

    found = leaks(people, {"demo output": demo["output"], **files})
    found |= {f"prefect #{i}": n for i, t in enumerate(prefect) if (n := sum(s in t for s in people))}
    assert not found, f"full names or ID numbers outside the vault and database: {found}"


def test_the_scan_finds_a_planted_name_in_any_written_file(demo: dict[str, Any]) -> None:
    """Control: the same scan, with one person's name planted in a report and one ID number in a
    persisted result (base64, as Prefect writes them), must catch both."""
    var: Path = demo["var"]
    people = sorted(synthetic_people(var))
    name = next(p for p in people if not p.isdigit())
    cid = next(p for p in people if p.isdigit())
    (var / "reports" / "planted.md").write_text(f"Người nộp: {name}\n", encoding="utf-8")
    (var / "prefect" / "storage" / "planted").write_bytes(base64.encodebytes(f"x{cid}y".encode()))
    try:
        found = leaks(set(people), written_files(var))
        assert set(found) == {"reports/planted.md", "prefect/storage/planted"}, found
    finally:
        (var / "reports" / "planted.md").unlink()
        (var / "prefect" / "storage" / "planted").unlink()


def test_gateway_answers_never_echo_personal_data(demo: dict[str, Any]) -> None:
    """Errors and status views of the gateway, started on the demo's database, for requests that
    carry a synthetic citizen's data: none repeats a full name or ID."""
    env, port = demo["env"], free_port()
    gateway = subprocess.Popen([sys.executable, "-m", "lienthong.cli", "gateway", "--port", str(port)],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline and gateway.poll() is None, "gateway did not start"
            time.sleep(0.3)
        answers = _gateway_answers(base)
    finally:
        gateway.terminate()
        gateway.wait(30)
    sub = make_submission("lien-thong-khai-sinh", random.Random(77), datetime.now().astimezone())
    people: set[str] = set()
    _walk(sub.model_dump(mode="json"), None, people)
    people |= synthetic_people(demo["var"])
    statuses = {a["status"] for a in answers}
    assert {401, 422, 409, 202, 200} <= statuses, statuses
    found = [(a["what"], a["status"]) for a in answers if any(p in a["body"] for p in people)]
    assert not found, f"gateway answers repeating personal data: {found}"


def _gateway_answers(base: str) -> list[dict[str, Any]]:
    sub = make_submission("lien-thong-khai-sinh", random.Random(77), datetime.now().astimezone())
    good = sub.model_dump_json().encode()
    broken = sub.model_dump(mode="json")
    broken["applicant"]["citizen_id"] = broken["applicant"]["citizen_id"][:-1] + "X"  # not digits
    broken["child"]["date_of_birth"] = broken["mother"]["full_name"]  # a name where a date belongs
    broken_raw = json.dumps(broken, ensure_ascii=False).encode()
    answers = []
    http = httpx.Client(base_url=base, timeout=30)

    def post(what: str, body: bytes, key: str, secret: str = SECRET) -> httpx.Response:
        h = signed_headers("DVCQG", secret, "POST", "/v1/dossiers", body, idempotency_key=key)
        resp = http.post("/v1/dossiers", content=body, headers=h)
        answers.append({"what": what, "status": resp.status_code, "body": resp.text})
        return resp

    post("bad signature", good, "scan-1", secret="not-the-secret-0123456789")
    post("schema errors", broken_raw, "scan-2")
    accepted = post("accepted", good, "scan-3")
    other = make_submission("lien-thong-khai-sinh", random.Random(78), datetime.now().astimezone())
    post("idempotency conflict", other.model_dump_json().encode(), "scan-3")
    if accepted.status_code == 202:
        # The bare status answers its sender's signed request only; unsigned, it says nothing (401).
        url = httpx.URL(accepted.json()["status_url"])
        for what, headers in (("status view, unsigned", {}),
                              ("status view", signed_headers("DVCQG", SECRET, "GET", url.path, b""))):
            status = http.get(url, headers=headers)
            answers.append({"what": what, "status": status.status_code, "body": status.text})
    return answers
