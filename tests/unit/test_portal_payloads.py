"""National-portal payloads: faithful statuses, portal dates, honest reuse/digitization flags."""

from __future__ import annotations

from datetime import datetime

import pytest

from lienthong.clock import localize
from lienthong.db.models import (
    ComponentRow,
    DossierRow,
    ReappointmentRow,
    StatusHistory,
    StepRow,
    SupplementRow,
)
from lienthong.portal.payloads import (
    DossierBundle,
    PortalPayloadError,
    build,
    build_hoso,
    build_progress,
    portal_status,
)


def t(s: str) -> datetime:
    return localize(datetime.fromisoformat(s))


def bundle(status: int = 4, finished: str | None = None, **extra) -> DossierBundle:
    row = DossierRow(
        id=1,
        code="000.00.06.H56-260302-0001",
        unit_id="000.00.06.H56",
        procedure_id="chuyen-nhuong-dat",
        procedure_code="1.013831",
        procedure_version="2025-07-01",
        time_limit_days=18,
        channel="online",
        status=status,
        received_at=t("2026-03-02T09:05:07"),
        clock_started_at=t("2026-03-02T09:05:07"),
        due_at=t("2026-03-26T17:00"),
        finished_at=t(finished) if finished else None,
        late=False,
        owner_citizen_id="038203004567",
        options={},
        deliveries={},
        reason=None,
        payload={
            "applicant": {
                "full_name": "Phạm Minh Châu",
                "phone": "0912345678",
                "email": "chau@example.vn",
            },
            "transferee": {"full_name": "Đỗ Thị Hằng"},
        },
        created_at=t("2026-03-02T09:05:07"),
        updated_at=t("2026-03-02T09:05:07"),
    )
    return DossierBundle(row, **extra)


@pytest.mark.parametrize("status", range(1, 11))
def test_every_status_code_goes_out_unchanged(status):
    assert portal_status(status) == status


@pytest.mark.parametrize("status", [5, 6, 8])
def test_supplement_payment_and_stopped_are_never_reported_as_finished(status):
    hoso = build_hoso(bundle(status, finished="2026-03-10T10:00" if status == 8 else None))
    assert hoso["TrangThaiHoSo"] == status != 9


def test_status_outside_the_portal_codes_is_refused():
    with pytest.raises(PortalPayloadError):
        portal_status(11)


def test_dates_are_local_yyyymmddhhmmss():
    hoso = build_hoso(bundle(9, finished="2026-03-20T16:30:00"))
    assert hoso["NgayNopHoSo"] == "20260302090507"
    assert hoso["NgayHenTra"] == "20260326170000"
    assert hoso["NgayKetThucXuLy"] == "20260320163000"
    assert hoso["NgayTuChoi"] == ""
    assert hoso["KenhThucHien"] == 2 and hoso["MaTTHC"] == "1.013831"


def test_a_finished_status_without_an_end_time_is_refused_rather_than_invented():
    with pytest.raises(PortalPayloadError):
        build_hoso(bundle(9, finished=None))


def test_refusal_carries_the_refusal_date():
    hoso = build_hoso(bundle(8, finished="2026-03-05T08:00"))
    assert hoso["NgayTuChoi"] == hoso["NgayKetThucXuLy"] == "20260305080000"


def test_reuse_and_digitization_flags_follow_the_component_rows():
    comps = [
        ComponentRow(
            id=11,
            code="GCN",
            name="Giấy chứng nhận",
            reused=True,
            from_national_vault=True,
            digitized=False,
            vault_address="vault://KQ.G10.001147/abc",
            meta={"result_code": "KQ.G10.001147"},
        ),
        ComponentRow(
            id=12,
            code="HDCN",
            name="Hợp đồng",
            reused=False,
            from_national_vault=False,
            digitized=True,
            file_ref="scan/hdcn.pdf",
            meta={},
        ),
        ComponentRow(
            id=13,
            code="DDK",
            name="Đơn",
            reused=False,
            from_national_vault=False,
            digitized=False,
            file_ref=None,
            meta={},
        ),
    ]
    hoso = build_hoso(bundle(4, components=comps))
    flags = {
        d["MaThanhPhanHoSo"]: (
            d["DuocSoHoa"],
            d["DuocTaiSuDung"],
            d["DuocLayTuKhoDMQG"],
            d["MaKetQuaThayThe"],
        )
        for d in hoso["TaiLieuNop"]
    }
    assert flags == {"GCN": (0, 1, 1, "KQ.G10.001147"), "HDCN": (1, 0, 0, ""), "DDK": (0, 0, 0, "")}
    assert hoso["HoSoCoThanhPhanSoHoa"] == 1
    assert build_hoso(bundle(4, components=comps[2:]))["HoSoCoThanhPhanSoHoa"] == 0


def test_owner_identity_type_and_the_placeholder_is_never_sent():
    b = bundle()
    assert build_hoso(b)["DinhDanhCHS"] == [{"LoaiDinhDanh": 1, "SoDinhDanh": "038203004567"}]
    b.row.owner_citizen_id = "000000001"
    assert build_hoso(b)["DinhDanhCHS"] == []
    b.row.owner_citizen_id = "123456789"
    assert build_hoso(b)["DinhDanhCHS"] == [{"LoaiDinhDanh": 2, "SoDinhDanh": "123456789"}]


def test_reappointment_keeps_both_appointment_dates_on_the_supplement_record():
    sup = SupplementRow(
        id=1,
        dossier_id=1,
        phase="processing",
        requested_at=t("2026-03-03T10:00"),
        completed_at=t("2026-03-04T10:00"),
        items=["Bản sao hợp đồng"],
    )
    re_row = ReappointmentRow(
        dossier_id=1,
        original_due=t("2026-03-26T17:00"),
        new_due=t("2026-03-30T17:00"),
        reason="x",
        recorded_at=t("2026-03-25T09:00"),
        agency="THUE",
        approved_at=t("2026-03-25T10:00"),
    )
    hoso = build_hoso(bundle(4, supplements=[sup], reappointment=re_row))
    rec = hoso["DanhSachHoSoBoSung"][0]
    assert (rec["NgayHenTraTruoc"], rec["NgayHenTraMoi"]) == ("20260326170000", "20260330170000")
    assert rec["NoiDungBoSung"] == "Bản sao hợp đồng"


def test_progress_records_follow_history_and_steps_in_time_order_with_faithful_statuses():
    history = [
        StatusHistory(to_status=1, at=t("2026-03-02T09:05"), actor="online", event="submit"),
        StatusHistory(to_status=2, at=t("2026-03-02T09:05:07"), actor="MOT_CUA", event="receive"),
        StatusHistory(
            to_status=4, at=t("2026-03-02T09:06"), actor="MOT_CUA", event="start_processing"
        ),
        StatusHistory(to_status=6, at=t("2026-03-06T10:00"), actor="THUE", event="request_payment"),
        StatusHistory(
            to_status=4, at=t("2026-03-09T10:00"), actor="THUE", event="payment_received"
        ),
        StatusHistory(to_status=9, at=t("2026-03-20T16:30"), actor="MOT_CUA", event="resolve"),
    ]
    steps = [
        StepRow(
            step_key="tham_dinh",
            agency="VPDKDD",
            action="Kiểm tra hồ sơ",
            kind="agency",
            started_at=t("2026-03-02T09:06"),
            due_at=t("2026-03-09T17:00"),
            finished_at=t("2026-03-05T11:00"),
            verdict="early",
            status="done",
        )
    ]
    records = build_progress(bundle(9, finished="2026-03-20T16:30", history=history, steps=steps))
    assert [r["TrangThai"] for r in records] == [2, 4, 4, 4, 6, 4, 9]
    assert records[0]["NoiDungXuLy"] == "Tiếp nhận hồ sơ"
    assert records[-1]["NoiDungXuLy"] == "Kết thúc xử lý hồ sơ"
    assert "trước hạn" in records[3]["NoiDungXuLy"]
    assert all(len(r["NguoiXuLy"]) <= 50 for r in records)


def test_content_hash_changes_only_when_the_content_does():
    a, b = build(bundle(4)), build(bundle(4))
    assert a.hoso_hash == b.hoso_hash and a.progress_hash == b.progress_hash
    c = bundle(4)
    c.row.due_at = t("2026-03-27T17:00")
    assert build(c).hoso_hash != a.hoso_hash
