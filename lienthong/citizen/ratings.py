"""Real-time satisfaction: the citizen rates a delivered dossier from its status page (the link of
the receipt, and of the "delivered" message), once.

The questions and answer levels are ``satisfaction:`` of ``config/service_index.yaml``. A rating
counts for the dossier's procedure and for every agency that acted on it (the steps' agencies and
the one-stop desk); indicator 5.4 of the index reads them (``lienthong.index``). Nothing personal
is asked or stored: answers are levels, keyed by the dossier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import JSON, Boolean, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lienthong.clock import get_clock
from lienthong.db.models import Base, DossierRow, StepRow
from lienthong.dossier import Status
from lienthong.errors import LienThongError
from lienthong.settings import get_settings

RECEPTION = "MOT_CUA"


class CitizenRating(Base):
    __tablename__ = "citizen_ratings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dossier_code: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    procedure_code: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    agencies: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    overall: Mapped[int] = mapped_column(Integer, nullable=False)
    disliked: Mapped[bool] = mapped_column(Boolean, nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    rated_at: Mapped[datetime] = mapped_column(nullable=False)


class RatingRefused(LienThongError):
    code = "rating_refused"


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    required: bool
    only_channel: str | None = None


@dataclass(frozen=True)
class RatingConfig:
    levels: dict[int, str]
    dislike_at_or_below: int
    overall: str
    questions: tuple[Question, ...]

    def applies(self, channel: str) -> list[Question]:
        return [q for q in self.questions if q.only_channel in (None, channel)]


@lru_cache(maxsize=4)
def _load(path: str) -> RatingConfig:
    with Path(path).open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)["satisfaction"]
    return RatingConfig(
        levels={int(lv["value"]): str(lv["label"]) for lv in raw["levels"]},
        dislike_at_or_below=int(raw["dislike_at_or_below"]),
        overall=str(raw["overall"]),
        questions=tuple(Question(str(q["id"]), q["text"], bool(q.get("required", False)), q.get("only_channel"))
                        for q in raw["questions"]),
    )


def get_config() -> RatingConfig:
    return _load(str(get_settings().config_dir / "service_index.yaml"))


def existing(session: Session, code: str) -> CitizenRating | None:
    return session.execute(select(CitizenRating).where(CitizenRating.dossier_code == code)).scalar_one_or_none()


def state(session: Session, row: DossierRow) -> dict[str, Any] | None:
    """What the page offers: None before delivery; else the questions, or the rating given."""
    if row.status != Status.RETURNED:
        return None
    cfg = get_config()
    done = existing(session, row.code)
    return {
        "rated": done is not None,
        "overall": done.overall if done else None,
        "levels": cfg.levels,
        "questions": [{"id": q.id, "text": q.text, "required": q.required} for q in cfg.applies(row.channel)],
    }


def rate(session: Session, row: DossierRow, answers: dict[str, Any], *, source: str = "status_page") -> CitizenRating:
    """Record the citizen's rating of a delivered dossier; refused before delivery, twice, or with an
    answer outside the questions and levels (the message says which, in Vietnamese)."""
    cfg = get_config()
    if row.status != Status.RETURNED:
        raise RatingRefused(f"{row.code} is not delivered yet",
                            message_vi="Hồ sơ chưa trả kết quả; Ông/Bà đánh giá sau khi nhận kết quả.")
    if existing(session, row.code) is not None:
        raise RatingRefused(f"{row.code} is rated already", message_vi="Hồ sơ này đã được đánh giá. Xin cảm ơn.")
    asked = {q.id: q for q in cfg.applies(row.channel)}
    clean: dict[str, int] = {}
    for qid, value in answers.items():
        if qid not in asked:
            raise RatingRefused(f"unknown question {qid!r}", message_vi="Câu hỏi đánh giá không hợp lệ.")
        try:
            level = int(value)
        except (TypeError, ValueError):
            level = -1
        if level not in cfg.levels:
            raise RatingRefused(f"answer {value!r} to {qid} is not a level",
                                message_vi="Mức đánh giá không hợp lệ.")
        clean[qid] = level
    missing = [q.text for q in asked.values() if q.required and q.id not in clean]
    if missing:
        raise RatingRefused(f"required answers missing: {len(missing)}",
                            message_vi="Vui lòng chọn mức hài lòng cho: " + "; ".join(missing) + ".")
    steps = session.execute(select(StepRow.agency).where(StepRow.dossier_id == row.id)).scalars()
    agencies = sorted({RECEPTION, *steps})
    overall = clean[cfg.overall] if cfg.overall in clean else min(clean.values())
    rating = CitizenRating(dossier_code=row.code, procedure_code=row.procedure_code, agencies=agencies,
                           answers=clean, overall=overall, disliked=min(clean.values()) <= cfg.dislike_at_or_below,
                           source=source[:16], rated_at=get_clock().now())
    session.add(rating)
    session.flush()
    return rating


def form_html(token: str, offer: dict[str, Any], error: str | None = None) -> str:
    """The rating section of the status page: a plain form (no script) posting to the page."""
    if offer["rated"]:
        label = offer["levels"].get(offer["overall"], "")
        return (f"<section id='rating'><h2>Đánh giá mức độ hài lòng</h2><p id='rated'>Ông/Bà đã đánh giá: "
                f"<b>{escape(label)}</b>. Xin cảm ơn.</p></section>")
    parts = [f"<section id='rating'><h2>Đánh giá mức độ hài lòng</h2>"
             f"<form method='post' action='/tra-cuu/{escape(token)}/danh-gia'>"]
    if error:
        parts.append(f"<p id='rating-error' class='refused'>{escape(error)}</p>")
    for q in offer["questions"]:
        opts = "".join(
            f"<label><input type='radio' name='q{escape(q['id'])}' value='{v}'"
            f"{' required' if q['required'] else ''}> {escape(lbl)}</label>"
            for v, lbl in sorted(offer["levels"].items(), reverse=True)
        )
        parts.append(f"<fieldset><legend>{escape(q['text'])}{' *' if q['required'] else ''}</legend>"
                     f"<div class='opts'>{opts}</div></fieldset>")
    parts.append("<button type='submit' id='send-rating'>Gửi đánh giá</button>"
                 "<p class='note'>* bắt buộc. Đánh giá không ghi tên, chỉ gắn với mã hồ sơ.</p></form></section>")
    return "".join(parts)
