"""Masking of personal data (citizen ID numbers, names, addresses) for logs, artifacts and errors."""

from __future__ import annotations

import re
import unicodedata

_ID_RE = re.compile(r"(?<!\d)(\d{3})(\d{4,7})(\d{2})(?!\d)")


def mask_citizen_id(value: str | None) -> str:
    """``079203001234`` -> ``079*******34``: the province code and the last two digits stay."""
    if not value:
        return ""
    value = str(value)
    if len(value) <= 5:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 5) + value[-2:]


def mask_name(value: str | None) -> str:
    """``Nguyễn Văn An`` -> ``N***** V** A*``: initials only, lengths kept so a person can match."""
    if not value:
        return ""
    words = unicodedata.normalize("NFC", value).split()
    return " ".join(w[0] + "*" * (len(w) - 1) for w in words)


def mask_address(value: str | None) -> str:
    """Keep only the last two comma-separated parts (commune/province level), drop the rest."""
    if not value:
        return ""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    return ", ".join(["***", *parts[-2:]]) if len(parts) > 2 else "***"


def mask_ids_in_text(text: str) -> str:
    """Mask every run of 9 or 12 digits that looks like an ID number inside free text."""

    def repl(m: re.Match[str]) -> str:
        whole = m.group(0)
        return mask_citizen_id(whole) if len(whole) in (9, 12) else whole

    return _ID_RE.sub(repl, text)
