"""Batch flow ``digitize-backlog``: digitize the pending paper components of many dossiers in one
run, with a progress artifact for the UI and a progress bar on the terminal.

The OCR fans out on Dask (Prefect's ``DaskTaskRunner``): every page of every pending component is
an ``ocr-page`` task on a Dask worker, a local cluster by default (one single-threaded worker
process per core) or the scheduler named by ``LIENTHONG_DASK_ADDRESS``. The flow's own process
opens the files, puts each component's pages back together (searchable PDF, text, fields, the
quality gate) and records it in the database as soon as its last page is read. Remote Dask workers
must see the intake directory (``LIENTHONG_VAR_DIR``) at the same path; page PDFs come back in the
task results.
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect_dask import DaskTaskRunner

from lienthong.digitize import components as core
from lienthong.settings import get_settings
from tasks.digitize import _config, pages_on_task_runner

# Suggested schedule of the deployment: every 30 minutes in working hours, Monday to Saturday
# (one-stop departments receive on Saturday mornings), in Asia/Ho_Chi_Minh time.
BACKLOG_CRON = "*/30 7-18 * * 1-6"
BACKLOG_TIMEZONE = "Asia/Ho_Chi_Minh"


class OcrDaskRunner(DaskTaskRunner):
    """Prefect's DaskTaskRunner, pointed by the settings when a flow run starts (not at import):
    ``LIENTHONG_DASK_ADDRESS`` names a running scheduler; otherwise a local cluster of
    ``LIENTHONG_DASK_WORKERS`` (0: one per core) single-threaded worker processes, one tesseract
    each, is started for the run and closed after it."""

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self._want_address, self._want_workers = address, workers
        super().__init__()

    def duplicate(self) -> OcrDaskRunner:
        return type(self)(self._want_address, self._want_workers)

    def __enter__(self) -> OcrDaskRunner:
        st = get_settings()
        address = self._want_address or st.dask_address
        if address:
            self.address = address
        else:
            n = self._want_workers or st.dask_workers or os.cpu_count() or 1
            self.cluster_kwargs = {
                "n_workers": n,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        super().__enter__()
        return self


@task(name="find-digitize-backlog", cache_policy=NO_CACHE)
def find_backlog(limit: int) -> list[str]:
    return core.dossiers_with_pending(limit)


@flow(
    name="digitize-backlog",
    task_runner=OcrDaskRunner(),
    description="Số hóa các thành phần hồ sơ giấy còn tồn (digitize pending paper components).",
)
def digitize_backlog(
    max_dossiers: int = 200, dossier_codes: list[str] | None = None
) -> dict[str, Any]:
    logger = get_run_logger()
    codes = dossier_codes or find_backlog(max_dossiers)  # called, not submitted: runs right here
    pending = {code: core.pending_components(code) for code in codes}
    dossier_of = {cid: code for code, ids in pending.items() for cid in ids}
    total = len(dossier_of)
    artifact = create_progress_artifact(
        0.0, description=f"Số hóa {total} thành phần của {len(codes)} hồ sơ tồn"
    )
    from rich.progress import Progress

    done = 0
    with Progress(transient=True) as bar:
        tid = bar.add_task("digitize-backlog", total=total or 1)

        def progress(_outcome: dict[str, Any]) -> None:
            nonlocal done
            done += 1
            bar.update(tid, completed=done)
            update_progress_artifact(
                artifact, 100.0 * done / max(total, 1), description=f"{done}/{total} thành phần"
            )

        outcomes = core.digitize_components(
            list(dossier_of), _config(), run_pages=pages_on_task_runner, on_outcome=progress
        )
    summaries = [
        core.summarize(code, [o for o in outcomes if dossier_of[o["component_id"]] == code])
        for code in codes
    ]
    totals = {
        "dossiers": len(codes),
        "digitized": sum(len(s["digitized"]) for s in summaries),
        "needs_review": sum(len(s["needs_review"]) - len(s["rejected"]) for s in summaries),
        "rejected": sum(len(s["rejected"]) for s in summaries),
        "pages": sum(o.get("pages", 0) for o in outcomes),
    }
    if not total:
        update_progress_artifact(artifact, 100.0, description="Không có hồ sơ tồn")
    review_rows = [
        {"dossier": s["dossier_code"], "component_id": r["component_id"], "reasons": "; ".join(r["reasons"])}
        for s in summaries
        for r in s["needs_review"]
    ]
    if review_rows:
        create_table_artifact(
            key="digitize-backlog-review",
            table=review_rows,
            description="Thành phần cần cán bộ kiểm tra hoặc yêu cầu bổ sung",
        )
    logger.info("digitize-backlog: %s", totals)
    return totals
