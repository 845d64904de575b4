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
from lienthong.errors import AgencyError
from lienthong.routing import AgencyResultInvalid, ApprovalInvalid, Decision, Routing, StepOutcome
from lienthong.settings import get_settings
from tasks.retry import failure, retrying

# An answer that cannot be applied: asked again, never retried as it is.
_INVALID = (AgencyResultInvalid, ApprovalInvalid)


class AgencyResultInput(RunInput):
    """An asynchronous agency's result for one step: the body of ``POST /v1/steps/{ref}/result``
    (``lienthong.gateway.schemas.StepResultBody``), which the gateway's relay hands to the run
    suspended on ``agency-{ref}``."""

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
def agency_step(dossier_code: str, step_key: str) -> dict[str, Any]:
    outcome = routing().run_step(dossier_code, step_key)
    return outcome.__dict__


def agency_step_for(spec: StepSpec, dossier_code: str):  # type: ignore[no-untyped-def]
    """The step task, named in the UI after its agency and action. No ``agency:<code>`` tag: a
    tagged task run asks the API for a concurrency slot of its tag (one POST each) though no limit
    exists; the name already says the agency, and a limit, once needed, would bring its tag back."""
    return agency_step.with_options(
        name=f"{spec.agency}: {spec.action}",
        task_run_name=f"{spec.agency}: {spec.action} [{dossier_code}]",
    )


@task(name="finish-dossier", cache_policy=NO_CACHE, **retrying(others=3))
def finish_dossier(dossier_code: str, outcomes: list[dict[str, Any]]) -> int:
    return int(routing().finish(dossier_code, [StepOutcome(**o) for o in outcomes]))


@task(name="stored-agency-result", cache_policy=NO_CACHE, **retrying(others=3))
def stored_agency_result(step_ref: str) -> dict[str, Any] | None:
    """The agency's callback, if the gateway received it already (then the run need not wait)."""
    from lienthong.gateway.views import stored_step_result

    return stored_step_result(step_ref)


@task(name="agency-result", cache_policy=NO_CACHE, **retrying(others=3, never=_INVALID),
      task_run_name="agency-result · {step_key} [{dossier_code}]")
def agency_result(dossier_code: str, step_key: str, body: dict[str, Any]) -> dict[str, Any]:
    return routing().close_from_result(dossier_code, step_key, body).__dict__


@task(name="approval-decision", cache_policy=NO_CACHE, **retrying(others=3, never=_INVALID),
      task_run_name="approval · {step_key} [{dossier_code}]")
def approval_decision(dossier_code: str, step_key: str, decision: dict[str, Any]) -> dict[str, Any]:
    return routing().decide(dossier_code, step_key, Decision(**decision)).__dict__


@task(name="approval-supplement-round", cache_policy=NO_CACHE, **retrying(others=3))
def approval_supplement_round(dossier_code: str, step_key: str, key: str) -> int:
    return routing().note_supplement_round(dossier_code, step_key, key)


@task(name="awaiting-approval-supplement", cache_policy=NO_CACHE, **retrying(others=3))
def awaiting_approval_supplement(dossier_code: str) -> bool:
    return routing().awaiting_approval_supplement(dossier_code)
