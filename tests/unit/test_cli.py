import subprocess
import sys

import pytest

from lienthong.cli import FEATURES, build_parser, main


def test_deadline_prints_one_iso_line_with_the_vietnam_offset(capsys):
    assert main(["deadline", "--working-days", "3", "--received", "2026-04-29T16:00"]) == 0
    assert capsys.readouterr().out == "2026-05-07T17:00:00+07:00\n"


def test_deadline_of_a_procedure_restarts_after_a_supplement(capsys):
    main(["deadline", "--procedure", "2.002621", "--received", "2026-04-29T16:00",
          "--restart-at", "2026-05-05T10:00"])
    assert capsys.readouterr().out.strip() == "2026-05-08T17:00:00+07:00"


def test_an_unknown_procedure_is_a_clear_error_in_both_languages(capsys):
    assert main(["deadline", "--procedure", "9.999999", "--received", "2026-04-29T16:00"]) == 2
    err = capsys.readouterr().err
    assert "no procedure '9.999999'" in err and "không có trong danh mục" in err


def test_every_feature_command_is_registered_by_its_module():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for commands in FEATURES.values():
        assert set(commands) <= set(sub.choices)


@pytest.mark.parametrize("argv", [["deadline", "--help"], ["digitize", "--help"]])
def test_a_command_imports_only_the_module_that_owns_it(argv):
    code = ("import sys; from lienthong.cli import build_parser; build_parser(sys.argv[1:]);"
            "print(sorted(m for m in sys.modules if m in " + repr(list(FEATURES)) + "))")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
    owners = [m for m, cmds in FEATURES.items() if argv[0] in cmds]
    assert out.stdout.strip() == repr(sorted(owners))
