"""Reports of the index: a table, a markdown report, PNG charts and an HTML page under
``<var_dir>/reports/<from>_<to>[_<agency>]/``."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from lienthong.calendar import WorkingCalendar, get_calendar
from lienthong.catalog import get_catalog
from lienthong.clock import get_clock, localize
from lienthong.db import session_scope
from lienthong.index.compute import (
    IndexResult,
    by_scope,
    compute_index,
    lateness_by_agency,
    monthly_on_time,
    operator_summary,
    step_times,
)
from lienthong.index.config import IndexConfig, get_index_config
from lienthong.index.records import IndexRecord, load_records
from lienthong.settings import get_settings

SUMMARY_COLUMNS = [
    "received",
    "resolved",
    "resolved_on_time",
    "late",
    "in_progress",
    "overdue_in_progress",
    "on_time_rate",
]
LABELS_VI = {
    "received": "Tiếp nhận",
    "resolved": "Đã giải quyết",
    "resolved_on_time": "Đúng/trước hạn",
    "late": "Quá hạn",
    "in_progress": "Đang giải quyết",
    "overdue_in_progress": "Đang quá hạn",
    "on_time_rate": "Tỷ lệ đúng hạn (%)",
}


@dataclass
class Report:
    start: datetime
    end: datetime
    as_of: datetime
    agency: str | None
    summary: dict[str, Any]
    agencies: list[dict[str, Any]]
    province: IndexResult
    by_agency: dict[str, IndexResult]
    by_procedure: dict[str, IndexResult]
    lateness: dict[str, int]
    steps: list[dict[str, Any]]
    monthly: dict[str, dict[str, float]]
    files: dict[str, Path] = field(default_factory=dict)
    # One line per provisional calendar year of the period (no government notice recorded).
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.start.date().isoformat(),
            "to": (self.end - timedelta(days=1)).date().isoformat(),
            "as_of": self.as_of.isoformat(),
            "agency": self.agency,
            **self.summary,
            "agencies": self.agencies,
            "lateness_by_agency": self.lateness,
            "index": {
                "province": self.province.as_dict(),
                "agencies": {k: v.as_dict() for k, v in self.by_agency.items()},
                "procedures": {k: v.as_dict() for k, v in self.by_procedure.items()},
            },
            "steps": self.steps,
            "files": {k: str(v) for k, v in self.files.items()},
            "warnings": self.warnings,
        }


def period(date_from: date, date_to: date) -> tuple[datetime, datetime]:
    """Inclusive dates -> ``[start, end)`` in local time."""
    tz = get_calendar().tz
    return (
        datetime.combine(date_from, time(0), tzinfo=tz),
        datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=tz),
    )


def build_report(
    date_from: date,
    date_to: date,
    *,
    agency: str | None = None,
    as_of: datetime | None = None,
    write: bool = True,
    out_dir: Path | None = None,
    cal: WorkingCalendar | None = None,
    cfg: IndexConfig | None = None,
) -> Report:
    cal = cal or get_calendar()
    cfg = cfg or get_index_config()
    start, end = period(date_from, date_to)
    as_of = localize(as_of) if as_of else min(end, localize(get_clock().now()))
    with session_scope() as s:
        records = load_records(s, start, end, rule=cfg.rule, result_keys=cfg.result_keys)
    if agency:
        records = [r for r in records if agency in r.agencies]
    summary = operator_summary(records, start, end, as_of, cal, cfg.rule)
    agencies = []
    for code, recs in by_scope(records, "agency").items():
        if agency and code != agency:
            continue
        agencies.append(
            {"agency": code, **operator_summary(recs, start, end, as_of, cal, cfg.rule)}
        )
    report = Report(
        start,
        end,
        as_of,
        agency,
        summary,
        agencies,
        compute_index(
            records,
            start,
            end,
            as_of,
            cal,
            cfg,
            scope_kind="agency" if agency else "province",
            scope=agency or "tỉnh",
        ),
        {
            k: compute_index(v, start, end, as_of, cal, cfg, scope_kind="agency", scope=k)
            for k, v in by_scope(records, "agency").items()
            if not agency or k == agency
        },
        {
            k: compute_index(v, start, end, as_of, cal, cfg, scope_kind="procedure", scope=k)
            for k, v in by_scope(records, "procedure").items()
        },
        lateness_by_agency(records, as_of, cal, cfg.rule),
        step_times(records, cal),
        monthly_on_time(records, as_of, cal, cfg.rule),
        warnings=cal.warnings(date_from, date_to),
    )
    if write:
        write_report(report, out_dir)
    return report


# --- table and markdown ----------------------------------------------------------------------


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def summary_table(report: Report) -> str:
    """The per-agency on-time table as plain text (the CLI's default output)."""
    head = ["Cơ quan", *[LABELS_VI[c] for c in SUMMARY_COLUMNS]]
    rows = [[a["agency"], *[_fmt(a[c]) for c in SUMMARY_COLUMNS]] for a in report.agencies]
    rows.append(
        [
            "TỔNG" if not report.agency else f"TỔNG ({report.agency})",
            *[_fmt(report.summary[c]) for c in SUMMARY_COLUMNS],
        ]
    )
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]

    def line(r: list[str]) -> str:
        cells = zip(r, widths, strict=True)
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(cells)
        )

    out = [line(head), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]
    return "\n".join(out)


def index_rows(result: IndexResult) -> list[dict[str, Any]]:
    """Table-artifact rows: one per indicator."""
    return [
        {
            "id": i.id,
            "nhóm": i.group,
            "chỉ số": i.name,
            "tử số": _fmt(i.numerator),
            "mẫu số": _fmt(i.denominator),
            "giá trị": "—"
            if i.value is None
            else (f"{100 * i.value:.2f}%" if i.id != "2.2" else f"{i.value:.2f}"),
            "điểm": _fmt(i.points),
            "tối đa": _fmt(i.max_points),
        }
        for i in result.indicators
    ]


def _md_table(head: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def markdown(report: Report) -> str:
    p = report.province
    lines = [
        f"# Báo cáo chất lượng giải quyết TTHC {report.start:%d/%m/%Y} – "
        f"{report.end - timedelta(days=1):%d/%m/%Y}"
        + (f" — {report.agency}" if report.agency else ""),
        "",
        f"Số liệu tính đến {report.as_of:%H:%M %d/%m/%Y}. "
        f"Tiếp nhận **{report.summary['received']}** hồ sơ, "
        f"đã giải quyết **{report.summary['resolved']}**, đúng hoặc trước hạn "
        f"**{_fmt(report.summary['on_time_rate'])}%**; quá hạn **{report.summary['late']}**; "
        f"đang giải quyết **{report.summary['in_progress']}** "
        f"(trong đó quá hạn {report.summary['overdue_in_progress']}).",
        "",
        *[f"> **Cảnh báo:** {w}\n" for w in report.warnings],
        "## Theo cơ quan",
        "",
        _md_table(
            ["Cơ quan", *[LABELS_VI[c] for c in SUMMARY_COLUMNS]],
            [[a["agency"], *[a[c] for c in SUMMARY_COLUMNS]] for a in report.agencies],
        ),
        "",
        f"## Bộ chỉ số 766 ({p.scope}): {p.points} / {p.available_points} điểm có dữ liệu "
        "(tối đa 100)",
        "",
        _md_table(
            ["Nhóm", "Tên", "Điểm", "Điểm có dữ liệu", "Tối đa"],
            [[g.no, g.name, g.points, g.available_points, g.max_points] for g in p.groups],
        ),
        "",
        _md_table(
            ["Chỉ số", "Tên", "Tử số", "Mẫu số", "Giá trị", "Điểm", "Tối đa"],
            [
                [
                    r["id"],
                    r["chỉ số"],
                    r["tử số"],
                    r["mẫu số"],
                    r["giá trị"],
                    r["điểm"],
                    r["tối đa"],
                ]
                for r in index_rows(p)
            ],
        ),
        "",
        "Chỉ số không có dữ liệu (—) không được tính điểm; "
        "tổng điểm không bao giờ cộng thêm phần chưa đo.",
        "",
        "## Hồ sơ quá hạn theo cơ quan chịu trách nhiệm",
        "",
        _md_table(["Cơ quan", "Hồ sơ quá hạn"], [[k, v] for k, v in report.lateness.items()])
        if report.lateness
        else "Không có hồ sơ quá hạn.",
        "",
        "## Thời gian xử lý từng bước (giờ làm việc)",
        "",
        _md_table(
            ["Cơ quan", "Bước", "Số bước", "TB giờ", "Trước hạn", "Đúng hạn", "Quá hạn"],
            [
                [
                    s["agency"],
                    s["step"],
                    s["steps"],
                    s["mean_hours"],
                    s["early"],
                    s["on_time"],
                    s["late"],
                ]
                for s in report.steps
            ],
        )
        if report.steps
        else "Chưa có bước xử lý nào kết thúc.",
        "",
        "## Theo thủ tục",
        "",
        _md_table(
            ["Mã TTHC", "Hồ sơ", "2.1 đúng hạn", "Điểm"],
            [
                [k, v.dossiers, _pct(v.indicator("2.1").value), v.points]
                for k, v in report.by_procedure.items()
            ],
        ),
        "",
    ]
    for name in ("on_time", "lateness", "steps"):
        if name in report.files:
            lines.append(f"![{name}]({report.files[name].name})")
    return "\n".join(lines) + "\n"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f}%"


# --- charts and HTML -------------------------------------------------------------------------


def charts(report: Report, out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files: dict[str, Path] = {}
    fig, ax = plt.subplots(figsize=(8, 4))
    for agency, series in sorted(report.monthly.items()):
        months = sorted(series)
        ax.plot(months, [series[m] for m in months], marker="o", label=agency)
    ax.set_title("Tỷ lệ hồ sơ đúng hạn theo cơ quan, theo tháng")
    ax.set_ylabel("% đúng hoặc trước hạn")
    ax.set_ylim(0, 105)
    if report.monthly:
        ax.legend(fontsize=7)
    fig.autofmt_xdate()
    files["on_time"] = _save(fig, out / "on-time-by-agency.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    names = list(report.lateness)
    ax.bar(names, [report.lateness[n] for n in names], color="#c0392b")
    ax.set_title("Hồ sơ quá hạn theo cơ quan chịu trách nhiệm")
    ax.set_ylabel("hồ sơ")
    files["lateness"] = _save(fig, out / "lateness-by-agency.png")

    fig, ax = plt.subplots(figsize=(9, 4.5))
    labels = [f"{s['agency']} · {s['step']}" for s in report.steps]
    ax.bar(labels, [s["mean_hours"] for s in report.steps], color="#2e86c1")
    ax.set_title("Thời gian xử lý trung bình mỗi bước (giờ làm việc)")
    ax.tick_params(axis="x", labelsize=7, labelrotation=35)
    for tick in ax.get_xticklabels():
        tick.set_horizontalalignment("right")
    files["steps"] = _save(fig, out / "time-per-step.png")
    return files


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def html_page(report: Report, md: str) -> str:
    """A self-contained page: the markdown's tables as HTML, the charts beside it."""
    body: list[str] = []
    table: list[str] = []

    def flush() -> None:
        if table:
            rows = [r.strip("|").split("|") for r in table if not set(r.replace("|", "")) <= {"-"}]
            head, *rest = rows
            body.append(
                "<table><tr>"
                + "".join(f"<th>{html.escape(c.strip())}</th>" for c in head)
                + "</tr>"
                + "".join(
                    "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in r) + "</tr>"
                    for r in rest
                )
                + "</table>"
            )
            table.clear()

    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("!["):
            src = line[line.index("(") + 1 : -1]
            body.append(f'<img src="{html.escape(src)}" alt="">')
        elif line.strip():
            text = html.escape(line)
            while "**" in text:
                text = text.replace("**", "<b>", 1).replace("**", "</b>", 1)
            body.append(f"<p>{text}</p>")
    flush()
    style = (
        "body{font-family:'DejaVu Sans',sans-serif;margin:2em;max-width:70em}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;padding:3px 8px}"
        "td{text-align:right}td:first-child{text-align:left}img{max-width:48%;margin:4px}"
    )
    return (
        f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>Báo cáo TTHC</title>'
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )


def write_report(report: Report, out_dir: Path | None = None) -> dict[str, Path]:
    name = f"{report.start:%Y-%m-%d}_{report.end - timedelta(days=1):%Y-%m-%d}"
    if report.agency:
        name += f"_{report.agency}"
    out = out_dir or get_settings().var_dir / "reports" / name
    out.mkdir(parents=True, exist_ok=True)
    report.files.update(charts(report, out))
    md = markdown(report)
    (out / "report.md").write_text(md, encoding="utf-8")
    (out / "index.html").write_text(html_page(report, md), encoding="utf-8")
    report.files["markdown"], report.files["html"] = out / "report.md", out / "index.html"
    report.files["json"] = out / "report.json"
    (out / "report.json").write_text(
        json.dumps(report.as_json(), ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return report.files


def agency_names() -> dict[str, str]:
    return {k: str(v.get("name", k)) for k, v in get_catalog().agencies.items()}


__all__ = [
    "Report",
    "build_report",
    "index_rows",
    "markdown",
    "period",
    "summary_table",
    "write_report",
    "IndexRecord",
]
