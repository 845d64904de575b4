"""Stored dossiers on PostgreSQL: validation rounds, supplements, and the daily batch report."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from lienthong.clock import VN_TZ
from lienthong.db import session_scope
from lienthong.db.models import ComponentRow, DossierRow, StepRow, SupplementRow
from lienthong.dossier import Status
from lienthong.quality.daily import daily_report
from lienthong.quality.dossiers import apply_supplement, validate_stored_dossier
from lienthong.reception import receive
from samples.dossiers import make_submission

pytestmark = pytest.mark.integration

DAY = datetime(2025, 9, 10, 8, 0, tzinfo=VN_TZ)


def _receive(procedure_id: str, seed: int, minutes: int = 0, **kw: object) -> str:
    at = DAY + timedelta(minutes=minutes)
    s = make_submission(procedure_id, random.Random(seed), at, **kw)  # type: ignore[arg-type]
    return receive(s).dossier_code


def test_stored_valid_dossier_passes_in_round_one(db: str) -> None:
    code = _receive("lien-thong-khai-sinh", 1)
    result = validate_stored_dossier(code)
    assert result == {"ok": True, "lines_vi": [], "flags": [], "failed_rules": [], "flags_vi": [],
                      "round": 1, "second_round": False}


def test_failure_after_a_supplement_request_is_a_second_round(db: str) -> None:
    code = _receive("lien-thong-khai-tu", 2, defects=["death_after_registration"])
    first = validate_stored_dossier(code)
    assert not first["ok"] and first["round"] == 1 and not first["second_round"]
    with session_scope() as session:
        row = session.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one()
        session.add(SupplementRow(dossier_id=row.id, phase="reception", requested_at=DAY,
                                  items=first["lines_vi"]))
    second = validate_stored_dossier(code)
    assert second["round"] == 2 and second["second_round"]
    assert second["lines_vi"] == first["lines_vi"]


def test_applied_supplement_is_stored_and_the_dossier_then_passes(db: str) -> None:
    code = _receive("lien-thong-khai-sinh", 3, defects=["missing_component"])
    assert validate_stored_dossier(code)["failed_rules"] == ["birth.component.GCS"]
    apply_supplement(code, components=[{"code": "GCS", "name": "Giấy chứng sinh",
                                        "file": "uploads/gcs-bo-sung.pdf"}])
    assert validate_stored_dossier(code)["ok"]
    with session_scope() as session:
        codes = session.execute(select(ComponentRow.code).join(DossierRow).where(
            DossierRow.code == code)).scalars().all()
    assert "GCS" in codes


def test_daily_batch_reports_validity_shares_duplicates_and_portal_readiness(
        db: str, tmp_path: Path) -> None:
    valid = [_receive("lien-thong-khai-sinh", i, minutes=i) for i in range(4)]
    _receive("lien-thong-khai-tu", 10, minutes=20, defects=["death_after_registration"])
    _receive("chuyen-nhuong-dat", 11, minutes=21, defects=["transfer_to_self"])
    late = _receive("lien-thong-khai-sinh", 12, minutes=22, defects=["late_registration"])
    paper = _receive("chuyen-nhuong-dat", 13, minutes=23, paper_components=True)
    # The same person files the same land transfer twice: a duplicate across open dossiers.
    dup_a = _receive("chuyen-nhuong-dat", 14, minutes=24)
    dup_b = _receive("chuyen-nhuong-dat", 14, minutes=25)
    _receive("lien-thong-khai-sinh", 15, minutes=60 * 24)  # the next day: not in this batch
    with session_scope() as session:
        rows = {r.code: r for r in session.execute(select(DossierRow)).scalars()}
        first = rows[valid[0]]
        comps = session.execute(select(ComponentRow).where(
            ComponentRow.dossier_id == first.id)).scalars().all()
        comps[0].reused = True
        comps[1].digitized = True
        comps[1].confidence = 0.4  # a low-confidence extraction: flagged for manual review
        comps[1].meta = {"owner_citizen_id": first.payload["mother"]["citizen_id"],
                         "document_name": comps[1].name, "file_hash": "c" * 64}
        first.status = int(Status.RESOLVED)
        session.add(StepRow(ref=f"{first.code}/khai_sinh", dossier_id=first.id,
                            step_key="khai_sinh", agency="UBND_XA", action="Đăng ký khai sinh",
                            time_limit_days=0, status="done", finished_at=DAY + timedelta(hours=2),
                            outputs={"personal_id": "079325000123", "birth_extract": {}}))
    report = daily_report(DAY.date(), docs_dir=tmp_path / "docs")

    assert report.dossiers == 10
    assert (report.valid, report.invalid, report.flagged) == (8, 2, 1)
    assert report.rule_failures["death.date_of_death_not_after_registration"] == 1
    assert report.rule_failures["land.transferor_differs_from_transferee"] == 1
    assert report.rule_failures["birth.late_registration"] == 1
    assert report.rule_failures["digitized.low_confidence"] == 1
    # The birth extract came back empty: the result is published without data.
    assert report.results_checked == 1 and report.rule_failures["results.data_present"] == 1
    assert report.results_share == 0.0
    assert report.components > 0 and report.reused_share == 1 / report.components
    assert report.digitized_share == 1 / 10
    assert [d["dossiers"] for d in report.duplicates] == [sorted([dup_a, dup_b])]
    assert "*" in report.duplicates[0]["citizen_id"]
    # Land dossiers on paper carry no file yet; the resolved one lacks its end time.
    assert report.portal_missing == {"TaiLieuNop": 1, "NgayKetThucXuLy": 1}
    assert report.portal_ready == 8
    assert all(0 <= v <= 1 for v in report.completeness.values())
    assert report.docs_index is not None and report.docs_index.exists()
    assert late and paper


def test_data_docs_hold_no_personal_data(db: str, tmp_path: Path) -> None:
    codes = [_receive("lien-thong-khai-sinh", i, minutes=i,
                      defects=["citizen_id_sex_mismatch"] if i % 2 else ()) for i in range(4)]
    daily_report(DAY.date(), docs_dir=tmp_path / "docs")
    with session_scope() as session:
        payloads = [r.payload for r in session.execute(select(DossierRow)).scalars()]
    secrets = {p["applicant"]["citizen_id"] for p in payloads} | {
        p["mother"]["full_name"] for p in payloads}
    html = "\n".join(f.read_text(encoding="utf-8", errors="ignore")
                     for f in (tmp_path / "docs").rglob("*.html"))
    assert "header.citizen_id.sex.applicant" in html or "citizen_id" in html
    assert codes and not [s for s in secrets if s in html]


def test_a_component_handed_in_again_replaces_its_file_once(db: str) -> None:
    code = _receive("lien-thong-khai-sinh", 4)
    with session_scope() as session:
        gcs = session.execute(select(ComponentRow).join(DossierRow).where(
            DossierRow.code == code, ComponentRow.code == "GCS")).scalar_one()
        old_ref = gcs.file_ref
        gcs.status, gcs.digitized, gcs.confidence = "digitized", True, 0.9
        gcs.meta = {"digitize": {"file_ref": old_ref, "fields": {"so": {"value": "1"}}}}
    given = [{"code": "GCS", "name": "Giấy chứng sinh", "file": "uploads/gcs-ro-net.jpg", "paper": True}]
    for _ in range(2):  # a resumed run applies its supplement again: the second time changes nothing
        apply_supplement(code, components=given)
    with session_scope() as session:
        rows = session.execute(select(ComponentRow).join(DossierRow).where(
            DossierRow.code == code, ComponentRow.code == "GCS")).scalars().all()
    assert len(rows) == 1
    (row,) = rows
    assert (row.file_ref, row.status, row.digitized, row.confidence, row.paper) == (
        "uploads/gcs-ro-net.jpg", "received", False, None, True)
    assert "digitize" not in row.meta
    (earlier,) = row.meta["replaced"]
    assert earlier["file_ref"] == old_ref and earlier["digitize"]["fields"]["so"]["value"] == "1"
