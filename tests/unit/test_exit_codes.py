"""One table of exit statuses for every ``lienthong`` command (lienthong.errors.ExitCode), as the
README documents it; typed errors end a command with their own."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

import lienthong.cli as cli
from lienthong.errors import ExitCode, LienThongError, UnknownProcedure
from lienthong.vault.errors import AccessDenied, ResultNotFound

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_documents_every_exit_code_and_nothing_else() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", section, re.M)
    assert [(int(v), n) for v, n in rows] == [(c.value, c.name) for c in ExitCode]


def test_help_lists_the_exit_codes() -> None:
    assert "3 input file" in cli.build_parser(["deadline"]).format_help()


def _raising(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> int:
    def handler(args: argparse.Namespace) -> int:
        raise exc

    monkeypatch.setattr(cli, "_deadline", handler)
    return cli.main(["deadline", "--working-days", "1", "--received", "2026-04-29T10:00"])


@pytest.mark.parametrize(("exc", "status"), [
    (UnknownProcedure("no procedure 'x'"), ExitCode.NOT_FOUND),
    (ResultNotFound("no result"), ExitCode.NOT_FOUND),
    (AccessDenied("not yours"), ExitCode.ACCESS_DENIED),
    (LienThongError("refused"), ExitCode.REFUSED),
    (ConnectionRefusedError("connection refused"), ExitCode.UNAVAILABLE),
    (KeyboardInterrupt(), ExitCode.INTERRUPTED),
])
def test_a_command_stopped_by_an_error_exits_with_the_errors_code(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], exc: BaseException,
        status: ExitCode) -> None:
    assert _raising(monkeypatch, exc) == status


def test_an_unexpected_error_prints_its_traceback_and_exits_internal(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert _raising(monkeypatch, RuntimeError("a bug")) == ExitCode.INTERNAL
    assert "Traceback" in capsys.readouterr().err


def test_a_wrong_command_line_exits_bad_args() -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["deadline", "--working-days", "x", "--received", "2026-04-29T10:00"])
    assert stop.value.code == ExitCode.BAD_ARGS


def test_validate_and_digitize_mean_the_same_by_a_bad_input_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "scan.pdf"
    empty.write_bytes(b"")
    assert cli.main(["validate", str(empty)]) == ExitCode.INPUT_FILE
    assert cli.main(["digitize", str(empty), "--out", str(tmp_path / "out"), "--no-progress"]) \
        == ExitCode.INPUT_FILE
    assert "empty_file" in capsys.readouterr().out
