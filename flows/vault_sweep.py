"""Batch flows of the result vault: the orphan sweep (scheduled) and corrections (operator-run)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from lienthong.vault.settings import get_vault_settings
from lienthong.vault.sweep import sweep_orphans
from tasks.vault import correct_result_task, store

# Suggested schedule of the vault-sweep deployment: nightly, after the working day.
SWEEP_CRON = "30 2 * * *"


@task(name="vault: sweep orphaned objects", cache_policy=NO_CACHE)
def sweep_task(grace_hours: float, dry_run: bool) -> list[dict[str, Any]]:
    removed = sweep_orphans(store(), grace=timedelta(hours=grace_hours), dry_run=dry_run)
    return [
        {
            "key": o.key,
            "bytes": o.size,
            "modified": o.modified.isoformat(),
            "action": "listed" if dry_run else "deleted",
        }
        for o in removed
    ]


@flow(
    name="vault-sweep",
    description="Delete vault objects no result refers to, older than a grace period.",
)
def vault_sweep(grace_hours: float | None = None, dry_run: bool = False) -> dict[str, Any]:
    grace = get_vault_settings().orphan_grace_hours if grace_hours is None else grace_hours
    rows = sweep_task(grace, dry_run)
    create_table_artifact(
        key="vault-sweep",
        table=rows or [{"key": "", "bytes": 0, "modified": "", "action": "no orphaned objects"}],
        description=f"Orphaned vault objects older than {grace:g} h ({'dry run' if dry_run else 'deleted'})",
    )
    get_run_logger().info(
        "vault-sweep: %d orphaned object(s) %s", len(rows), "found" if dry_run else "deleted"
    )
    return {"orphans": len(rows), "bytes": sum(r["bytes"] for r in rows), "dry_run": dry_run}


@flow(
    name="vault-correction",
    flow_run_name="vault-correction · {address}",
    description="Publish a corrected result version and list what must be re-issued.",
)
def vault_correction(
    address: str,
    reason: str,
    actor: str,
    data: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return correct_result_task(address, reason, actor, data, changes)
