"""``portal-sync``: hourly push of changed dossiers to the national portal; ``catch_up=True`` walks
the whole backlog in resumable batches with a progress artifact."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from tasks.accountability import catch_up_task, sync_changed_task

# Suggested schedule: hourly at minute 5 (the catch-up is started by hand with catch_up=true).
SCHEDULE = {"cron": "5 * * * *", "timezone": "Asia/Ho_Chi_Minh"}


@flow(name="portal-sync", description="Synchronise dossiers and progress with Cổng DVCQG.")
def portal_sync(
    catch_up: bool = False,
    reset: bool = False,
    batch_size: int | None = None,
    batches_per_task: int = 10,
) -> dict[str, Any]:
    log = get_run_logger()
    if not catch_up:
        report = sync_changed_task(batch_size)
    else:
        progress_id = create_progress_artifact(
            progress=0.0,
            key="portal-catch-up",
            description="Portal catch-up: share of the backlog handled",
        )
        report = catch_up_task(batches_per_task, batch_size, reset)
        while True:
            if report["total"]:
                update_progress_artifact(progress_id, 100.0 * report["processed"] / report["total"])
            if report["finished"]:
                break
            report = catch_up_task(batches_per_task, batch_size, False)
        update_progress_artifact(progress_id, 100.0)
    create_table_artifact(
        key="portal-sync",
        table=[report],
        description="Portal sync: dossiers processed, sent, unchanged, rejected",
    )
    log.info(
        "portal-sync: %s",
        {k: report[k] for k in ("total", "processed", "sent", "unchanged", "rejected")},
    )
    return report
