"""``lienthong sample-dossier`` and ``lienthong validate``: output and exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from lienthong.errors import ExitCode
from lienthong.payloads import Submission
from lienthong.quality.cli import register
from samples.cli import register as register_samples


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lienthong")
    sub = parser.add_subparsers(required=True)
    register(sub)
    register_samples(sub)
    args = parser.parse_args(argv)
    return int(args.handler(args))


def _sample(capsys: pytest.CaptureFixture[str], procedure: str, seed: int = 3) -> dict:
    assert _run(["sample-dossier", "--procedure", procedure, "--seed", str(seed),
                 "--received-at", "2025-09-10T09:30:00+07:00"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("procedure", ["lien-thong-khai-sinh", "2.002622", "chuyen-nhuong-dat"])
def test_sample_dossier_prints_a_valid_payload_that_validates_silently(
        procedure: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    payload = _sample(capsys, procedure)
    Submission.model_validate(payload)
    path = tmp_path / "dossier.json"
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    assert _run(["validate", str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_same_seed_prints_the_same_dossier(capsys: pytest.CaptureFixture[str]) -> None:
    assert _sample(capsys, "lien-thong-khai-tu", 9) == _sample(capsys, "lien-thong-khai-tu", 9)
    assert _sample(capsys, "lien-thong-khai-tu", 9) != _sample(capsys, "lien-thong-khai-tu", 10)


def test_invalid_payload_exits_1_with_one_vietnamese_line_per_failing_rule(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    payload = _sample(capsys, "lien-thong-khai-sinh")
    payload["birth_certificate"]["child_sex"] = (
        "female" if payload["child"]["sex"] == "male" else "male")
    payload["applicant"]["citizen_id"] = "000000001"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    assert _run(["validate", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Số định danh cá nhân của người nộp hồ sơ: là số giả")
    assert lines[1].startswith("Giới tính của trẻ: khác giới tính ghi trên Giấy chứng sinh")
    assert _run(["validate", "--engine", "plain", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == lines


def test_not_json_exits_3_with_a_clear_message(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("{procedure_code: 2.002621", encoding="utf-8")
    assert _run(["validate", str(path)]) == ExitCode.INPUT_FILE
    captured = capsys.readouterr()
    assert captured.out == "" and "not JSON" in captured.err


def test_missing_header_exits_3_naming_the_missing_keys(capsys: pytest.CaptureFixture[str],
                                                        tmp_path: Path) -> None:
    payload = _sample(capsys, "chuyen-nhuong-dat")
    del payload["received_at"], payload["channel"]
    path = tmp_path / "noheader.json"
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    assert _run(["validate", str(path)]) == ExitCode.INPUT_FILE
    assert "header lacks received_at, channel" in capsys.readouterr().err


def test_header_of_the_wrong_type_exits_3_without_echoing_personal_data(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    payload = _sample(capsys, "chuyen-nhuong-dat")
    payload["received_at"] = "hôm qua"
    payload["applicant"]["sex"] = payload["applicant"]["citizen_id"]
    path = tmp_path / "wrongtype.json"
    path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    assert _run(["validate", str(path)]) == ExitCode.INPUT_FILE
    err = capsys.readouterr().err
    assert "received_at" in err and payload["applicant"]["citizen_id"] not in err
