"""``data-quality-daily``: the day's dossiers validated as one batch, with Great Expectations Data
Docs built as static HTML under ``<var_dir>/quality/docs`` and two artifacts (a table of metrics,
a markdown summary linking the docs)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from lienthong.clock import get_clock
from lienthong.quality.daily import DailyReport, daily_report
from lienthong.settings import get_settings

DEPLOYMENT_NAME = "data-quality-daily"
# End of the working day in Vietnam: every dossier of the day is in.
SCHEDULE = {"cron": "45 23 * * *", "timezone": "Asia/Ho_Chi_Minh"}
ARTIFACT_KEY = "data-quality-daily"


def docs_dir() -> Path:
    return get_settings().var_dir / "quality" / "docs"


@task(name="validate-day", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def validate_day(day: date, docs: Path) -> DailyReport:
    return daily_report(day, docs_dir=docs)


@flow(name="data-quality-daily", description="Validate the day's dossiers as one batch.")
def data_quality_daily(day: date | None = None) -> dict[str, Any]:
    """Check every dossier received on ``day`` (default: today, local time); publish artifacts."""
    log = get_run_logger()
    day = day or get_clock().now().date()
    docs = docs_dir()
    docs.mkdir(parents=True, exist_ok=True)
    report = validate_day(day, docs)
    url = report.docs_index.resolve().as_uri() if report.docs_index else None
    create_table_artifact(key=ARTIFACT_KEY, table=report.table(),
                          description=f"Data quality of the dossiers received on {day}")
    create_markdown_artifact(key=f"{ARTIFACT_KEY}-summary", markdown=report.markdown(url),
                             description=f"Data quality summary of {day}, with the Data Docs")
    log.info("%s: %d dossiers, %d invalid, %d flagged", day, report.dossiers, report.invalid,
             report.flagged)
    return {"day": day.isoformat(), "dossiers": report.dossiers, "valid": report.valid,
            "invalid": report.invalid, "flagged": report.flagged,
            "portal_ready_share": report.portal_ready_share, "docs": url}
