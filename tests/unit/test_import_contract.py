"""The import contract of `make lint` (pyproject.toml, [tool.importlinter]) holds on the tree, and
fails when a copy of the tree gets a forbidden import or a cycle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lienthong", "flows", "tasks", "infra", "samples", "bench", "tests")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(dest: Path) -> Path:
    """The Python sources of every root package and the pyproject, nothing else."""
    for pkg in PACKAGES:
        for src in (ROOT / pkg).rglob("*.py"):
            if "__pycache__" in src.parts:
                continue
            target = dest / src.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    shutil.copyfile(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=120)


def _append(path: Path, line: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_tree(tmp_path_factory.mktemp("tree"))


def test_the_tree_keeps_the_contract(pristine: Path) -> None:
    run = _lint(pristine)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract", "shown"),
    [
        # The core reaching for the orchestration layer.
        ("lienthong/dossier.py", "import infra.local", "the core imports none of",
         "lienthong.dossier -> infra.local"),
        # The core importing Prefect.
        ("lienthong/routing.py", "import prefect", "the core imports none of", "lienthong.routing -> prefect"),
        # The domain reaching up to an application.
        ("lienthong/codes.py", "import lienthong.gateway", "the core's layers", "lienthong.codes -> lienthong.gateway"),
        # A task importing a flow.
        ("tasks/quality.py", "import flows.portal_sync", "infra above flows above tasks and samples",
         "tasks.quality -> flows.portal_sync"),
        # A benchmark importing the test suite.
        ("bench/common.py", "import tests.conftest", "bench and tests do not import each other",
         "bench.common -> tests.conftest"),
        # A cycle: codes.py is imported by reception.py.
        ("lienthong/codes.py", "import lienthong.reception", "no import cycles", ".codes -> .reception"),
    ],
    ids=["core-imports-infra", "core-imports-prefect", "domain-imports-application", "task-imports-flow",
         "bench-imports-tests", "cycle"],
)
def test_a_bad_import_breaks_the_contract(pristine: Path, tmp_path: Path, module: str, line: str,
                                          contract: str, shown: str) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(pristine, tree)
    _append(tree / module, line)
    run = _lint(tree)
    assert run.returncode != 0
    broken = run.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken and shown in broken, run.stdout
