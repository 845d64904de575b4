"""Tasks around the accountability core: deadline sweep, notifications, forms, portal sync, index.

Retries here are for what may pass (a locked row, a portal outage, a gateway hiccup); the core
functions are idempotent, so a retried task never warns, drafts or sends twice.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from lienthong.forms import render_form
from lienthong.index.report import build_report, index_rows
from lienthong.notify import relay
from lienthong.portal.client import PortalError
from lienthong.portal.sync import catch_up, sync_changed
from lienthong.sweep import approve_apology, sweep
from tasks.retry import retrying


def _retry_outage(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except PortalError:
        return True
    except Exception:  # noqa: BLE001 - content problems are not fixed by waiting
        return False
    return False


@task(name="deadline sweep", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def sweep_task() -> dict[str, Any]:
    report = sweep()
    return {
        "at": report.at.isoformat(),
        "open_dossiers": report.open_dossiers,
        "open_steps": report.open_steps,
        "rows": report.as_rows(),
        "apology_drafts": [c for c, _ in report.apology_drafts],
        "attributions": report.attributions,
    }


@task(
    name="send notifications",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    cache_policy=NO_CACHE,
)
def relay_task() -> dict[str, int]:
    return relay()


@task(name="render form", cache_policy=NO_CACHE, **retrying(others=1))
def render_form_task(dossier_code: str, form: str) -> str:
    return str(render_form(dossier_code, form))


@task(name="approve apology (Form 04)", cache_policy=NO_CACHE)
def approve_apology_task(
    dossier_code: str, approved: bool, approver: str, new_due: datetime | None, reason: str | None
) -> dict[str, Any]:
    decision = approve_apology(
        dossier_code,
        approved=approved,
        approver=approver,
        new_due=new_due,
        reason=reason,
        render=lambda code: str(render_form(code, "04")),
    )
    return {
        "dossier_code": decision.dossier_code,
        "approved": decision.approved,
        "new_due": decision.new_due.isoformat() if decision.new_due else None,
        "form": decision.form_path,
        "within_legal_time": decision.within_legal_time,
    }


@task(
    name="portal: catch-up batches",
    retries=5,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_condition_fn=_retry_outage,
    cache_policy=NO_CACHE,
)
def catch_up_task(
    batches: int, batch_size: int | None = None, reset: bool = False
) -> dict[str, Any]:
    """Up to ``batches`` batches from the stored checkpoint; a retry resumes where it stopped."""
    return catch_up(max_batches=batches, batch_size=batch_size, reset=reset).as_dict()


@task(
    name="portal: sync changed dossiers",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_condition_fn=_retry_outage,
    cache_policy=NO_CACHE,
)
def sync_changed_task(batch_size: int | None = None) -> dict[str, Any]:
    return sync_changed(batch_size=batch_size).as_dict()


@task(name="service index", retries=1, cache_policy=NO_CACHE)
def compute_index_task(date_from: date, date_to: date, agency: str | None = None) -> dict[str, Any]:
    report = build_report(date_from, date_to, agency=agency)
    out = report.as_json()
    out["index_rows"] = index_rows(report.province)
    return out
