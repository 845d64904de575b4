"""Sample vault results for the tests and benchmarks: a commune's death extract (trích lục khai
tử, KQ.G15.000034) with synthetic data, built the same way wherever a result is needed without a
dossier behind it."""

from __future__ import annotations

from datetime import date

from lienthong.vault.prepare import ResultDraft


def death_extract_data(number: str, citizen_id: str) -> dict[str, str]:
    """The machine-readable data of a death extract (valid against its schema in config/)."""
    return {
        "so_trich_luc": number,
        "ho_ten": "Trần Văn Bình",
        "ngay_chet": "2026-03-05",
        "so_dinh_danh": citizen_id,
    }


def death_extract_draft(
    local_id: str,
    data: dict[str, str],
    pdf: bytes,
    *,
    dossier_seq: int,
    inputs: tuple[str, ...] = (),
) -> ResultDraft:
    """A draft of the death extract ``data`` under ``vault://UBND_XA/KQ.G15.000034/<local_id>/v1``,
    from the dossier numbered ``dossier_seq`` of 10 March 2026."""
    return ResultDraft(
        issuer="UBND_XA",
        result_code="KQ.G15.000034",
        name="Trích lục khai tử",
        local_id=local_id,
        data=data,
        owner_citizen_id=data["so_dinh_danh"],
        procedure_code="1.000656",
        source_dossier_code=f"000.00.06.H56-260310-{dossier_seq:04d}",
        source_step="khai_tu",
        issued_on=date(2026, 3, 10),
        issuing_body="Ủy ban nhân dân xã",
        signer="Công chức hộ tịch",
        number=data["so_trich_luc"],
        pdf=pdf,
        inputs=inputs,
    )
