"""``service-index``: the Decision 766 index and the per-agency on-time table, monthly (for the
previous month) and on demand for any period; table and markdown artifacts, HTML under
var/reports."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from lienthong.clock import get_clock
from tasks.accountability import compute_index_task

# Suggested schedule: 06:00 on the 1st of each month, for the month before.
SCHEDULE = {"cron": "0 6 1 * *", "timezone": "Asia/Ho_Chi_Minh"}


def previous_month(today: date) -> tuple[date, date]:
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last


@flow(name="service-index", description="Chỉ số 766 and the per-agency on-time table for a period.")
def service_index(
    date_from: date | None = None, date_to: date | None = None, agency: str | None = None
) -> dict[str, Any]:
    if date_from is None or date_to is None:
        date_from, date_to = previous_month(get_clock().now().date())
    out = compute_index_task(date_from, date_to, agency)
    create_table_artifact(
        key="service-index",
        table=out["index_rows"],
        description=f"Chỉ số 766, {date_from} – {date_to}"
        + (f", {agency}" if agency else "")
        + ": "
        f"{out['index']['province']['points']} / {out['index']['province']['available_points']}",
    )
    agencies = out["agencies"] or [{"agency": "", "received": 0}]
    create_table_artifact(
        key="on-time-by-agency",
        table=agencies,
        description="Hồ sơ tiếp nhận trong kỳ theo cơ quan: đúng hạn, quá hạn, đang giải quyết",
    )
    with open(out["files"]["markdown"], encoding="utf-8") as fh:
        create_markdown_artifact(
            key="service-index-report",
            markdown=fh.read(),
            description=f"HTML: {out['files']['html']}",
        )
    get_run_logger().info(
        "service-index %s..%s: on-time %s%%, report %s",
        date_from,
        date_to,
        out["on_time_rate"],
        out["files"]["html"],
    )
    return {
        k: out[k]
        for k in ("received", "resolved", "resolved_on_time", "late", "in_progress", "on_time_rate")
    } | {"html": out["files"]["html"]}
