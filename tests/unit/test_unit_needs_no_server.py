"""tests/unit runs without PostgreSQL, Prefect, S3 or a browser: no unit test asks for a fixture
that starts or needs one (those tests belong in integration/, flows/ or ui/)."""

from __future__ import annotations

import ast
from pathlib import Path

# The fixtures of tests/**/conftest.py that need a server.
SERVER_FIXTURES = {"db", "pg_url", "pg_scratch", "prefect_api", "prefect_server", "prefect_pg",
                   "prefect_ui", "moto_url", "services", "browser"}


def _asked(tree: ast.AST) -> set[str]:
    asked: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            asked |= {a.arg for a in node.args.args + node.args.kwonlyargs}
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "usefixtures"):
            asked |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return asked


def test_no_unit_test_asks_for_a_server() -> None:
    here = Path(__file__).parent
    found = {p.name: sorted(_asked(ast.parse(p.read_text(encoding="utf-8"))) & SERVER_FIXTURES)
             for p in sorted(here.glob("*.py"))}
    assert {name: f for name, f in found.items() if f} == {}


def test_the_check_sees_a_server_fixture() -> None:
    code = "import pytest\n@pytest.mark.usefixtures('prefect_api')\ndef test_a(db, tmp_path): pass\n"
    assert _asked(ast.parse(code)) & SERVER_FIXTURES == {"db", "prefect_api"}
