"""Digitizing a dossier's paper components on PostgreSQL: rows updated, bad files rejected with a
Vietnamese reason (the dossier kept), weak scans sent to review, the operator's review applied."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect.logging import disable_run_logger

from lienthong.db import session_scope
from lienthong.db.models import ComponentRow, DossierRow
from lienthong.digitize import components as core
from lienthong.settings import reset_settings
from samples.forms import Degradation, birth_certificate, death_notice
from tasks.digitize import (
    ReviewDecision,
    apply_review_decision,
    digitize_component,
    digitize_dossier,
    review_description,
    review_input,
)
from tests.integration.accountability_factory import dossier_with_components

pytestmark = pytest.mark.integration
CODE = "000.00.06.H56-250301-0007"


@pytest.fixture
def var_dir(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(tmp_path))
    reset_settings()
    (tmp_path / "uploads").mkdir()
    return tmp_path


def _row(cid: int) -> ComponentRow:
    with session_scope() as s:
        row = s.get(ComponentRow, cid)
        assert row is not None
        s.expunge(row)
        return row


def test_dossier_components_are_digitized_and_bad_files_rejected_for_supplement(
    var_dir: Path,
) -> None:
    up = var_dir / "uploads"
    gcs = birth_certificate(71, level=0.6)
    gcs.save(up / "gcs.jpg")
    (up / "empty.pdf").write_bytes(b"")
    ids = dossier_with_components(CODE,
        [
            ("GCS", "uploads/gcs.jpg", True),
            ("GTCT", "uploads/empty.pdf", True),
            ("GBT", "../../etc/passwd", True),
            ("TK01", None, False),
        ]
    )
    with disable_run_logger():
        summary = digitize_dossier.fn(CODE)
    good, empty, traversal, form = ids
    assert summary["digitized"] == [good]
    assert {r["component_id"] for r in summary["rejected"]} == {empty, traversal}
    assert {r["component_id"] for r in summary["needs_review"]} == {empty, traversal}
    row = _row(good)
    assert row.digitized and row.status == "digitized" and row.confidence > 80
    meta = row.meta["digitize"]
    assert meta["fields"]["mother_citizen_id"]["value"] == gcs.fields["mother_citizen_id"]
    assert Path(meta["outputs"]["pdf"]).parent == var_dir / "digitized" / CODE
    assert Path(meta["outputs"]["pdf"]).name == f"GCS-{good}.pdf"
    bad = _row(empty)
    assert bad.status == "rejected" and not bad.digitized
    assert "rỗng" in bad.meta["supplement_reason"]
    assert _row(traversal).meta["digitize"]["error"]["error"] == "unsafe_file_name"
    assert _row(form).status == "received"
    with session_scope() as s:
        assert s.get(DossierRow, _row(good).dossier_id) is not None  # the dossier is kept
    with disable_run_logger():  # a re-run (after a suspend) does nothing twice
        again = digitize_dossier.fn(CODE)
    assert again["components"] == []


def test_weak_scan_waits_for_an_operator_who_corrects_a_field(var_dir: Path) -> None:
    gbt = death_notice(72, Degradation(blur_radius=5.5, noise_sigma=4, jpeg_quality=30))
    gbt.save(var_dir / "uploads" / "gbt.jpg")
    (cid,) = dossier_with_components(CODE, [("GBT", str(var_dir / "uploads" / "gbt.jpg"), True)])
    with disable_run_logger():
        outcome = digitize_component.fn(cid)
    assert outcome["status"] == "needs_review"
    assert _row(cid).status == "needs_review" and not _row(cid).digitized

    form_model = review_input(cid)
    assert issubclass(form_model, ReviewDecision)
    md = review_description(core.component_review(cid))
    assert "Kiểm tra số hóa" in md and "Trang 1" in md
    assert gbt.fields["citizen_id"] not in md  # ID numbers are masked in what Prefect stores

    decision = ReviewDecision(
        confirmed=True, fields={"number": gbt.fields["number"]}, note="đã đối chiếu"
    )
    with disable_run_logger():
        result = apply_review_decision.fn(cid, decision)
    row = _row(cid)
    assert result["status"] == "digitized" and row.digitized
    assert row.meta["digitize"]["fields"]["number"]["value"] == gbt.fields["number"]
    assert row.meta["digitize"]["review"]["note"] == "đã đối chiếu"


def test_operator_can_refuse_an_unreadable_scan_for_supplement(var_dir: Path) -> None:
    birth_certificate(73, level=0.5).save(var_dir / "uploads" / "g.jpg")
    (cid,) = dossier_with_components(CODE, [("GCS", "uploads/g.jpg", True)])
    core.digitize_components([cid])
    core.apply_review(cid, confirmed=False, reject=True, note="Thiếu trang 2")
    row = _row(cid)
    assert row.status == "rejected" and row.meta["supplement_reason"] == "Thiếu trang 2"


def test_confirming_a_refused_file_leaves_it_refused_for_supplement(var_dir: Path) -> None:
    (var_dir / "uploads" / "empty.pdf").write_bytes(b"")
    (cid,) = dossier_with_components(CODE, [("GCS", "uploads/empty.pdf", True)])
    core.digitize_components([cid])
    [question] = core.awaiting_review(CODE)
    assert question["component_id"] == cid
    core.apply_review(cid, confirmed=True)  # nothing was read from the file to confirm
    row = _row(cid)
    assert row.status == "rejected" and not row.digitized
    assert "rỗng" in row.meta["supplement_reason"]
    assert row.meta["digitize"]["review"]["reject"] is True
    assert core.awaiting_review(CODE) == []  # answered: not asked again


def test_backlog_lists_dossiers_with_pending_paper_components(var_dir: Path) -> None:
    birth_certificate(74, level=0.5).save(var_dir / "uploads" / "g.jpg")
    dossier_with_components(CODE, [("GCS", "uploads/g.jpg", True)])
    assert core.dossiers_with_pending() == [CODE]
    core.digitize_dossier(CODE)
    assert core.dossiers_with_pending() == []
