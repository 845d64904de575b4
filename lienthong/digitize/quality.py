"""The quality gate: weak pages, weak or missing fields, and Vietnamese text whose diacritics look
broken send a component to a person (an operator step) instead of onward."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from lienthong.digitize.config import DigitizeConfig
from lienthong.digitize.result import PageResult

# Initial consonant, vowel nucleus, final consonant of a Vietnamese syllable (tones removed).
_SYLLABLE = re.compile(
    r"^(ngh|ng|nh|ch|gh|gi|kh|ph|qu|th|tr|b|c|d|đ|g|h|k|l|m|n|p|r|s|t|v|x)?"
    r"[aăâeêioôơuưy]{1,3}(ng|nh|ch|c|m|n|p|t)?$"
)
_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
_SPACING_MARKS = set("´`~^¨ˆ˜")


@lru_cache(maxsize=8192)
def strip_tones(word: str) -> str:
    """Remove the five tone marks, keep the letters ă â ê ô ơ ư đ (lower case)."""
    d = unicodedata.normalize("NFD", word.lower())
    return unicodedata.normalize("NFC", "".join(c for c in d if c not in _TONES))


@lru_cache(maxsize=8192)  # label phrases are folded for every row of every page: fold each once
def deaccent(text: str) -> str:
    """ASCII folding for matching labels: 'Họ và tên mẹ' -> 'ho va ten me'."""
    d = unicodedata.normalize("NFD", text.lower().replace("đ", "d").replace("Đ", "d"))
    return "".join(c for c in d if unicodedata.category(c) != "Mn")


@dataclass(frozen=True)
class DiacriticsCheck:
    words: int
    plain_share: float  # syllables without any Vietnamese letter or tone mark
    invalid_share: float  # words that cannot be a Vietnamese syllable, or stray accent marks
    broken: bool


def diacritics_check(text: str, cfg: DigitizeConfig) -> DiacriticsCheck:
    """Does this OCR text look like Vietnamese with its diacritics intact?"""
    c = cfg.quality.diacritics
    words, plain, invalid = 0, 0, 0
    for raw in text.split():
        if any(ch in _SPACING_MARKS for ch in raw) and not any(ch.isalnum() for ch in raw):
            words += 1
            invalid += 1
            continue
        w = raw.strip(".,:;!?()[]\"'«»-–/")
        if not w or not w.isalpha():
            continue
        if w.isupper() and w.isascii() and len(w) <= 5:  # abbreviations: CCCD, BHYT, TP, GCS
            continue
        words += 1
        if w.isascii():
            plain += 1
        if not _SYLLABLE.match(strip_tones(w)):
            invalid += 1
    if words == 0:
        return DiacriticsCheck(0, 0.0, 0.0, False)
    ps, inv = plain / words, invalid / words
    broken = words >= c.min_words and (ps > c.max_plain_share or inv > c.max_invalid_share)
    return DiacriticsCheck(words, round(ps, 3), round(inv, 3), broken)


@dataclass(frozen=True)
class Reason:
    code: str
    message_vi: str
    page: int | None = None  # from 1, as an official counts
    field: str | None = None
    value: float | None = None


def check_page(page: PageResult, cfg: DigitizeConfig) -> list[Reason]:
    """Reasons to review one page's OCR; a text-layer page or a blank page has none."""
    if page.source == "text_layer":
        return []
    q, n = cfg.quality, page.page
    out: list[Reason] = []
    words = page.word_count
    if words == 0:
        if page.ink_share > 0.003:
            out.append(Reason("no_text", f"Trang {n}: không nhận dạng được chữ nào.", n))
        return out
    conf = page.confidence
    if conf < q.page_min_confidence:
        out.append(
            Reason(
                "low_page_confidence",
                f"Trang {n}: độ tin cậy nhận dạng thấp ({conf:.0f}/100).",
                n,
                None,
                conf,
            )
        )
    low = page.low_confidence_share
    if low > q.max_low_confidence_share:
        out.append(
            Reason(
                "many_low_confidence_words",
                f"Trang {n}: {low:.0%} số từ có độ tin cậy thấp.",
                n,
                None,
                low,
            )
        )
    d = diacritics_check(page.text, cfg)
    if d.broken:
        out.append(
            Reason(
                "broken_diacritics",
                f"Trang {n}: dấu tiếng Việt có vẻ bị mất hoặc sai "
                f"({d.plain_share:.0%} âm tiết không dấu, {d.invalid_share:.0%} từ không hợp lệ).",
                n,
                None,
                d.plain_share,
            )
        )
    return out


def check_fields(
    fields: dict[str, dict[str, Any]],
    required: list[str],
    cfg: DigitizeConfig,
    labels: dict[str, str],
) -> list[Reason]:
    out: list[Reason] = []
    for name in required:
        if name not in fields or fields[name].get("value") in (None, ""):
            out.append(
                Reason(
                    "field_missing",
                    f"Không đọc được trường «{labels.get(name, name)}».",
                    None,
                    name,
                )
            )
    for name, f in fields.items():
        if f.get("value") not in (None, "") and f["confidence"] < cfg.quality.field_min_confidence:
            out.append(
                Reason(
                    "low_field_confidence",
                    f"Trường «{labels.get(name, name)}» có độ tin cậy thấp "
                    f"({f['confidence']:.2f}).",
                    f.get("page"),
                    name,
                    f["confidence"],
                )
            )
    return out


def reasons_as_dicts(reasons: list[Reason]) -> list[dict[str, Any]]:
    return [{k: v for k, v in asdict(r).items() if v is not None} for r in reasons]
