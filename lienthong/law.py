"""The rules the catalog and the calendar apply, as one table with their legal basis, effective
dates and whether each is confirmed (``docs/law.md`` is this table; a test keeps them equal)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from lienthong.calendar import WorkingCalendar
from lienthong.catalog import Catalog


@dataclass(frozen=True)
class Rule:
    subject: str  # what the rule is about (a procedure version, a step, a calendar year)
    rule: str
    basis: str  # document and article
    effective_from: date | None
    effective_to: date | None
    confirmed: bool
    reason: str = ""


def _d(d: date | None) -> str:
    return f"{d:%d/%m/%Y}" if d else "—"


def catalog_rules(catalog: Catalog) -> list[Rule]:
    out: list[Rule] = []
    for p in sorted(catalog.all_versions(), key=lambda p: (p.id, p.effective_from)):
        subject = f"{p.code} {p.id} v{p.version}"
        basis = "; ".join(f"{b.document} {b.article}".strip() for b in p.legal_basis)
        out.append(Rule(subject, f"Mã thủ tục {p.code}" + (f" (thay {', '.join(p.replaces)})" if p.replaces else ""),
                        basis, p.effective_from, p.effective_to, p.code_confirmed, p.code_reason))
        for b in p.legal_basis:
            out.append(Rule(subject, "Căn cứ pháp lý", f"{b.document} {b.article}".strip(),
                            b.effective_from, b.effective_to, b.confirmed, b.reason))
        tl = p.time_limit
        limit = "trong ngày" if tl.working_days == 0 else f"{tl.working_days} ngày làm việc"
        if tl.with_verification is not None:
            limit += f" ({tl.with_verification} nếu xác minh)"
        out.append(Rule(subject, f"Thời hạn cả thủ tục: {limit}", basis, p.effective_from, p.effective_to,
                        tl.confirmed, "" if tl.confirmed else "Thời hạn chưa được văn bản xác nhận."))
        for s in p.steps:
            slimit = "trong ngày" if s.time_limit.same_day else f"{s.time_limit.working_days} ngày làm việc"
            out.append(Rule(subject, f"Bước {s.id} ({s.agency}): {slimit}"
                            + (f"; ký: {s.approval}" if s.approval else ""),
                            basis, p.effective_from, p.effective_to, s.limit_confirmed, s.limit_reason))
            for r in s.results:
                out.append(Rule(subject, f"Kết quả {r.code}: {r.name}", basis, p.effective_from,
                                p.effective_to, r.confirmed, r.reason))
        for f in p.fees:
            amount = "không thu" if f.amount_vnd == 0 else (f"{f.amount_vnd:,} đồng".replace(",", ".")
                                                           if f.amount_vnd is not None else "chưa rõ")
            out.append(Rule(subject, f"Phí, lệ phí: {f.name}: {amount}", f.legal_basis or basis,
                            p.effective_from, p.effective_to, f.confirmed, f.note or ""))
    return out


def calendar_rules(cal: WorkingCalendar, years: Iterable[int]) -> list[Rule]:
    out = [Rule("Lịch", "Ngày nghỉ lễ theo luật (gói holidays, VN)",
                "Bộ luật Lao động 2012 Điều 115; Bộ luật Lao động 2019 Điều 111-112", date(2013, 5, 1), None, True),
           Rule("Lịch", "Thời hạn tính bằng ngày kết thúc vào ngày nghỉ: hết ngày làm việc tiếp theo",
                "Bộ luật Dân sự 2015 Điều 147-148", date(2017, 1, 1), None, True)]
    for y in years:
        table = cal.year(y)
        for n in table.notices:
            if n.year != y:
                continue
            days = ", ".join(f"nghỉ {d:%d/%m/%Y}" for d in sorted(n.days_off)) + "".join(
                f", làm bù {d:%d/%m/%Y}" for d in sorted(n.working_days))
            out.append(Rule(f"Lịch {y}", f"{n.title} ({days})", n.number or "số văn bản chưa rõ",
                            min(n.days_off, default=None), None, n.confirmed, n.reason))
        if table.provisional:
            out.append(Rule(f"Lịch {y}", "Tạm tính: chưa có thông báo hoán đổi của Chính phủ", "—",
                            date(y, 1, 1), date(y, 12, 31), False, "Chưa có thông báo."))
    return out


def markdown(rules: Iterable[Rule]) -> str:
    lines = ["| Đối tượng | Quy tắc | Căn cứ (văn bản, điều) | Hiệu lực từ | Đến | Xác nhận |",
             "|---|---|---|---|---|---|"]
    for r in rules:
        ok = "có" if r.confirmed else f"**chưa** — {r.reason}" if r.reason else "**chưa**"
        cells = [r.subject, r.rule, r.basis, _d(r.effective_from), _d(r.effective_to), ok]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


# (article, duty, where it stands): kept by hand, with the issue that tracks what is missing.
DECREE_118: tuple[tuple[str, str, str], ...] = (
    ("17(2)(c)", "online dossier accepted or returned for completion within 8 working hours",
     "not yet: reception accepts at once; no deadline or sweep warning for a dossier left unaccepted"),
    ("11(2)(c), 19(5)", "one supplement request after acceptance, within 3 working days; the limit "
     "restarts at the complete dossier; closure 15 days after an unanswered request",
     "partly: the limit restarts (WorkingCalendar.due, restart_at); once-only, 3-day and 15-day rules not yet"),
    ("19(6), 12(5)", "apology and new appointment at the latest 1 working day before the due date, once",
     "yes: config/sweep.yaml apology, config/calendar.yaml reappointment (re-cited from Decree 61/2018)"),
    ("19(2)", "six minimum fields of a digitized paper", "not yet checked as a rule"),
    ("22(4)", "document number of an electronic result: owner's personal ID + result-type code",
     "not yet: the vault numbers a result by the agency's number or the dossier"),
    ("22(5)", "early return allowed, the applicant told beforehand", "not yet"),
    ("23(1)", "a wrong result corrected within 3 working days at the agency's cost",
     "partly: the vault's corrections re-issue a result; the 3-day limit is not tracked"),
    ("28(2)", "dossier code: agency identifier (the portal's for online inter-agency groups), date, "
     "sequence", "partly: <unit>-YYMMDD-NNNN (config/reference/codes.yaml); the portal identifier case not yet"),
    ("Thông tư 03/2025 Phụ lục I", "forms numbered 01-07 (04 apology and extension, 06 control slip)",
     "partly: bases re-cited; the forms module still renders 01-05 under the old numbering"),
)


def law_markdown(catalog: Catalog, cal: WorkingCalendar, years: Iterable[int]) -> str:
    """``docs/law.md`` as it must read for this catalog and calendar."""
    head = [
        "# The law Liên Thông applies",
        "",
        "Generated from `config/procedures/`, `config/holidays/` and `config/calendar.yaml` by",
        "`python -m lienthong.law > docs/law.md`; `tests/unit/test_law_doc.py` fails when this file",
        "and the configuration disagree. Every rule names its basis (document, article), the days it",
        "is in force, and whether it is confirmed; an unconfirmed one says why. Nothing here is made",
        "up: a code, a limit or a basis that could not be confirmed stays configurable and is marked.",
        "",
        "## Procedures (every version)",
        "",
        markdown(catalog_rules(catalog)),
        "",
        "## Working-day calendar",
        "",
        markdown(calendar_rules(cal, years)),
        "",
        "## Decree 118/2025/NĐ-CP duties (in force 01/07/2025) and where they stand",
        "",
        "| Article | Duty | In Liên Thông |",
        "|---|---|---|",
        *[f"| {a} | {d} | {w} |" for a, d, w in DECREE_118],
        "",
    ]
    return "\n".join(head)


def main() -> None:
    from lienthong.calendar import get_calendar
    from lienthong.catalog import get_catalog

    print(law_markdown(get_catalog(), get_calendar(), range(2018, 2028)), end="")


if __name__ == "__main__":
    main()
