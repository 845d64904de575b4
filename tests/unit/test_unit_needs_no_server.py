"""tests/unit runs without PostgreSQL, Prefect, a process topology or a browser: pytest's own
collection, with the markers tests/conftest.py adds from the fixtures a test uses (directly or
through other fixtures), finds no unit test that needs one (those belong in integration/, flows/,
faults/ or ui/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NEEDS_A_SERVER = "postgres or prefect or topology or browser"
# An integration test module: the collection must see that its tests need a server, or the check
# below would pass for nothing.
WITNESS = "tests/integration/test_reception.py"


def test_no_unit_test_needs_a_server() -> None:
    run = subprocess.run([sys.executable, "-m", "pytest", "tests/unit", WITNESS, "--collect-only", "-q",
                          "-p", "no:cacheprovider", "-m", NEEDS_A_SERVER],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    needing = [line for line in run.stdout.splitlines() if "::" in line]
    assert any(t.startswith(WITNESS) for t in needing), run.stdout
    assert [t for t in needing if t.startswith("tests/unit/")] == []
