"""The service-quality index of Decision 766/QĐ-TTg (chỉ số 766) and the operator reports:
facts per dossier (:mod:`.records`), the rules (:mod:`.compute`, ``config/service_index.yaml``),
and the table, markdown, charts and HTML (:mod:`.report`)."""

from lienthong.index.compute import IndexResult, compute_index, evaluate, operator_summary
from lienthong.index.report import Report, build_report, summary_table

__all__ = [
    "IndexResult",
    "Report",
    "build_report",
    "compute_index",
    "evaluate",
    "operator_summary",
    "summary_table",
]
