import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cli import FEATURES as INSTALLED
from infra.cli import main as installed_main
from lienthong.cli import FEATURES, build_parser, main
from lienthong.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def test_deadline_prints_one_iso_line_with_the_vietnam_offset(capsys):
    assert main(["deadline", "--working-days", "3", "--received", "2026-04-29T16:00"]) == 0
    assert capsys.readouterr().out == "2026-05-07T17:00:00+07:00\n"


def test_deadline_of_a_procedure_restarts_after_a_supplement(capsys):
    main(["deadline", "--procedure", "2.002621", "--received", "2026-04-29T16:00",
          "--restart-at", "2026-05-05T10:00"])
    assert capsys.readouterr().out.strip() == "2026-05-08T17:00:00+07:00"


def test_an_unknown_procedure_is_a_clear_error_in_both_languages(capsys):
    assert main(["deadline", "--procedure", "9.999999", "--received", "2026-04-29T16:00"]) == ExitCode.NOT_FOUND
    err = capsys.readouterr().err
    assert "no procedure '9.999999'" in err and "không có trong danh mục" in err


def _commands(parser) -> set[str]:
    return set(next(a for a in parser._actions if a.dest == "command").choices)


def test_every_feature_command_is_registered_by_its_module():
    core = _commands(build_parser())
    installed = _commands(build_parser(features=INSTALLED))
    for commands in FEATURES.values():
        assert set(commands) <= core
    for commands in INSTALLED.values():
        assert set(commands) <= installed


def test_orchestration_and_sample_commands_are_outside_the_core():
    outer = {"serve", "demo", "prefect-server", "relay", "sample-dossier"}
    assert not outer & _commands(build_parser())
    assert outer <= _commands(build_parser(features=INSTALLED))


def test_the_installed_command_is_the_composition():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'lienthong = "infra.cli:main"' in text


def test_every_documented_command_exists():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    said = {m for p in docs for m in re.findall(r"(?:`|\$ )lienthong ([a-z][a-z-]*)", p.read_text("utf-8"))}
    assert {"demo", "sample-dossier", "validate", "deadline"} <= said
    assert said <= _commands(build_parser(features=INSTALLED))


def test_the_installed_command_runs_a_core_command(capsys):
    assert installed_main(["deadline", "--working-days", "3", "--received", "2026-04-29T16:00"]) == 0
    assert capsys.readouterr().out == "2026-05-07T17:00:00+07:00\n"


@pytest.mark.parametrize("argv", [["deadline", "--help"], ["digitize", "--help"], ["sample-dossier", "-h"]])
def test_a_command_imports_only_the_module_that_owns_it(argv):
    features = {m: c for m, c in INSTALLED.items() if m != "infra.cli"}
    code = ("import sys; from infra.cli import FEATURES; from lienthong.cli import build_parser; "
            "build_parser(sys.argv[1:], FEATURES);"
            "print(sorted(m for m in sys.modules if m in " + repr(list(features)) + "))")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    owners = [m for m, cmds in features.items() if argv[0] in cmds]
    assert out.stdout.strip() == repr(sorted(owners))
