"""Prefect tasks around :mod:`lienthong.digitize`: digitize a component or a dossier's paper
components, and the operator's review form (a ``wait_for_input`` model) for weak results.

Usage in the procedure flow::

    summary = digitize_dossier(dossier_code)
    for item in summary["needs_review"]:
        decision = pause_flow_run(wait_for_input=review_input(item["component_id"]), timeout=...)
        apply_review_decision(item["component_id"], decision)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.input import RunInput
from pydantic import Field

from lienthong.digitize import components as core
from lienthong.digitize.config import DigitizeConfig, load_config
from lienthong.digitize.fields import field_labels
from lienthong.digitize.jobs import OcrParams, PageJob
from lienthong.digitize.result import PageResult
from lienthong.digitize.worker import run_page_detached
from lienthong.privacy import mask_ids_in_text
from lienthong.settings import get_settings
from tasks.retry import retrying


def _config() -> DigitizeConfig:
    """Forking a Prefect worker (engine and API-client threads running) is unsafe, so its page
    pool starts from a clean fork server; the one-time start costs ~0.3 s per worker process."""
    cfg = load_config()
    if cfg.ocr.start_method == "fork":
        cfg = load_config(ocr={"start_method": "forkserver"})
    return cfg


@task(name="digitize-component", cache_policy=NO_CACHE, **retrying(others=2, delays=(5, 5, 15, 30, 30)))
def digitize_component(component_id: int) -> dict[str, Any]:
    """Digitize one component; a bad file comes back as ``status="rejected"`` with its reason."""
    (outcome,) = core.digitize_components([component_id], _config()) or [
        {"component_id": component_id, "status": "skipped"}
    ]
    get_run_logger().info("component %s: %s", component_id, outcome["status"])
    return outcome


@task(
    name="digitize-dossier",
    task_run_name="digitize-{dossier_code}",
    cache_policy=NO_CACHE,
    **retrying(others=2, delays=(5, 5, 15, 30, 30)),
)
def digitize_dossier(dossier_code: str) -> dict[str, Any]:
    """Digitize every paper component of the dossier that has a file and is not yet digitized.

    Returns ``{"dossier_code", "digitized": [ids], "needs_review": [{"component_id", "reasons"}],
    "rejected": [{"component_id", "error", "reason"}], "components": [...]}``. Idempotent: a re-run
    (after a suspend) skips what is done or already judged for the same file.
    """
    summary = core.digitize_dossier(dossier_code, _config())
    get_run_logger().info(
        "dossier %s: %d digitized, %d to review, %d rejected",
        dossier_code,
        len(summary["digitized"]),
        len(summary["needs_review"]),
        len(summary["rejected"]),
    )
    return summary


@task(name="components-to-review", cache_policy=NO_CACHE, **retrying(),
      task_run_name="components-to-review · {dossier_code}")
def components_to_review(dossier_code: str) -> list[dict[str, Any]]:
    """The components an operator must review before the dossier goes on, each with its suspend
    key (see :func:`lienthong.digitize.components.awaiting_review`)."""
    return core.awaiting_review(dossier_code)


@task(name="ocr-page", cache_policy=NO_CACHE, persist_result=False)
def ocr_page(job: PageJob, params: OcrParams) -> PageResult:
    """One page's OCR where the flow's task runner puts it (a Dask worker for digitize-backlog).
    The page PDF comes back in the result: the worker need not share the flow's scratch space."""
    return run_page_detached(job, params)


def pages_on_task_runner(jobs: list[PageJob], params: OcrParams) -> Iterator[PageResult]:
    """A :data:`~lienthong.digitize.pipeline.RunPages` submitting each page as an ``ocr-page`` task
    to the running flow's task runner; results as they finish. Call it from the flow's body."""
    futures = [ocr_page.submit(job, params) for job in jobs]
    job_of = {id(f): job for f, job in zip(futures, jobs, strict=True)}
    for fut in as_completed(futures):
        try:
            yield fut.result()
        except Exception as exc:  # noqa: BLE001 - a lost worker fails one page, not the batch
            job = job_of[id(fut)]
            detail = f"{type(exc).__name__}: {exc}"[:300]
            yield PageResult.failed(job.file_index, job.index, "ocr_failed", detail)


class ReviewDecision(RunInput):
    """An operator's review of a digitized component (kiểm tra kết quả số hóa)."""

    confirmed: bool = Field(True, title="Xác nhận", description="Kết quả số hóa đúng (sau khi sửa)")
    fields: dict[str, str] = Field(
        default_factory=dict, title="Các trường", description="Sửa giá trị nếu nhận dạng sai"
    )
    reject: bool = Field(
        False,
        title="Yêu cầu bổ sung",
        description="Bản quét không dùng được: yêu cầu công dân nộp lại",
    )
    note: str = Field("", title="Ghi chú", description="Lý do hoặc ghi chú của cán bộ")


def review_description(review: dict[str, Any], *, max_chars: int = 4000) -> str:
    """Markdown for the review form: why it needs a person, the fields, and the page text.

    The page text is shown as read (the operator compares it with the paper); citizen ID numbers
    are masked when personal data masking is on, since Prefect keeps this text in its database.
    """
    mask = get_settings().mask_personal_data
    labels = field_labels(review["form"]) if review.get("form") else {}
    lines = [
        f"### Kiểm tra số hóa: {review['code']} — {review['name']}",
        f"Độ tin cậy: **{review.get('confidence') or 0:.1f}/100**",
        "",
    ]
    reasons = [r["message_vi"] for r in review.get("reasons", [])]
    if review.get("error"):
        reasons.append(review["error"]["message_vi"])
        reasons.append("Tệp không đọc được nên không thể xác nhận: hồ sơ sẽ được yêu cầu bổ sung.")
    if reasons:
        lines += ["**Lý do cần kiểm tra:**", *[f"- {r}" for r in reasons], ""]
    if review.get("fields"):
        lines += ["| Trường | Giá trị | Độ tin cậy |", "|---|---|---|"]
        for name, f in review["fields"].items():
            value = str(f.get("value") if f.get("value") is not None else "")
            value = mask_ids_in_text(value) if mask else value
            lines.append(f"| {labels.get(name, name)} | {value} | {f.get('confidence', 0):.2f} |")
        lines.append("")
    text = "\n\n".join(f"--- Trang {i + 1} ---\n{t}" for i, t in enumerate(review.get("pages", [])))
    text = mask_ids_in_text(text) if mask else text
    if len(text) > max_chars:
        text = text[:max_chars] + "\n…"
    lines += ["**Nội dung nhận dạng:**", "```", text.replace("```", "'''"), "```"]
    return "\n".join(lines)


def review_input(component_id: int) -> type[ReviewDecision]:
    """The ``wait_for_input`` model for a component, prefilled with its extracted fields."""
    review = core.component_review(component_id)
    values = {
        k: "" if v.get("value") is None else str(v["value"]) for k, v in review["fields"].items()
    }
    return ReviewDecision.with_initial_data(
        description=review_description(review), fields=values, confirmed=review.get("error") is None
    )


@task(name="apply-review-decision", cache_policy=NO_CACHE, **retrying())
def apply_review_decision(
    component_id: int, decision: ReviewDecision | dict[str, Any]
) -> dict[str, Any]:
    """Store the operator's decision on the component (fields corrected, or refused)."""
    d = decision if isinstance(decision, dict) else json.loads(decision.model_dump_json())
    review = core.component_review(component_id)
    old = {
        k: "" if v.get("value") is None else str(v["value"]) for k, v in review["fields"].items()
    }
    corrections = {k: v for k, v in (d.get("fields") or {}).items() if old.get(k) != v}
    return core.apply_review(
        component_id,
        bool(d.get("confirmed", True)),
        corrections,
        reject=bool(d.get("reject", False)),
        note=str(d.get("note", "")),
    )
