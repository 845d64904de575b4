"""The dossier's timeline (steps, agencies, deadlines, verdicts) as markdown for operators.
No personal data: codes, agencies and times only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from lienthong.catalog import Procedure, get_catalog
from lienthong.db import session_scope
from lienthong.db.models import HandOver, StatusHistory, StepRow
from lienthong.db.store import get_row
from lienthong.dossier import Status

_VERDICT_VI = {"early": "Trước hạn", "on_time": "Đúng hạn", "late": "Quá hạn", None: "—"}


def _t(at: datetime | None) -> str:
    return at.strftime("%d/%m/%Y %H:%M") if at else "—"


def timeline_markdown(dossier_code: str) -> str:
    with session_scope() as s:
        row = get_row(s, dossier_code)
        proc = get_catalog().for_dossier(row)
        steps = s.execute(select(StepRow).where(StepRow.dossier_id == row.id).order_by(StepRow.id)).scalars().all()
        history = s.execute(select(StatusHistory).where(StatusHistory.dossier_id == row.id)
                            .order_by(StatusHistory.id)).scalars().all()
        handovers = s.execute(select(HandOver).where(HandOver.dossier_id == row.id)
                              .order_by(HandOver.id)).scalars().all()
        status = Status(row.status)
        lines = [
            f"# Hồ sơ {row.code}",
            f"**{proc.name}** ({row.procedure_code}, phiên bản {row.procedure_version})",
            "",
            _version_line(proc),
            f"- Trạng thái: **{int(status)} – {status.label_vi}**"
            + (f" (lý do: {row.reason})" if row.reason else ""),
            f"- Tiếp nhận: {_t(row.received_at)} · Hẹn trả: {_t(row.due_at)} · "
            f"Kết thúc xử lý: {_t(row.finished_at)}" + (" · **QUÁ HẠN**" if row.late else ""),
            "",
            "## Các bước xử lý",
            "| Bước | Cơ quan | Bắt đầu | Hạn | Hoàn thành | Kết quả |",
            "|---|---|---|---|---|---|",
        ]
        for st in steps:
            lines.append(f"| {st.action} | {st.agency} | {_t(st.started_at)} | {_t(st.due_at)} | "
                         f"{_t(st.finished_at)} | {st.status} · {_VERDICT_VI.get(st.verdict, st.verdict)} |")
        lines += _approvals(steps)
        lines += ["", "## Phiếu kiểm soát quá trình (bàn giao)", "| Giao | Nhận | Lúc | Đánh giá bước giao |",
                  "|---|---|---|---|"]
        for h in handovers:
            lines.append(f"| {h.from_agency} | {h.to_agency} | {_t(h.at)} | {_VERDICT_VI.get(h.verdict, h.verdict)} |")
        lines += ["", "## Lịch sử trạng thái", "| Lúc | Từ | Sang | Người thực hiện |", "|---|---|---|---|"]
        for change in history:
            lines.append(f"| {_t(change.at)} | {change.from_status or '—'} | {change.to_status} | {change.actor} |")
        return "\n".join(lines)


def _version_line(proc: Procedure) -> str:
    """Which version of the procedure the dossier follows: the one in force on its reception day."""
    until = f"{proc.effective_to:%d/%m/%Y}" if proc.effective_to else "nay"
    basis = "; ".join(f"{b.document} {b.article}".strip() for b in proc.legal_basis
                      if b.in_force(proc.effective_from))
    return (f"- Quy trình áp dụng: phiên bản {proc.version}, hiệu lực {proc.effective_from:%d/%m/%Y} – {until}"
            f" (theo ngày tiếp nhận); căn cứ: {basis}")


_DECISION_VI = {"approve": "Đồng ý ký duyệt", "refuse": "Từ chối", "supplement": "Yêu cầu bổ sung"}


def _approvals(steps: Sequence[StepRow]) -> list[str]:
    """Who approved (or refused, or asked for a supplement) which step, and when."""
    from lienthong.privacy import mask_ids_in_text
    from lienthong.routing import APPROVAL

    rows = []
    for st in steps:
        record = (st.outputs or {}).get(APPROVAL) or {}
        decisions = record.get("decisions") or []
        if record and not decisions:
            rows.append(f"| {st.action} | {record.get('required') or '—'} | — | đang chờ phê duyệt | — |")
        for d in decisions:
            at = datetime.fromisoformat(d["at"]) if d.get("at") else None
            why = mask_ids_in_text(str(d.get("reason") or "")) or "—"
            who = str(d.get("officer") or "—")
            rows.append(f"| {st.action} | {who} | {_t(at)} | {_DECISION_VI.get(d.get('decision'), d.get('decision'))}"
                        f" | {why} |")
    if not rows:
        return []
    return ["", "## Phê duyệt", "| Bước | Người quyết định | Lúc | Quyết định | Lý do |", "|---|---|---|---|---|",
            *rows]
