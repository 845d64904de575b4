"""Scalar predicates of the rules GX has no built-in for, shared by the custom expectations and the
plain-Python validator (so the two can only disagree on GX's own machinery, which is the point of
the cross-check)."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

import pandas as pd

from lienthong.clock import get_clock, localize
from lienthong.codes import _reference, parse_dossier_code, provinces
from lienthong.errors import InvalidDossierCode

# Digit 4 of the 12-digit ID: even = male, odd = female; 0-1 = 1900s, 2-3 = 2000s, ... (TT 59/2021).
_CENTURY_BASE = {str(d): 1900 + (d // 2) * 100 for d in range(10)}
_SEX_OF_DIGIT = {str(d): ("male" if d % 2 == 0 else "female") for d in range(10)}


def is_missing(value: Any) -> bool:
    """None, NaN/NaT and blank strings count as missing (a blank field is an empty field)."""
    if value is None:
        return True
    if isinstance(value, float) and value != value:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (bool, int, date, list, dict, tuple)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


@lru_cache
def _province_codes() -> frozenset[str]:
    return frozenset(provinces())


@lru_cache
def placeholders() -> tuple[str, ...]:
    return tuple(_reference("codes")["citizen_id"]["placeholders"])


def _twelve(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) == 12 and value.isdigit() else None


def citizen_id_well_formed(
    value: Any, *, allow_legacy: bool = True, max_year: int | None = None
) -> bool:
    """12 digits with a known province and a birth year not in the future (or an old 9-digit CMND).

    Placeholders are left to their own rule so the citizen gets one precise line, not two."""
    if not isinstance(value, str):
        return False
    if value in placeholders():
        return True
    if allow_legacy and len(value) == 9 and value.isdigit():
        return True
    digits = _twelve(value)
    if digits is None or digits[:3] not in _province_codes():
        return False
    year = _CENTURY_BASE[digits[3]] + int(digits[4:6])
    return year <= (max_year if max_year is not None else get_clock().now().year)


def citizen_id_sex_matches(value: Any, sex: Any) -> bool:
    """Digit 4 says the sex; a number that is not a 12-digit ID is judged by the structure rule."""
    digits = _twelve(value)
    return digits is None or _SEX_OF_DIGIT[digits[3]] == sex


def citizen_id_year_matches(value: Any, year: Any) -> bool:
    digits = _twelve(value)
    if digits is None:
        return True
    return _CENTURY_BASE[digits[3]] + int(digits[4:6]) == int(year)


_NAME_CHARS = re.compile(r"^[^\W\d_]+(?:['\-][^\W\d_]+)*$")


def is_vietnamese_name(
    value: Any, *, min_words: int = 2, max_words: int = 7, max_length: int = 50
) -> bool:
    """NFC, letters only (apostrophe/hyphen inside a word for names such as H'Hen), no digits,
    between ``min_words`` and ``max_words`` words and at most ``max_length`` characters."""
    if not isinstance(value, str):
        return False
    # Decomposed (NFD) text is the same name: normalise, never refuse it. No diacritics rule:
    # names of ethnic-minority citizens need not follow Vietnamese spelling (Civil Code Art. 26).
    value = unicodedata.normalize("NFC", value)
    words = value.split()
    if not min_words <= len(words) <= max_words or len(value) > max_length:
        return False
    return all(_NAME_CHARS.match(w) for w in words)


def as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return localize(value).date()
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return as_date(value.to_pydatetime())
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def dossier_code_matches(code: Any, received_on: Any) -> bool:
    """The code follows a configured pattern and its date part is the reception date."""
    try:
        parse_dossier_code(str(code), received_on=as_date(received_on))
    except InvalidDossierCode:
        return False
    return True


def days_between_at_most(start: Any, end: Any, max_days: int = 0, *, max_years: int = 0,
                         to_working_day: bool = False) -> bool:
    """``end`` is at most ``max_days`` calendar days after ``start``; with ``max_years``, before
    the ``max_years``-th anniversary of ``start`` ("under 6" is before the 6th birthday, leap
    years included, not 2190 days). With ``to_working_day`` a window whose last day is a weekend
    or holiday runs to the end of the next working day (Civil Code 2015 Art. 147-148)."""
    a, b = as_date(start), as_date(end)
    if max_years:
        return b < anniversary(a, max_years)
    last = a + timedelta(days=max_days)
    if to_working_day:
        from lienthong.calendar import get_calendar

        last = get_calendar().end_of_period(last)
    return b <= last


def anniversary(born: date, years: int) -> date:
    """The ``years``-th anniversary; of 29 February, 1 March in a common year."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return date(born.year + years, 3, 1)


def family_name(value: Any) -> str | None:
    return value.split()[0].casefold() if isinstance(value, str) and value.split() else None


def family_name_follows(child: Any, *parents: Any) -> bool:
    """The child's family name is the father's or the mother's (Bộ luật Dân sự Điều 26)."""
    known = {family_name(p) for p in parents if not is_missing(p)}
    return not known or family_name(child) in known
