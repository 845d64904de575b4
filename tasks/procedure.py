"""Tasks of the procedure flow around ``lienthong.routing``: retries for agencies that fail for a
while, one task run per agency step named after the agency and its action, and the typed inputs a
suspended run waits for (an asynchronous agency's result, an operator's approval)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from prefect.tasks import exponential_backoff
from pydantic import Field

from lienthong.agencies.client import HttpAgencyClient
from lienthong.catalog import StepSpec
from lienthong.db import is_outage
from lienthong.db.store import get_row
from lienthong.errors import AgencyError
from lienthong.routing import AgencyResultInvalid, ApprovalInvalid, Decision, Progress, Routing, StepOutcome
from lienthong.settings import get_settings
from tasks.retry import failure, retrying

# An answer that cannot be applied: asked again, never retried as it is.
_INVALID = (AgencyResultInvalid, ApprovalInvalid)


class AgencyResultInput(RunInput):
    """An asynchronous agency's result for one step: the body of ``POST /v1/steps/{ref}/result``
    (``lienthong.gateway.schemas.StepResultBody``), which the gateway's relay hands to the run
    suspended on the agencies' wave (``agency-{ref}[-{ref}...]``, one key for every step it waits
    for). An operator entering a result by hand names the step (``step_ref``) when several wait."""

    step_ref: str | None = Field(default=None, description="Mã bước có kết quả (khi chờ nhiều cơ quan cùng lúc)")
    state: Literal["done", "refused"] = Field(description="done: đã giải quyết; refused: từ chối giải quyết")
    result: dict[str, Any] = Field(default_factory=dict, description="Dữ liệu kết quả theo danh mục của bước")
    reason: str | None = Field(default=None, description="Lý do từ chối (bắt buộc khi từ chối)")
    ticket: str | None = Field(default=None, description="Số phiếu của cơ quan")
    request_id: str | None = Field(default=None, description="Mã yêu cầu đã gửi cơ quan")
    finished_at: datetime | None = Field(default=None, description="Thời điểm cơ quan giải quyết xong")


class ApprovalInput(RunInput):
    """Phê duyệt kết quả của bước xử lý (the operator's form of a run suspended on ``approval-{ref}``).

    The agency has produced its result; the person the catalog names (``approval:``, e.g. the
    civil-status officer who signs a birth registration) decides:

    - ``approve``: đồng ý, ký duyệt: the step is done and the dossier goes on;
    - ``refuse``: từ chối, with ``reason`` (required): the step is refused, the dossier stops and
      the citizen receives the refusal notice (Form 03) with that reason;
    - ``supplement``: yêu cầu bổ sung, with ``reason`` naming what is missing (required): the
      appraisal-phase request for supplement (Form 02) goes to the citizen, and when the
      supplement arrives the same decision is asked again.

    ``officer`` (họ tên công chức) is recorded with the time of the decision in the step's record
    and the dossier's timeline. An answer that cannot be applied (a refusal without reason) is asked
    again under ``approval-{ref}-2``, ``-3``, ...; the first ask is always ``approval-{ref}``.
    """

    decision: Literal["approve", "refuse", "supplement"] = Field(
        default="approve", title="Quyết định",
        description="approve: đồng ý ký duyệt · refuse: từ chối giải quyết (ghi rõ lý do) · "
        "supplement: yêu cầu công dân bổ sung hồ sơ (ghi rõ nội dung cần bổ sung)")
    officer: str = Field(min_length=1, max_length=200, title="Họ tên công chức",
                         description="Họ tên công chức ra quyết định (được ghi vào lịch sử hồ sơ)")
    reason: str | None = Field(default=None, max_length=2000, title="Lý do / nội dung cần bổ sung",
                               description="Bắt buộc khi từ chối hoặc yêu cầu bổ sung; gửi đến công dân")
    note: str | None = Field(default=None, max_length=2000, title="Ghi chú",
                             description="Ghi chú nội bộ (không gửi công dân)")


@lru_cache(maxsize=4)
def _client(base_url: str) -> HttpAgencyClient:
    return HttpAgencyClient(base_url)


def routing() -> Routing:
    settings = get_settings()
    return Routing(client=_client(settings.agency_api_url), poll_seconds=settings.agency_poll_seconds,
                   modes=settings.agency_modes, callback_base_url=settings.callback_base_url,
                   approval_policy=settings.approval_policy)


def _retry_agency_errors(task: Any, task_run: Any, state: Any) -> bool:
    """Retry what may pass (the agency is down or busy, our database is unreachable); a refused
    request is final, and anything else is not worth retrying."""
    exc = failure(state)
    return isinstance(exc, AgencyError) or (exc is not None and is_outage(exc))


@task(name="dossier-status", cache_policy=NO_CACHE, **retrying(others=3))
def dossier_status(dossier_code: str) -> int:
    return int(routing().status(dossier_code))


@task(name="dossier-progress", cache_policy=NO_CACHE, **retrying(others=3),
      task_run_name="dossier-progress [{dossier_code}]")
def dossier_progress(dossier_code: str) -> Progress:
    """What is left of the dossier, read once per execution of its run: its steps as they stand,
    and which done steps the vault holds every result of (those are not published again)."""
    from dataclasses import replace

    from sqlalchemy import select

    from lienthong.db import session_scope
    from lienthong.vault.index import VaultResult

    r = routing()
    progress = r.progress(dossier_code)
    done = [k for k, o in progress.steps.items() if o.state == "done"]
    if not done:
        return progress
    with session_scope() as s:
        held = set(s.execute(select(VaultResult.source_step, VaultResult.result_code).where(
            VaultResult.source_dossier_code == dossier_code)).tuples())
        procedure = r.catalog.for_dossier(get_row(s, dossier_code))
    published = {k for k in done if all((k, res.code) in held for res in procedure.step(k).results)}
    return replace(progress, published=frozenset(published))


@task(name="begin-processing", cache_policy=NO_CACHE, **retrying(others=3))
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
def agency_step(dossier_code: str, step_key: str) -> StepOutcome:
    return routing().run_step(dossier_code, step_key)


def agency_step_for(spec: StepSpec, dossier_code: str):  # type: ignore[no-untyped-def]
    """The step task, named in the UI after its agency and action. No ``agency:<code>`` tag: a
    tagged task run asks the API for a concurrency slot of its tag (one POST each) though no limit
    exists; the name already says the agency, and a limit, once needed, would bring its tag back."""
    return agency_step.with_options(
        name=f"{spec.agency}: {spec.action}",
        task_run_name=f"{spec.agency}: {spec.action} [{dossier_code}]",
    )


@task(name="finish-dossier", cache_policy=NO_CACHE, **retrying(others=3))
def finish_dossier(dossier_code: str, outcomes: list[StepOutcome]) -> int:
    return int(routing().finish(dossier_code, outcomes))


@task(name="stored-agency-results", cache_policy=NO_CACHE, **retrying(others=3),
      task_run_name="stored-agency-results [{dossier_code}]")
def stored_agency_results(dossier_code: str, step_refs: list[str]) -> dict[str, dict[str, Any]]:
    """The callbacks the gateway received already for these steps, by step ref (those the run then
    need not wait for)."""
    from lienthong.db import session_scope
    from lienthong.gateway.views import stored_step_result

    with session_scope() as s:
        found = {ref: stored_step_result(ref, session=s) for ref in step_refs}
    return {ref: body for ref, body in found.items() if body is not None}


@task(name="agency-result", cache_policy=NO_CACHE, **retrying(others=3, never=_INVALID),
      task_run_name="agency-result · {step_key} [{dossier_code}]")
def agency_result(dossier_code: str, step_key: str, body: dict[str, Any]) -> StepOutcome:
    return routing().close_from_result(dossier_code, step_key, body)


@task(name="approval-decision", cache_policy=NO_CACHE, **retrying(others=3, never=_INVALID),
      task_run_name="approval · {step_key} [{dossier_code}]")
def approval_decision(dossier_code: str, step_key: str, decision: Decision) -> StepOutcome:
    return routing().decide(dossier_code, step_key, decision)


@task(name="approval-supplement-round", cache_policy=NO_CACHE, **retrying(others=3))
def approval_supplement_round(dossier_code: str, step_key: str, key: str) -> int:
    return routing().note_supplement_round(dossier_code, step_key, key)
