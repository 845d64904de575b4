"""Test dossiers, inserted as rows (no reception service needed): for the accountability tests,
and the paper components the digitization tests read."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from lienthong.clock import localize
from lienthong.db import session_scope
from lienthong.db.models import (
    ComponentRow,
    DossierRow,
    HandOver,
    StatusHistory,
    StepRow,
    SupplementRow,
)

PROCS = {
    "lien-thong-khai-sinh": ("2.002621", 3),
    "lien-thong-khai-tu": ("2.002913", 3),
    "chuyen-nhuong-dat": ("1.013831", 18),
}


def t(s: str) -> datetime:
    return localize(datetime.fromisoformat(s))


def make_dossier(
    session: Session,
    code: str,
    *,
    procedure_id: str = "chuyen-nhuong-dat",
    received_at: str,
    due_at: str | None,
    status: int = 4,
    finished_at: str | None = None,
    channel: str = "in_person",
    steps: list[dict[str, Any]] | None = None,
    components: list[dict[str, Any]] | None = None,
    supplements: list[tuple[str, str | None]] | None = None,
    history: list[tuple[int, str]] | None = None,
    hand_overs: list[dict[str, Any]] | None = None,
    payload: dict[str, Any] | None = None,
    clock_started_at: str | None = None,
    deliveries: dict[str, str] | None = None,
    options: dict[str, Any] | None = None,
) -> DossierRow:
    pcode, days = PROCS[procedure_id]
    rec = t(received_at)
    # The flow-run key ``uid`` arrived with the procedure engine; older schemas lack it.
    extra_cols = {"uid": uuid.uuid4().hex} if hasattr(DossierRow, "uid") else {}
    row = DossierRow(
        **extra_cols,
        code=code,
        unit_id=code.split("-")[0],
        procedure_id=procedure_id,
        procedure_code=pcode,
        procedure_version="test",
        time_limit_days=days,
        channel=channel,
        status=status,
        received_at=rec,
        clock_started_at=t(clock_started_at) if clock_started_at else rec,
        due_at=t(due_at) if due_at else None,
        finished_at=t(finished_at) if finished_at else None,
        late=False,
        owner_citizen_id="001203004567",
        options=options or {},
        payload=payload
        or {
            "applicant": {
                "full_name": "Nguyễn Văn An",
                "phone": "0912345678",
                "address": "12 Lê Lợi, phường Hạc Thành, Thanh Hóa",
                "citizen_id": "038203004567",
            },
            "procedure_code": pcode,
            "channel": channel,
            "received_at": rec.isoformat(),
        },
        deliveries=deliveries or {},
        created_at=rec,
        updated_at=rec,
    )
    session.add(row)
    session.flush()
    for st in steps or []:
        session.add(
            StepRow(
                ref=uuid.uuid4().hex,
                dossier_id=row.id,
                step_key=st["key"],
                agency=st["agency"],
                action=st.get("action", st["key"]),
                kind=st.get("kind", "agency"),
                time_limit_days=st.get("days", 1),
                status=st.get("status", "pending"),
                started_at=t(st["started_at"]),
                due_at=t(st["due_at"]),
                finished_at=t(st["finished_at"]) if st.get("finished_at") else None,
                verdict=st.get("verdict"),
                late=st.get("verdict") == "late",
                outputs=st.get("outputs", {}),
            )
        )
    for c in components or []:
        session.add(
            ComponentRow(
                dossier_id=row.id,
                code=c.get("code", "C"),
                name=c.get("name", "Giấy tờ"),
                file_ref=c.get("file_ref"),
                vault_address=c.get("vault_address"),
                paper=c.get("paper", False),
                digitized=c.get("digitized", False),
                reused=c.get("reused", False),
                from_national_vault=c.get("from_national_vault", False),
                meta={},
            )
        )
    for req, done in supplements or []:
        session.add(
            SupplementRow(
                dossier_id=row.id,
                phase="processing",
                requested_at=t(req),
                completed_at=t(done) if done else None,
                items=["Bản sao hợp đồng"],
            )
        )
    for status_to, at in history or []:
        session.add(
            StatusHistory(
                dossier_id=row.id,
                from_status=None,
                to_status=status_to,
                event="test",
                at=t(at),
                actor="test",
            )
        )
    for ho in hand_overs or []:
        session.add(
            HandOver(
                dossier_id=row.id,
                step_id=None,
                from_agency=ho["from"],
                to_agency=ho["to"],
                at=t(ho["at"]),
                verdict=ho.get("verdict"),
            )
        )
    session.flush()
    return row


def dossier_with_components(code: str, components: list[tuple[str, str | None, bool]],
                            received_at: str = "2026-03-10T09:00:00") -> list[int]:
    """A birth-registration dossier at reception (status 2) with ``(code, file reference, paper)``
    components, committed; returns the components' ids in the order given."""
    with session_scope() as s:
        row = make_dossier(
            s, code, procedure_id="lien-thong-khai-sinh", received_at=received_at, due_at=None, status=2,
            components=[{"code": c, "name": c, "file_ref": ref, "paper": paper} for c, ref, paper in components])
        s.flush()
        return [c.id for c in sorted(row.components, key=lambda c: c.id)]
