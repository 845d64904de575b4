"""What the citizen sees behind the status link: the dossier's status, appointment, steps with
their agencies, what is missing if a supplement is asked, and where to collect the result.

No personal data: no name, no ID number, no address; supplement lines and reasons pass through
:func:`lienthong.privacy.mask_ids_in_text`. The page is plain HTML with its CSS inline (no script),
large type and touch targets, one column: a phone and the desk's touch screen read it alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lienthong.db.models import DossierRow, ReappointmentRow, StepRow, SupplementRow
from lienthong.dossier import Status
from lienthong.privacy import mask_ids_in_text

STEP_LABELS = {"pending": "Chờ xử lý", "submitted": "Đang xử lý", "waiting": "Đang xử lý", "done": "Đã xong",
               "refused": "Từ chối", "skipped": "Không cần thực hiện"}
CHANNEL_LABELS = {"in_person": "Trực tiếp", "online": "Trực tuyến", "postal": "Qua bưu chính"}


@dataclass
class StepLine:
    agency: str
    action: str
    state: str
    label: str
    due_at: datetime | None
    finished_at: datetime | None


@dataclass
class CitizenView:
    code: str
    procedure: str
    status: int
    status_label: str
    channel: str
    received_at: datetime
    due_at: datetime | None
    original_due: datetime | None
    finished_at: datetime | None
    steps: list[StepLine] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    supplement_requested_at: datetime | None = None
    reason: str | None = None
    collection: str | None = None
    rating: dict[str, Any] | None = None  # filled by lienthong.citizen.ratings when rating applies

    def as_dict(self) -> dict[str, Any]:
        def t(v: datetime | None) -> str | None:
            return v.isoformat() if v else None

        return {
            "dossier_code": self.code, "procedure": self.procedure, "status": self.status,
            "status_label": self.status_label, "channel": self.channel, "received_at": t(self.received_at),
            "due_at": t(self.due_at), "original_due_at": t(self.original_due), "finished_at": t(self.finished_at),
            "steps": [{"agency": s.agency, "action": s.action, "status": s.state, "status_label": s.label,
                       "due_at": t(s.due_at), "finished_at": t(s.finished_at)} for s in self.steps],
            "supplement_request": {"requested_at": t(self.supplement_requested_at), "lines": self.missing}
            if self.missing else None,
            "reason": self.reason, "collection": self.collection, "rating": self.rating,
        }


def citizen_view(session: Session, row: DossierRow) -> CitizenView:
    from lienthong.catalog import get_catalog, load_agencies
    from lienthong.citizen.collection import collection_text
    from lienthong.settings import get_settings

    agencies = load_agencies(get_settings().config_dir)
    try:
        procedure = get_catalog().for_dossier(row).name
    except Exception:  # noqa: BLE001 - a procedure since withdrawn from the catalog keeps its id
        procedure = row.procedure_id
    status = Status(row.status)
    steps = session.execute(select(StepRow).where(StepRow.dossier_id == row.id).order_by(StepRow.id)).scalars()
    view = CitizenView(row.code, procedure, int(status), status.label_vi, row.channel, row.received_at, row.due_at,
                       None, row.finished_at)
    view.steps = [
        StepLine(str(agencies.get(s.agency, {}).get("name", s.agency)), s.action, s.status,
                 STEP_LABELS.get(s.status, s.status), s.due_at, s.finished_at)
        for s in steps
    ]
    re = session.execute(select(ReappointmentRow).where(ReappointmentRow.dossier_id == row.id)).scalar_one_or_none()
    if re is not None and re.approved_at is not None:
        view.original_due = re.original_due
    if status == Status.SUPPLEMENT_REQUESTED:
        last = session.execute(select(SupplementRow).where(SupplementRow.dossier_id == row.id)
                               .order_by(SupplementRow.id.desc()).limit(1)).scalar_one_or_none()
        if last is not None:
            view.missing = [mask_ids_in_text(str(i)) for i in last.items or []]
            view.supplement_requested_at = last.requested_at
    if status in (Status.STOPPED, Status.REFUSED_AT_RECEPTION, Status.WITHDRAWN) and row.reason:
        view.reason = mask_ids_in_text(row.reason)
    if status in (Status.RESOLVED, Status.RETURNED):
        view.collection = collection_text(row.channel)
    return view


# --- the page -----------------------------------------------------------------------------------

CSS = """
*{box-sizing:border-box}body{margin:0;font:18px/1.5 system-ui,"Segoe UI",Roboto,"Noto Sans",sans-serif;
color:#1a1a1a;background:#f4f6f8}header{background:#b3261e;color:#fff;padding:16px 20px}
header h1{margin:0;font-size:1.25em}header p{margin:4px 0 0;font-size:.9em;opacity:.9}
main{max-width:720px;margin:0 auto;padding:12px}section{background:#fff;border-radius:12px;
padding:16px 18px;margin:12px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}h2{font-size:1.05em;margin:0 0 8px}
dl{margin:0}dt{color:#555;font-size:.9em;margin-top:8px}dd{margin:0;font-weight:600;word-break:break-word}
.badge{display:inline-block;padding:6px 14px;border-radius:999px;font-weight:700;background:#e8f0fe;color:#174ea6}
.s5,.s6{background:#fef7e0;color:#8a5a00}.s3,.s7,.s8{background:#fce8e6;color:#a50e0e}
.s9,.s10{background:#e6f4ea;color:#0d652d}ol{margin:0;padding-left:1.3em}li{margin:8px 0}
li small{display:block;color:#555;font-size:.9em}.done{color:#0d652d}.refused{color:#a50e0e}
.missing li{font-weight:600}fieldset{border:0;margin:0 0 14px;padding:0}legend{font-weight:600;margin-bottom:6px}
.opts{display:flex;flex-wrap:wrap;gap:8px}.opts label{flex:1 1 140px;min-height:48px;display:flex;
align-items:center;gap:8px;border:1px solid #c4c7c5;border-radius:10px;padding:8px 12px}
input[type=radio]{width:24px;height:24px}button{width:100%;min-height:56px;font-size:1em;font-weight:700;
border:0;border-radius:12px;background:#b3261e;color:#fff}.note{color:#555;font-size:.9em}
"""


def _t(at: datetime | None) -> str:
    from lienthong.clock import localize

    return "—" if at is None else f"{localize(at):%H:%M} ngày {localize(at):%d/%m/%Y}"


def _page(title: str, body: str, unit: str) -> str:
    return (
        "<!DOCTYPE html><html lang='vi'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<meta name='robots' content='noindex'><meta name='referrer' content='no-referrer'>"
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"<header><h1>Tra cứu hồ sơ</h1><p>{escape(unit)}</p></header><main>{body}</main></body></html>"
    )


def unit_name() -> str:
    from lienthong.citizen import collection

    return collection.unit_name() or "Bộ phận tiếp nhận và trả kết quả"


def render_page(view: CitizenView, rating_form: str = "") -> str:
    e = escape
    parts = [
        "<section><h2>Hồ sơ</h2><dl>",
        f"<dt>Mã hồ sơ</dt><dd id='code'>{e(view.code)}</dd>",
        f"<dt>Thủ tục</dt><dd>{e(view.procedure)}</dd>",
        f"<dt>Trạng thái</dt><dd><span id='status' class='badge s{view.status}'>{e(view.status_label)}</span></dd>",
        f"<dt>Ngày tiếp nhận</dt><dd>{_t(view.received_at)}</dd>",
        f"<dt>Hẹn trả kết quả</dt><dd id='due'>{_t(view.due_at)}</dd>",
    ]
    if view.original_due is not None:
        parts.append(f"<dt>Hẹn trước đây</dt><dd>{_t(view.original_due)} (đã có phiếu xin lỗi và hẹn lại)</dd>")
    if view.finished_at is not None:
        parts.append(f"<dt>Hoàn thành</dt><dd>{_t(view.finished_at)}</dd>")
    parts.append(f"<dt>Hình thức nộp</dt><dd>{e(CHANNEL_LABELS.get(view.channel, view.channel))}</dd></dl></section>")
    if view.missing:
        lines = "".join(f"<li>{e(m)}</li>" for m in view.missing)
        parts.append(f"<section id='missing' class='missing'><h2>Cần bổ sung</h2><p class='note'>Yêu cầu ngày "
                     f"{_t(view.supplement_requested_at)}. Ông/Bà vui lòng bổ sung:</p><ol>{lines}</ol></section>")
    if view.reason:
        parts.append(f"<section id='reason'><h2>Lý do</h2><p>{e(view.reason)}</p></section>")
    if view.collection:
        parts.append(f"<section id='collect'><h2>Nơi nhận kết quả</h2><p>{e(view.collection)}</p></section>")
    steps = "".join(
        f"<li class='{e(s.state)}'><b>{e(s.agency)}</b>: {e(s.action)}"
        f"<small>{e(s.label)}{' — xong ' + _t(s.finished_at) if s.finished_at else ''}"
        f"{' — hạn ' + _t(s.due_at) if s.due_at and not s.finished_at else ''}</small></li>"
        for s in view.steps
    )
    parts.append("<section id='steps'><h2>Các bước giải quyết</h2>"
                 + (f"<ol>{steps}</ol>" if steps else "<p class='note'>Hồ sơ chưa được chuyển xử lý.</p>")
                 + "</section>")
    parts.append(rating_form)
    parts.append("<p class='note'>Đường dẫn này chỉ dành cho người nộp hồ sơ; không chia sẻ cho người khác.</p>")
    return _page(f"Hồ sơ {view.code}", "".join(parts), unit_name())


def not_found_page() -> str:
    return _page("Không tìm thấy hồ sơ", "<section><h2>Không tìm thấy hồ sơ</h2><p>Đường dẫn tra cứu không đúng "
                 "hoặc đã bị thu hồi. Vui lòng dùng mã QR trên Giấy tiếp nhận hồ sơ mới nhất, hoặc liên hệ Bộ phận "
                 "tiếp nhận và trả kết quả.</p></section>", unit_name())


def too_many_page(seconds: int) -> str:
    return _page("Quá nhiều lượt tra cứu", f"<section><h2>Quá nhiều lượt tra cứu</h2><p>Vui lòng thử lại sau "
                 f"{seconds} giây.</p></section>", unit_name())
