"""Batch flow ``digitize-backlog``: digitize the pending paper components of many dossiers in one
run, as tasks (one per dossier) feeding the shared page pool, with a progress artifact for the UI
and a progress bar on the terminal."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from lienthong.digitize import components as core
from tasks.digitize import digitize_dossier

# Suggested schedule of the deployment: every 30 minutes in working hours, Monday to Saturday
# (one-stop departments receive on Saturday mornings), in Asia/Ho_Chi_Minh time.
BACKLOG_CRON = "*/30 7-18 * * 1-6"
BACKLOG_TIMEZONE = "Asia/Ho_Chi_Minh"


@task(name="find-digitize-backlog", cache_policy=NO_CACHE)
def find_backlog(limit: int) -> list[str]:
    return core.dossiers_with_pending(limit)


# Two dossiers at a time keep the page pool fed across dossier boundaries; each dossier's pages
# already run on every core, so more threads would only queue.
@flow(
    name="digitize-backlog",
    task_runner=ThreadPoolTaskRunner(max_workers=2),
    description="Số hóa các thành phần hồ sơ giấy còn tồn (digitize pending paper components).",
)
def digitize_backlog(
    max_dossiers: int = 200, dossier_codes: list[str] | None = None
) -> dict[str, Any]:
    logger = get_run_logger()
    codes = dossier_codes or find_backlog(max_dossiers)
    artifact = create_progress_artifact(0.0, description=f"Số hóa {len(codes)} hồ sơ tồn")
    totals = {"dossiers": len(codes), "digitized": 0, "needs_review": 0, "rejected": 0}
    review_rows: list[dict[str, Any]] = []
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        tid = bar.add_task("digitize-backlog", total=len(codes) or 1)
        futures = [digitize_dossier.submit(code) for code in codes]
        for done, fut in enumerate(futures, start=1):
            try:
                s = fut.result()
            except Exception as exc:  # noqa: BLE001 - one dossier's failure must not stop the batch
                logger.error("dossier %s failed: %s", codes[done - 1], type(exc).__name__)
                s = {"digitized": [], "needs_review": [], "rejected": []}
            totals["digitized"] += len(s["digitized"])
            totals["needs_review"] += len(s["needs_review"]) - len(s["rejected"])
            totals["rejected"] += len(s["rejected"])
            review_rows += [
                {
                    "dossier": codes[done - 1],
                    "component_id": r["component_id"],
                    "reasons": "; ".join(r["reasons"]),
                }
                for r in s["needs_review"]
            ]
            bar.update(tid, completed=done)
            update_progress_artifact(
                artifact,
                100.0 * done / max(len(codes), 1),
                description=f"{done}/{len(codes)} hồ sơ",
            )
    if not codes:
        update_progress_artifact(artifact, 100.0, description="Không có hồ sơ tồn")
    if review_rows:
        create_table_artifact(
            key="digitize-backlog-review",
            table=review_rows,
            description="Thành phần cần cán bộ kiểm tra hoặc yêu cầu bổ sung",
        )
    logger.info("digitize-backlog: %s", totals)
    return totals
