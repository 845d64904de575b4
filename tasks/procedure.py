"""Tasks of the procedure flow around ``lienthong.routing``: retries for agencies that fail for a
while, one task run per agency step named after the agency and its action."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from lienthong.agencies.client import HttpAgencyClient
from lienthong.catalog import StepSpec
from lienthong.errors import AgencyError
from lienthong.routing import Routing, StepOutcome
from lienthong.settings import get_settings


@lru_cache(maxsize=4)
def _client(base_url: str) -> HttpAgencyClient:
    return HttpAgencyClient(base_url)


def routing() -> Routing:
    settings = get_settings()
    return Routing(client=_client(settings.agency_api_url), poll_seconds=settings.agency_poll_seconds)


def _retry_agency_errors(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what may pass (the agency is down or busy); a refused request is final."""
    try:
        state.result()
    except AgencyError:
        return True
    except Exception:  # noqa: BLE001 - anything else is not worth retrying
        return False
    return False


@task(name="dossier-status", retries=3, retry_delay_seconds=2, cache_policy=NO_CACHE)
def dossier_status(dossier_code: str) -> int:
    return int(routing().status(dossier_code))


@task(name="begin-processing", retries=3, retry_delay_seconds=2, cache_policy=NO_CACHE)
def begin_processing(dossier_code: str) -> int:
    return int(routing().begin(dossier_code))


@task(
    name="agency-step",
    retries=5,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_agency_errors,
    cache_policy=NO_CACHE,
)
def agency_step(dossier_code: str, step_key: str) -> dict[str, Any]:
    outcome = routing().run_step(dossier_code, step_key)
    return outcome.__dict__


def agency_step_for(spec: StepSpec, dossier_code: str):  # type: ignore[no-untyped-def]
    """The step task, named in the UI after its agency and action, tagged with the agency."""
    return agency_step.with_options(
        name=f"{spec.agency}: {spec.action}",
        task_run_name=f"{spec.agency}: {spec.action} [{dossier_code}]",
        tags=[f"agency:{spec.agency}"],
    )


@task(name="finish-dossier", retries=3, retry_delay_seconds=2, cache_policy=NO_CACHE)
def finish_dossier(dossier_code: str, outcomes: list[dict[str, Any]]) -> int:
    return int(routing().finish(dossier_code, [StepOutcome(**o) for o in outcomes]))
