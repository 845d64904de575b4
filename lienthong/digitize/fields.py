"""Known forms to typed fields, from tesseract's word boxes (TSV): giấy chứng sinh (hospital birth
certificate) and giấy báo tử (death notice).

Words are grouped into visual rows by position (not by tesseract's blocks, which split two-column
rows), labels are found on each row by accent-insensitive fuzzy matching, and the value is the words
between a label and the next label. A field's confidence is its words' mean OCR confidence, scaled
by how well the label matched, and zero when the value does not parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any

from lienthong.digitize.quality import deaccent
from lienthong.digitize.result import PageResult, Word


@dataclass(frozen=True)
class Label:
    field: str
    phrase: str  # as printed, with its colon
    parse: str  # name of a parser below
    name_vi: str


def _L(field: str, phrase: str, parse: str = "text") -> Label:
    return Label(field, phrase, parse, phrase.rstrip(":"))


FORMS: dict[str, dict[str, Any]] = {
    "birth_certificate": {
        "title": "giay chung sinh",
        "name_vi": "Giấy chứng sinh",
        "labels": [
            _L("number", "Số:", "number"),
            _L("book_number", "Quyển số:", "int_text"),
            _L("mother_full_name", "Họ và tên mẹ:", "name"),
            _L("mother_birth_year", "Năm sinh:", "year"),
            _L("mother_ethnicity", "Dân tộc:", "word"),
            _L("mother_address", "Nơi đăng ký thường trú:"),
            _L("mother_citizen_id", "Số CCCD:", "citizen_id"),
            _L("mother_id_issued_on", "Ngày cấp:", "date"),
            _L("father_full_name", "Họ và tên cha:", "name"),
            _L("child_birth", "Đã sinh con vào lúc:", "moment"),
            _L("place_of_birth", "Tại:", "name"),
            _L("births_count", "Số lần sinh:", "int"),
            _L("children_in_birth", "Số con trong lần sinh này:", "int"),
            _L("child_sex", "Giới tính của con:", "sex"),
            _L("weight_grams", "Cân nặng:", "weight"),
            _L("health", "Tình trạng trẻ:"),
            _L("intended_name", "Dự định đặt tên con:", "name"),
        ],
        "required": ["number", "mother_full_name", "child_date_of_birth", "child_sex", "issued_on"],
    },
    "death_notice": {
        "title": "giay bao tu",
        "name_vi": "Giấy báo tử",
        "labels": [
            _L("number", "Số:", "number"),
            _L("full_name", "Họ và tên người chết:", "name"),
            _L("date_of_birth", "Ngày sinh:", "date"),
            _L("sex", "Giới tính:", "sex"),
            _L("ethnicity", "Dân tộc:", "word"),
            _L("nationality", "Quốc tịch:", "name"),
            _L("citizen_id", "Số CCCD:", "citizen_id"),
            _L("address", "Nơi thường trú:"),
            _L("death", "Đã chết vào lúc:", "moment"),
            _L("place_of_death", "Nơi chết:", "name"),
            _L("cause_of_death", "Nguyên nhân chết:"),
        ],
        "required": ["number", "issuer", "full_name", "date_of_death", "issued_on"],
    },
}
# The time-and-date phrase of a birth or a death splits into two fields.
_MOMENT_FIELDS = {
    "child_birth": ("child_birth_time", "child_date_of_birth"),
    "death": ("time_of_death", "date_of_death"),
}
COMPONENT_FORMS = {"GCS": "birth_certificate", "GBT": "death_notice"}


def field_labels(kind: str) -> dict[str, str]:
    """Field name -> its Vietnamese label, for review forms and messages."""
    out = {lb.field: lb.name_vi for lb in FORMS[kind]["labels"]}
    for src, (t, d) in _MOMENT_FIELDS.items():
        if src in out:
            out[t], out[d] = f"{out[src]} (giờ)", f"{out[src]} (ngày)"
    out["issued_on"], out["issuer"] = "Ngày cấp giấy", "Cơ sở cấp"
    return out


def detect_form(text: str) -> str | None:
    """Which known form a page's text is, from its title (accent-insensitive, OCR-tolerant)."""
    flat = re.sub(r"\s+", " ", deaccent(text))
    for kind, spec in FORMS.items():
        if spec["title"] in flat:
            return kind
    # Titles are large and rarely wrong, but allow one damaged character.
    for kind, spec in FORMS.items():
        t = spec["title"]
        for i in range(0, len(flat) - len(t) + 1):
            if flat[i] == t[0] and SequenceMatcher(None, flat[i : i + len(t)], t).ratio() >= 0.9:
                return kind
    return None


# --- parsers: raw value text -> typed value (None when it does not parse) --------------------

_DATE = re.compile(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})")
_WORD_DATE = re.compile(r"ngay\s*(\d{1,2})\s*thang\s*(\d{1,2})\s*nam\s*(\d{4})")
_TIME = re.compile(r"(\d{1,2})\s*gio\s*(\d{1,2})\s*phut")
_DIGIT_FIXES = str.maketrans(
    {"O": "0", "o": "0", "D": "0", "I": "1", "l": "1", "|": "1", "S": "5", "B": "8", "Z": "2"}
)


def _date(d: str, m: str, y: str) -> str | None:
    try:
        return date(int(y), int(m), int(d)).isoformat()
    except ValueError:
        return None


def _parse(kind: str, raw: str) -> Any:
    flat = deaccent(raw)
    if kind == "text":
        return raw.strip(" ,.;") or None
    if kind == "name":
        v = re.sub(r"[^\w\s.\-]", "", raw).strip(" .-")
        return (
            " ".join(w.capitalize() if w.isupper() and len(w) > 1 else w for w in v.split()) or None
        )
    if kind == "word":
        m = re.match(r"\s*([^\W\d_]+)", raw)
        return m.group(1) if m else None
    if kind == "number":
        v = re.sub(r"\s+", "", raw).strip(".,;")
        return v if re.fullmatch(r"[\w\-]+(/[\w\-]+)*", v) and any(c.isdigit() for c in v) else None
    if kind in ("int", "int_text"):
        m = re.search(r"\d+", raw.translate(_DIGIT_FIXES) if len(raw.strip()) <= 3 else raw)
        if not m:
            return None
        return int(m.group()) if kind == "int" else m.group()
    if kind == "year":
        m = re.search(r"(19|20)\d{2}", raw)
        return int(m.group()) if m else None
    if kind == "date":
        m = _DATE.search(raw)
        return _date(*m.groups()) if m else None
    if kind == "sex":
        w = flat.strip(" .,:;")
        return "male" if w.startswith("nam") else "female" if w.startswith("nu") else None
    if kind == "weight":
        m = re.search(r"(\d[\d.,\s]{2,6})\s*(g|gr|gram)?\b", flat)
        digits = re.sub(r"\D", "", m.group(1)) if m else ""
        return int(digits) if digits and 300 <= int(digits) <= 7000 else None
    if kind == "citizen_id":
        token = max(raw.split(), key=len, default="")
        digits = token.translate(_DIGIT_FIXES)
        return digits if digits.isdigit() and len(digits) in (9, 12) else None
    if kind == "moment":
        t, d = _TIME.search(flat), _WORD_DATE.search(flat)
        tv = (
            f"{int(t.group(1)):02d}:{int(t.group(2)):02d}"
            if t and int(t.group(1)) < 24 and int(t.group(2)) < 60
            else None
        )
        return (tv, _date(*d.groups()) if d else None)
    raise ValueError(kind)


# --- rows and labels --------------------------------------------------------------------------


def line_slope(words: Sequence[Word]) -> float:
    """The page's residual skew as a slope (dy/dx): the median slope of tesseract's own text lines
    (word centres of one line key). Tesseract reads a page skewed by a degree or two as well as a
    straight one, so a page is only turned beyond ``deskew.min_degrees``; rows are levelled here."""
    lines: dict[Any, list[Word]] = {}
    for w in words:
        lines.setdefault(w[6], []).append(w)
    slopes = []
    for ws in lines.values():
        if len(ws) < 3:
            continue
        xs = [w[2] + w[4] / 2 for w in ws]
        ys = [w[3] + w[5] / 2 for w in ws]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx < 200.0**2 * len(xs) / 12:  # a line under ~200 px wide says little about the angle
            continue
        slopes.append(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx)
    if len(slopes) < 3:
        return 0.0
    slopes.sort()
    slope = slopes[len(slopes) // 2]
    return slope if abs(slope) < 0.09 else 0.0  # past 5 degrees the page was turned: not a skew


def rows_of(words: Sequence[Word]) -> list[list[Word]]:
    """Group words into visual rows by vertical position along the text lines' slope (see
    :func:`line_slope`), each row sorted left to right."""
    if not words:
        return []
    slope = line_slope(words)
    heights = sorted(w[5] for w in words)
    tol = max(8, heights[len(heights) // 2] * 0.6)

    def level(w: Word) -> float:
        return float(w[3] + w[5] / 2 - slope * (w[2] + w[4] / 2))

    rows: list[list[Word]] = []
    total = 0.0  # sum of the levels of the last row's words
    for cy, w in sorted(((level(w), w) for w in words), key=lambda t: t[0]):
        if rows and abs(cy - total / len(rows[-1])) <= tol:
            rows[-1].append(w)
            total += cy
        else:
            rows.append([w])
            total = cy
    return [sorted(r, key=lambda w: w[2]) for r in rows]


def _norm_token(text: str) -> str:
    return deaccent(text).strip(".,;()")


@lru_cache(maxsize=1024)
def _label_text(phrase: str) -> tuple[str, int]:
    """A label as matched: folded, single-spaced, and its number of words."""
    target = deaccent(phrase).split()
    return " ".join(target), len(target)


def _find_labels(
    tokens: list[str], labels: Sequence[Label], fuzzy: Collection[str] = ()
) -> list[tuple[int, int, Label, float]]:
    """Non-overlapping label matches on a row: (start, end, label, similarity), by position.

    Every label is tried at every position; the best matches win first, so "Họ và tên mẹ:" is not
    taken by the similar "Họ và tên cha:". Only labels named in ``fuzzy`` are matched fuzzily
    (those not found verbatim anywhere on the page): fuzzy matching is the costly part.
    """
    candidates: list[tuple[float, int, int, Label]] = []
    row_text = " ".join(tokens)
    for lb in labels:
        joined, n = _label_text(lb.phrase)
        if (n == 1 or lb.field not in fuzzy) and joined not in row_text:
            continue  # matched only verbatim, and not in the row at all: no position can match
        for i in range(0, len(tokens) - n + 1):
            text = " ".join(tokens[i : i + n])
            if text == joined:
                ratio = 1.0
            elif n == 1 or lb.field not in fuzzy:  # one-word labels ("Số:") must match exactly
                continue
            else:
                sm = SequenceMatcher(None, text, joined)
                if sm.real_quick_ratio() < 0.8 or sm.quick_ratio() < 0.8:
                    continue
                ratio = sm.ratio()
                if not text.endswith(":") and ratio < 0.9:
                    continue
            if ratio >= 0.8:
                candidates.append((ratio, n, i, lb))
    found: list[tuple[int, int, Label, float]] = []
    taken: set[int] = set()
    used: set[str] = set()
    for ratio, n, i, lb in sorted(candidates, key=lambda c: (-c[0], -c[1], c[2])):
        if lb.field in used or any(j in taken for j in range(i, i + n)):
            continue
        found.append((i, i + n, lb, ratio))
        taken.update(range(i, i + n))
        used.add(lb.field)
    return sorted(found, key=lambda f: f[0])


def extract_fields(kind: str, pages: Sequence[PageResult]) -> dict[str, dict[str, Any]]:
    """Typed fields of form ``kind`` from OCR pages (each with ``words`` and ``index``)."""
    spec = FORMS[kind]
    out: dict[str, dict[str, Any]] = {}

    def put(name: str, value: Any, words: Sequence[Word], page: int, ratio: float) -> None:
        conf = (sum(w[1] for w in words) / len(words) / 100.0) if words else 0.0
        conf = round(conf * min(1.0, ratio + 0.1), 3) if value not in (None, "") else 0.0
        raw = " ".join(w[0] for w in words)
        if name not in out or conf > out[name]["confidence"]:
            out[name] = {"value": value, "confidence": conf, "raw": raw, "page": page + 1}

    for page in pages:
        words = page.words
        if not words:
            continue
        width = max(w[2] + w[4] for w in words)
        rows = rows_of(words)
        row_tokens = [[_norm_token(w[0]) for w in row] for row in rows]
        verbatim = {m[2].field for t in row_tokens for m in _find_labels(t, spec["labels"])}
        fuzzy = {lb.field for lb in spec["labels"]} - verbatim
        dated: list[tuple[list[Word], str]] = []
        for r_i, row in enumerate(rows):
            matches = _find_labels(row_tokens[r_i], spec["labels"], fuzzy)
            for k, (_start, end, lb, ratio) in enumerate(matches):
                stop = matches[k + 1][0] if k + 1 < len(matches) else len(row)
                vwords = row[end:stop]
                if vwords and vwords[0][0] == ":":
                    vwords = vwords[1:]
                raw = " ".join(w[0] for w in vwords)
                value = _parse(lb.parse, raw) if vwords else None
                if lb.parse == "moment":
                    t_name, d_name = _MOMENT_FIELDS[lb.field]
                    tv, dv = value if value else (None, None)
                    put(t_name, tv, vwords, page.index, ratio)
                    put(d_name, dv, vwords, page.index, ratio)
                else:
                    put(lb.field, value, vwords, page.index, ratio)
            if not matches and _WORD_DATE.search(deaccent(" ".join(w[0] for w in row))):
                dated.append((row, deaccent(" ".join(w[0] for w in row))))
            if r_i < 6 and "issuer" not in out:
                left = [w for w in row if w[2] + w[4] < width * 0.55]
                if "benh vien" in deaccent(
                    " ".join(w[0] for w in left)
                ) or "trung tam y te" in deaccent(" ".join(w[0] for w in left)):
                    put(
                        "issuer",
                        _parse("name", " ".join(w[0] for w in left)),
                        left,
                        page.index,
                        1.0,
                    )
        if dated:  # the place-and-date line above the signature: the day the paper was issued
            row, flat = dated[-1]
            m = _WORD_DATE.search(flat)
            assert m is not None
            dw = [w for w in row if any(ch.isdigit() for ch in w[0])] or row
            put("issued_on", _date(*m.groups()), dw, page.index, 1.0)
    return out


def fields_for(
    kind: str | None, pages: Sequence[PageResult]
) -> tuple[str | None, dict[str, Any]]:
    """Detect the form (unless ``kind`` is given) and extract its fields; (None, {}) if unknown."""
    if kind is None:
        for p in pages:
            kind = detect_form(p.text)
            if kind:
                break
    if kind is None:
        return None, {}
    return kind, extract_fields(kind, pages)


ParseFn = Callable[[str], Any]
