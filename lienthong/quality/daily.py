"""The day's dossiers checked as one batch: data quality that protects the service-quality index.

Completeness per field, reuse and digitization shares, duplicated citizen IDs across open dossiers
of a procedure, and readiness for synchronisation with the National Public Service Portal (domain.md
§9, Decision 766/QĐ-TTg). Personal data in the report is masked.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from lienthong.catalog import get_catalog
from lienthong.clock import VN_TZ
from lienthong.db import session_scope
from lienthong.db.models import DossierRow
from lienthong.dossier import Status
from lienthong.errors import LienThongError
from lienthong.payloads import Submission
from lienthong.privacy import mask_citizen_id
from lienthong.quality.engines import GxEngine
from lienthong.quality.records import declaration_of, digitized_record, flatten, result_record
from lienthong.quality.suites import get_quality_config
from lienthong.quality.validator import get_engine

# Fields of a dossier (HoSo) the portal sync needs (domain.md §9), each with how to read it here.
PORTAL_FIELDS = ("MaHoSo", "MaTTHC", "TenTTHC", "KenhThucHien", "ChuHoSo", "SoGiayToChuHoSo",
                 "NgayTiepNhan", "NgayHenTra", "TrangThaiHoSo", "TaiLieuNop", "NgayKetThucXuLy")
_CHANNEL = {"in_person": 1, "online": 2, "postal": 3}
# The portal requires the end-of-processing time for these statuses (domain.md "Implications C").
_NEEDS_END = {3, 8, 9, 10}


@dataclass
class DailyReport:
    day: date
    dossiers: int = 0
    valid: int = 0
    invalid: int = 0
    flagged: int = 0
    rule_failures: dict[str, int] = field(default_factory=dict)
    # Rows of the other assets checked on the same day (agency results, digitized components).
    results_checked: int = 0
    digitized_checked: int = 0
    completeness: dict[str, float] = field(default_factory=dict)  # "asset:field" -> share present
    components: int = 0
    reused_share: float = 0.0
    digitized_share: float = 0.0  # dossiers with at least one digitized component
    results_share: float = 0.0  # resolved dossiers whose every result has its data
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    portal_ready: int = 0
    portal_missing: dict[str, int] = field(default_factory=dict)
    docs_index: Path | None = None

    @property
    def portal_ready_share(self) -> float:
        return self.portal_ready / self.dossiers if self.dossiers else 0.0

    def table(self) -> list[dict[str, Any]]:
        """Rows for a Prefect table artifact: metric, value, note (no personal data)."""
        rows: list[dict[str, Any]] = [
            {"metric": "dossiers", "value": self.dossiers, "note": f"received on {self.day}"},
            {"metric": "valid", "value": self.valid, "note": "every error rule passes"},
            {"metric": "invalid", "value": self.invalid, "note": "need a request for supplement"},
            {"metric": "flagged", "value": self.flagged, "note": "late registration and the like"},
            {"metric": "reused_component_share", "value": round(self.reused_share, 4),
             "note": f"of {self.components} components"},
            {"metric": "digitized_dossier_share", "value": round(self.digitized_share, 4),
             "note": "dossiers with a digitized component"},
            {"metric": "results_with_data_share", "value": round(self.results_share, 4),
             "note": "resolved dossiers whose results all carry data"},
            {"metric": "portal_ready_share", "value": round(self.portal_ready_share, 4),
             "note": "every §9 field present"},
            {"metric": "duplicated_citizen_ids", "value": len(self.duplicates),
             "note": "same ID in several open dossiers of one procedure"},
        ]
        rows += [{"metric": f"completeness:{k}", "value": round(v, 4), "note": "share present"}
                 for k, v in sorted(self.completeness.items()) if v < 1.0]
        rows += [{"metric": f"rule:{k}", "value": v, "note": "dossiers failing"}
                 for k, v in sorted(self.rule_failures.items())]
        rows += [{"metric": f"portal_missing:{k}", "value": v, "note": "dossiers lacking it"}
                 for k, v in sorted(self.portal_missing.items())]
        return rows

    def markdown(self, docs_url: str | None = None) -> str:
        lines = [
            f"# Data quality of {self.day}",
            "",
            f"- Dossiers: **{self.dossiers}**, valid {self.valid}, invalid {self.invalid}, "
            f"flagged {self.flagged}",
            f"- Reused components: {self.reused_share:.1%}; dossiers with digitized components: "
            f"{self.digitized_share:.1%}; resolved dossiers with result data: "
            f"{self.results_share:.1%}",
            f"- Ready for portal sync: {self.portal_ready_share:.1%}",
            f"- Duplicated citizen IDs across open dossiers: {len(self.duplicates)}",
        ]
        for d in self.duplicates[:20]:
            codes = ", ".join(d["dossiers"])
            lines.append(f"  - {d['procedure_id']}: {d['citizen_id']} in {codes}")
        if docs_url:
            lines += ["", f"[Great Expectations Data Docs]({docs_url})"]
        return "\n".join(lines)


def _version_of(row: DossierRow) -> Any:
    """The catalog version the dossier was received under (None if the catalog no longer has it)."""
    try:
        return get_catalog().for_dossier(row)
    except LienThongError:
        return None


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=VN_TZ)
    return start, start + timedelta(days=1)


def _portal_missing(row: DossierRow, sub: Submission) -> list[str]:
    proc = _version_of(row)
    owner = sub.owner()
    values = {
        "MaHoSo": row.code,
        "MaTTHC": row.procedure_code,
        "TenTTHC": proc.name if proc else None,
        "KenhThucHien": _CHANNEL.get(row.channel),
        "ChuHoSo": owner.full_name,
        "SoGiayToChuHoSo": row.owner_citizen_id or sub.applicant.citizen_id,
        "NgayTiepNhan": row.received_at,
        "NgayHenTra": row.due_at,
        "TrangThaiHoSo": row.status,
        "TaiLieuNop": [c for c in row.components if c.file_ref or c.vault_address] or None,
        "NgayKetThucXuLy": row.finished_at if row.status in _NEEDS_END else "n/a",
    }
    return [k for k in PORTAL_FIELDS if values[k] in (None, "")]


def _results_complete(row: DossierRow) -> bool:
    proc = _version_of(row)
    if proc is None:
        return False
    for step in row.steps:
        if step.status != "done":
            continue
        spec = next((s for s in proc.steps if s.id == step.step_key), None)
        for result in spec.results if spec else []:
            if (step.outputs or {}).get(result.data) in (None, "", {}, []):
                return False
    return True


def daily_report(day: date, *, docs_dir: Path | None = None) -> DailyReport:
    """Check every dossier received on ``day`` (local time) as one batch; build Data Docs when
    ``docs_dir`` is given."""
    start, end = _day_bounds(day)
    report = DailyReport(day)
    with session_scope() as session:
        rows = session.execute(
            select(DossierRow).where(DossierRow.received_at >= start, DossierRow.received_at < end)
            .options(selectinload(DossierRow.components), selectinload(DossierRow.steps))
            .order_by(DossierRow.id)
        ).scalars().all()
        open_rows = session.execute(
            select(DossierRow.code, DossierRow.procedure_id, DossierRow.owner_citizen_id,
                   DossierRow.status)
        ).all()
        subs = [Submission.model_validate(r.payload) for r in rows]
        report.dossiers = len(rows)
        comps = [c for r in rows for c in r.components]
        report.components = len(comps)
        report.reused_share = (sum(1 for c in comps if c.reused or c.vault_address) / len(comps)
                               if comps else 0.0)
        report.digitized_share = (sum(1 for r in rows if any(c.digitized for c in r.components))
                                  / len(rows) if rows else 0.0)
        resolved = [r for r in rows if r.status in (Status.RESOLVED, Status.RETURNED)]
        report.results_share = (sum(1 for r in resolved if _results_complete(r)) / len(resolved)
                                if resolved else 0.0)
        missing_counter: Counter[str] = Counter()
        for r, s in zip(rows, subs, strict=True):
            missing = _portal_missing(r, s)
            missing_counter.update(missing)
            report.portal_ready += not missing
        report.portal_missing = dict(missing_counter)
        codes = [r.code for r in rows]
        dues = [r.due_at for r in rows]
        side = _side_rows(rows, subs)
    report.duplicates = _duplicates(open_rows)
    report.results_checked = len(side["agency_results"])
    report.digitized_checked = len(side["digitized"])
    _validate_batch(report, subs, codes, dues, docs_dir, side)
    return report


def _side_rows(rows: Any, subs: list[Submission]) -> dict[str, list[dict[str, Any]]]:
    """Rows of the ``agency_results`` and ``digitized`` assets for the day's dossiers."""
    results: list[dict[str, Any]] = []
    digitized: list[dict[str, Any]] = []
    for row, sub in zip(rows, subs, strict=True):
        proc = _version_of(row)
        for step in row.steps:
            spec = next((s for s in proc.steps if s.id == step.step_key), None) if proc else None
            if spec is None or step.status != "done":
                continue
            for res in spec.results:
                results.append(result_record(
                    dossier_code=row.code, step_key=step.step_key, result_code=res.code,
                    data_name=res.data, outputs=step.outputs or {}, received_at=row.received_at,
                    finished_at=step.finished_at, child=sub.child))
        for comp in row.components:
            if comp.digitized:
                digitized.append(digitized_record(
                    comp.meta or {}, dossier_code=row.code, procedure_code=row.procedure_code,
                    component_code=comp.code, received_at=row.received_at,
                    confidence=comp.confidence))
    return {"agency_results": results, "digitized": digitized}


def _duplicates(rows: Any) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for code, procedure_id, citizen_id, status in rows:
        if not citizen_id or Status(status).terminal or status == Status.RESOLVED:
            continue
        groups[(procedure_id, citizen_id)].append(code)
    return [{"procedure_id": p, "citizen_id": mask_citizen_id(cid), "dossiers": sorted(codes)}
            for (p, cid), codes in sorted(groups.items()) if len(codes) > 1]


def _validate_batch(report: DailyReport, subs: list[Submission], codes: list[str],
                    dues: list[datetime | None], docs_dir: Path | None,
                    side: dict[str, list[dict[str, Any]]]) -> None:
    config = get_quality_config()
    engine = get_engine("gx", config)
    assert isinstance(engine, GxEngine)
    assets: dict[str, list[tuple[int, dict[str, Any]]]] = {a: [] for a in config.suites}
    for i, (s, code, due) in enumerate(zip(subs, codes, dues, strict=True)):
        flat = flatten(s, dossier_code=code, appointment_at=due)
        declaration, options = declaration_of(flat)
        for asset, suite in config.suites.items():
            if suite.applies(declaration, options):
                assets[asset].append((i, flat))
    errors: dict[int, set[str]] = defaultdict(set)
    flags: set[int] = set()
    failures_by_rule: Counter[str] = Counter()
    for asset, side_rows in side.items():
        # Not dossiers: their failures are counted per rule, not against the citizen's dossier.
        if side_rows and asset in config.suites:
            suite = config.suites[asset]
            failures = (engine.run_with_docs(suite, side_rows, docs_dir) if docs_dir
                        else engine.run(suite, side_rows))
            for rule_id, positions in failures.items():
                failures_by_rule[rule_id] += len(positions)
        assets.pop(asset, None)
    for asset, entries in assets.items():
        if not entries:
            continue
        suite = config.suites[asset]
        rows = [row for _, row in entries]
        failures = (engine.run_with_docs(suite, rows, docs_dir) if docs_dir
                    else engine.run(suite, rows))
        severity = {r.id: r.severity for r in suite.rules}
        for rule_id, positions in failures.items():
            failures_by_rule[rule_id] += len(positions)
            for pos in positions:
                (flags.add(entries[pos][0]) if severity[rule_id] == "flag"
                 else errors[entries[pos][0]].add(rule_id))
        for r in suite.rules:
            if r.expectation != "expect_column_values_to_not_be_null":
                continue
            col = r.kwargs["column"]
            considered = [row for row in rows if not r.when_present or row.get(r.when_present)]
            if considered:
                present = sum(1 for row in considered if row.get(col) not in (None, ""))
                report.completeness[f"{asset}:{col}"] = present / len(considered)
    report.invalid = len(errors)
    report.valid = report.dossiers - report.invalid
    report.flagged = len(flags)
    report.rule_failures = dict(failures_by_rule)
    if docs_dir is not None:
        index = docs_dir / "index.html"
        report.docs_index = index if index.exists() else None
