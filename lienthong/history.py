"""History from the previous one-stop software (``lienthong import-history FILE.csv``).

Rows become read-only :class:`HistoryDossier` records so that reports and the service index cover
the years before Liên Thông. A bad row is reported with its line number and skipped; the good rows
of a file go in one transaction (never half a file); a row already imported with the same content
is left alone, so importing a file twice changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from lienthong.clock import get_clock, localize
from lienthong.codes import parse_dossier_code, parse_procedure_code
from lienthong.db import session_scope
from lienthong.db.models import DossierRow
from lienthong.errors import ExitCode, InvalidCode, LienThongError
from lienthong.portal.ledger import HistoryDossier

COLUMNS = (
    "dossier_code",
    "procedure_code",
    "agency",
    "received_at",
    "due_at",
    "finished_at",
    "status",
    "supplement_requests",
)
END_STATUSES = frozenset({3, 8, 9, 10})
OPEN_STATUSES = frozenset({1, 2, 4, 5, 6})
_AGENCY = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
_FORMATS = ("%Y%m%d%H%M%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y")


class HistoryFileError(LienThongError):
    """The file as a whole cannot be read (missing columns, not a CSV)."""

    code = "history_file_error"
    exit_code = ExitCode.INPUT_FILE


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


@dataclass
class ImportReport:
    file: str
    rows: int = 0
    inserted: int = 0
    unchanged: int = 0
    bad: list[BadRow] = field(default_factory=list)


class _Bad(Exception):
    pass


def parse_time(value: str, column: str) -> datetime:
    value = value.strip()
    try:
        return localize(datetime.fromisoformat(value))
    except ValueError:
        pass
    for fmt in _FORMATS:
        try:
            return localize(datetime.strptime(value, fmt))
        except ValueError:
            continue
    raise _Bad(
        f"{column}: '{value}' không phải ngày giờ (ISO 8601, yyyyMMddHHmmss hoặc dd/MM/yyyy HH:mm)"
    )


def _row(raw: dict[str, str | None]) -> dict[str, object]:
    v = {k: unicodedata.normalize("NFC", (raw.get(k) or "").strip()) for k in COLUMNS}
    code = v["dossier_code"]
    if not code or len(code) > 40:
        raise _Bad("dossier_code: trống hoặc dài quá 40 ký tự")
    try:
        parse_dossier_code(code)
        parse_procedure_code(v["procedure_code"])
    except InvalidCode as exc:
        raise _Bad(exc.message_vi) from exc
    if not _AGENCY.match(v["agency"]):
        raise _Bad(f"agency: '{v['agency']}' không phải mã cơ quan")
    if not v["received_at"]:
        raise _Bad("received_at: trống")
    received = parse_time(v["received_at"], "received_at")
    due = parse_time(v["due_at"], "due_at") if v["due_at"] else None
    finished = parse_time(v["finished_at"], "finished_at") if v["finished_at"] else None
    try:
        status = int(v["status"])
    except ValueError:
        raise _Bad(f"status: '{v['status']}' không phải mã trạng thái 1-10") from None
    if not 1 <= status <= 10:
        raise _Bad(f"status: {status} ngoài bộ mã 1-10")
    if due is not None and due < received:
        raise _Bad("due_at trước received_at")
    if finished is not None and finished < received:
        raise _Bad("finished_at trước received_at")
    if status in END_STATUSES and finished is None:
        raise _Bad(f"finished_at: bắt buộc với trạng thái {status}")
    if status in OPEN_STATUSES and finished is not None:
        raise _Bad(f"finished_at: hồ sơ trạng thái {status} chưa kết thúc nhưng có ngày kết thúc")
    try:
        supplements = int(v["supplement_requests"] or 0)
    except ValueError:
        raise _Bad(f"supplement_requests: '{v['supplement_requests']}' không phải số") from None
    if supplements < 0:
        raise _Bad("supplement_requests: số âm")
    out: dict[str, object] = {
        "code": code,
        "procedure_code": v["procedure_code"],
        "agency": v["agency"],
        "received_at": received,
        "due_at": due,
        "finished_at": finished,
        "status": status,
        "supplement_requests": supplements,
    }
    canon = "|".join(
        (val.isoformat() if isinstance(val := out[k], datetime) else str(val))
        for k in (
            "code",
            "procedure_code",
            "agency",
            "received_at",
            "due_at",
            "finished_at",
            "status",
            "supplement_requests",
        )
    )
    out["row_hash"] = hashlib.sha256(canon.encode()).hexdigest()
    return out


def import_history(path: Path | str) -> ImportReport:
    path = Path(path)
    report = ImportReport(str(path))
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise HistoryFileError(
            f"{path}: {exc.strerror}", message_vi=f"Không mở được tệp {path.name}."
        ) from exc
    good: dict[str, tuple[int, dict[str, object]]] = {}
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise HistoryFileError(
                f"{path}: missing columns {', '.join(missing)}",
                message_vi=f"Tệp {path.name} thiếu cột: {', '.join(missing)}.",
            )
        for raw in reader:
            line = reader.line_num
            report.rows += 1
            try:
                row = _row(raw)
            except _Bad as exc:
                report.bad.append(BadRow(line, str(exc)))
                continue
            if row["code"] in good:
                report.bad.append(
                    BadRow(line, f"trùng mã hồ sơ với dòng {good[str(row['code'])][0]}")
                )
                continue
            good[str(row["code"])] = (line, row)
    now = get_clock().now()
    with session_scope() as s:
        codes = list(good)
        existing: dict[str, str] = {}
        live: set[str] = set()
        for i in range(0, len(codes), 5000):
            chunk = codes[i : i + 5000]
            existing.update(
                s.execute(
                    select(HistoryDossier.code, HistoryDossier.row_hash).where(
                        HistoryDossier.code.in_(chunk)
                    )
                )
                .tuples()
                .all()
            )
            live.update(
                s.execute(select(DossierRow.code).where(DossierRow.code.in_(chunk))).scalars()
            )
        for code, (line, row) in good.items():
            if code in live:
                report.bad.append(BadRow(line, "mã hồ sơ đã có trong hệ thống Liên Thông"))
            elif code in existing:
                if existing[code] == row["row_hash"]:
                    report.unchanged += 1
                else:
                    report.bad.append(
                        BadRow(
                            line, "hồ sơ đã được nhập trước đây với nội dung khác (lịch sử chỉ đọc)"
                        )
                    )
            else:
                s.add(HistoryDossier(**row, source_file=path.name, line_no=line, imported_at=now))  # type: ignore[arg-type]
                report.inserted += 1
    report.bad.sort(key=lambda b: b.line)
    return report
