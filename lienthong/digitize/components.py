"""Digitizing a dossier's paper components (thành phần hồ sơ giấy) and recording the outcome on
their rows. A bad file never raises: the component is marked ``rejected`` with the Vietnamese
reason, and the dossier is kept so the official can ask for a supplement."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lienthong.db import session_scope
from lienthong.db.models import ComponentRow, DossierRow
from lienthong.digitize.config import DigitizeConfig, load_config
from lienthong.digitize.errors import DigitizeError
from lienthong.digitize.fields import COMPONENT_FORMS
from lienthong.digitize.intake import check_name, resolve_file_ref
from lienthong.digitize.pipeline import FileResult, RunPages, digitize_files
from lienthong.settings import get_settings

log = logging.getLogger(__name__)

DIGITIZED, NEEDS_REVIEW, REJECTED = "digitized", "needs_review", "rejected"


def output_dir(dossier_code: str) -> Path:
    return get_settings().var_dir / "digitized" / check_name(dossier_code)


def _is_pending(c: ComponentRow) -> bool:
    if not c.paper or not c.file_ref or c.digitized:
        return False
    done = (c.meta or {}).get("digitize", {})
    # Already judged for this very file (rejected or waiting for review): a re-run must not redo it.
    return not (c.status in (REJECTED, NEEDS_REVIEW) and done.get("file_ref") == c.file_ref)


def pending_components(dossier_code: str) -> list[int]:
    """Ids of the dossier's paper components that have a file and are not digitized yet."""
    with session_scope() as s:
        rows = s.scalars(
            select(ComponentRow)
            .join(DossierRow)
            .where(DossierRow.code == dossier_code)
            .order_by(ComponentRow.id)
        ).all()
        return [c.id for c in rows if _is_pending(c)]


def review_key(component_id: int, file_ref: str) -> str:
    """The suspend key of a component's review: the same for the same file, so that a resumed run
    finds the answer it was given, and another for a new file handed in with a supplement."""
    return f"review-{component_id}-{hashlib.sha256(file_ref.encode()).hexdigest()[:12]}"


def awaiting_review(dossier_code: str) -> list[dict[str, Any]]:
    """The dossier's components the quality gate held (for review, or a file it refused) whose
    current file no operator has reviewed yet: ``{"component_id", "key", "reasons"}``.

    Read from the database, not from one digitization's outcome: a run resumed after a review
    re-runs the flow from the top, where nothing is left to digitize, and must still find the
    question (and so the answer) again."""
    with session_scope() as s:
        rows = s.scalars(
            select(ComponentRow)
            .join(DossierRow)
            .where(DossierRow.code == dossier_code, ComponentRow.status.in_((NEEDS_REVIEW, REJECTED)))
            .order_by(ComponentRow.id)
        ).all()
        out = []
        for c in rows:
            d = (c.meta or {}).get("digitize", {})
            # "review" is the reader's verdict (true: to review) until an operator's answer, a
            # dict (see apply_review), replaces it.
            if not c.file_ref or d.get("file_ref") != c.file_ref or isinstance(d.get("review"), dict):
                continue
            reasons = [str(r.get("message_vi", "")) for r in d.get("reasons", [])]
            if d.get("error"):
                reasons.append(str(d["error"].get("message_vi") or d["error"].get("code", "")))
            out.append({"component_id": c.id, "key": review_key(c.id, c.file_ref), "reasons": reasons})
        return out


def dossiers_with_pending(limit: int = 100) -> list[str]:
    """Codes of dossiers that still have paper components to digitize (oldest first)."""
    with session_scope() as s:
        rows = s.execute(
            select(DossierRow.code, ComponentRow)
            .join(ComponentRow)
            .where(
                ComponentRow.paper.is_(True),
                ComponentRow.digitized.is_(False),
                ComponentRow.file_ref.is_not(None),
            )
            .order_by(DossierRow.received_at, DossierRow.id)
        ).all()
        codes: list[str] = []
        for code, comp in rows:
            if code not in codes and _is_pending(comp):
                codes.append(code)
            if len(codes) >= limit:
                break
        return codes


def _meta_of(res: FileResult, file_ref: str) -> dict[str, Any]:
    s = res.summary()
    s["file_ref"] = file_ref
    s["page_details"] = [p.details() for p in res.pages]
    return s


def digitize_components(
    component_ids: list[int],
    cfg: DigitizeConfig | None = None,
    *,
    run_pages: RunPages | None = None,
    on_outcome: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Digitize the given components together, whatever their dossiers: all their pages share the
    pool (or ``run_pages``, e.g. a Dask cluster), and each component is recorded as soon as its
    last page is read (``on_outcome`` is told). One outcome per component, in the given order."""
    cfg = cfg or load_config()
    roots = cfg.intake.roots()
    with session_scope() as s:
        rows = [
            (c.id, c.code, c.file_ref or "", c.dossier.code)
            for c in s.scalars(select(ComponentRow).where(ComponentRow.id.in_(component_ids)))
        ]
    outcomes: dict[int, dict[str, Any]] = {}

    def done(cid: int, outcome: dict[str, Any]) -> None:
        outcomes[cid] = outcome
        if on_outcome:
            on_outcome(outcome)

    todo: list[tuple[int, str, str, str, Path]] = []
    for cid, code, ref, dossier_code in rows:
        try:
            todo.append((cid, code, ref, dossier_code, resolve_file_ref(ref, roots)))
        except DigitizeError as exc:
            done(cid, _record_error(cid, ref, exc))

    def recorded(res: FileResult) -> None:
        cid, _code, ref, _dc, _p = todo[res.index]
        done(cid, _record_error(cid, ref, res.error) if res.error else _record(cid, ref, res))

    if todo:
        digitize_files(
            [it[4] for it in todo],
            output_dir(todo[0][3]),
            cfg,
            names=[it[4].name for it in todo],
            stems=[f"{it[1]}-{it[0]}" for it in todo],
            forms=[COMPONENT_FORMS.get(it[1]) for it in todo],
            out_dirs=[output_dir(it[3]) for it in todo],
            on_file=recorded,
            run_pages=run_pages,
        )
    return [outcomes[c] for c in component_ids if c in outcomes]


def _record(cid: int, ref: str, res: FileResult) -> dict[str, Any]:
    status = NEEDS_REVIEW if res.review else DIGITIZED
    with session_scope() as s:
        c = s.get(ComponentRow, cid)
        assert c is not None
        c.digitized = not res.review
        c.confidence = res.confidence
        c.status = status
        c.meta = {**(c.meta or {}), "digitize": _meta_of(res, ref)}
    log.info(
        "component %s digitized: %d pages, confidence %s, %s",
        cid,
        len(res.pages),
        res.confidence,
        status,
    )
    return {
        "component_id": cid,
        "status": status,
        "pages": len(res.pages),
        "confidence": res.confidence,
        "form": res.form,
        "reasons": res.reasons,
        "outputs": res.outputs,
    }


def _record_error(cid: int, ref: str, exc: DigitizeError) -> dict[str, Any]:
    with session_scope() as s:
        c = s.get(ComponentRow, cid)
        assert c is not None
        c.digitized = False
        c.status = REJECTED
        c.meta = {
            **(c.meta or {}),
            "digitize": {"file_ref": ref, "error": exc.as_dict()},
            "supplement_reason": exc.message_vi,
        }
    log.info("component %s rejected: %s", cid, exc.code)
    return {"component_id": cid, "status": REJECTED, "error": exc.code, "reason": exc.message_vi}


def summarize(dossier_code: str, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """The dossier-level summary the procedure flow acts on."""
    return {
        "dossier_code": dossier_code,
        "digitized": [o["component_id"] for o in outcomes if o["status"] == DIGITIZED],
        "needs_review": [
            {
                "component_id": o["component_id"],
                "reasons": [r["message_vi"] for r in o.get("reasons", [])] or [o.get("reason", "")],
            }
            for o in outcomes
            if o["status"] in (NEEDS_REVIEW, REJECTED)
        ],
        "rejected": [
            {"component_id": o["component_id"], "error": o["error"], "reason": o["reason"]}
            for o in outcomes
            if o["status"] == REJECTED
        ],
        "components": outcomes,
    }


def digitize_dossier(
    dossier_code: str, cfg: DigitizeConfig | None = None, *, run_pages: RunPages | None = None
) -> dict[str, Any]:
    """Digitize every pending paper component of a dossier; see :func:`summarize`."""
    ids = pending_components(dossier_code)
    return summarize(dossier_code, digitize_components(ids, cfg, run_pages=run_pages))


def component_review(component_id: int) -> dict[str, Any]:
    """What an operator needs to review a component: code, name, fields, page texts, reasons."""
    with session_scope() as s:
        c = s.get(ComponentRow, component_id)
        if c is None:
            raise KeyError(component_id)
        d = (c.meta or {}).get("digitize", {})
        return {
            "component_id": c.id,
            "code": c.code,
            "name": c.name,
            "status": c.status,
            "confidence": c.confidence,
            "form": d.get("form"),
            "fields": d.get("fields", {}),
            "reasons": d.get("reasons", []),
            "error": d.get("error"),
            "pages": [p.get("text", "") for p in d.get("page_details", [])],
        }


def apply_review(
    component_id: int,
    confirmed: bool,
    corrections: dict[str, Any] | None = None,
    reject: bool = False,
    note: str = "",
    reviewer: str = "operator",
) -> dict[str, Any]:
    """Record an operator's decision: confirmed (fields corrected) or refused for supplement.

    A file the digitizer refused (empty, corrupt, encrypted, too large, unsafe name) has nothing
    read from it to confirm: a confirmation leaves it refused for supplement, with the digitizer's
    reason unless the operator wrote one, so that it is never counted as digitized."""
    with session_scope() as s:
        c = s.get(ComponentRow, component_id)
        if c is None:
            raise KeyError(component_id)
        meta = dict(c.meta or {})
        d = dict(meta.get("digitize", {}))
        refused = d.get("error")
        if refused and not reject:
            log.warning(
                "component %s: a confirmation of a refused file (%s) stands as a supplement request",
                component_id,
                refused.get("error"),
            )
            reject, note = True, note or str(refused.get("message_vi") or "")
        fields = {k: dict(v) for k, v in d.get("fields", {}).items()}
        for name, value in (corrections or {}).items():
            old = fields.get(name, {})
            if old.get("value") != value:
                fields[name] = {**old, "value": value, "confidence": 1.0, "corrected": True}
        d["fields"] = fields
        d["review"] = {
            "confirmed": confirmed and not reject,
            "reject": reject,
            "note": note,
            "reviewer": reviewer,
            "corrected": sorted(corrections or {}),
        }
        meta["digitize"] = d
        if reject:
            c.status, c.digitized = REJECTED, False
            meta["supplement_reason"] = note or "Bản quét không đọc được, đề nghị nộp lại."
        elif confirmed:
            c.status, c.digitized = DIGITIZED, True
        c.meta = meta
        return {"component_id": c.id, "status": c.status, "fields": fields}
