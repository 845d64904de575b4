"""SMS text: the encoding a message goes out in and the number of segments it is billed as.

A brandname SMS is billed per segment. In the GSM 03.38 7-bit alphabet (GSM-7) one message holds
160 characters, and a concatenated one 153 per segment (7 octets go to the concatenation header);
characters of the extension table (``^{}\\[~]|€`` and form feed) take two. Anything else, Vietnamese
letters with their tone marks included, needs UCS-2: 70 UTF-16 units, or 67 per segment. So the
same Vietnamese sentence costs two to three times as much accented as unaccented, and providers
(eSMS ``IsUnicode``) ask which one is meant. :func:`prepare` gives the text as it will be sent and
its count, for the encoding the configuration chose.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["gsm7", "ucs2"]
Mode = Literal["gsm7", "ucs2", "auto"]

# GSM 03.38 basic character set (3GPP TS 23.038, 6.2.1), escape excluded.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs the escape character and itself.
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

# Typography that has a plain GSM-7 stand-in.
_PLAIN = str.maketrans({"…": "...", "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"',
                        "\u00a0": " ", "•": "-", "đ": "d", "Đ": "D"})


@dataclass(frozen=True)
class SmsText:
    text: str
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text)


def unaccent(text: str) -> str:
    """``Hồ sơ đã được tiếp nhận`` -> ``Ho so da duoc tiep nhan``: Vietnamese without tone marks
    or the hook/breve/circumflex (the way unaccented SMS are written), other typography plain."""
    decomposed = unicodedata.normalize("NFD", text.translate(_PLAIN))
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


def count(text: str, encoding: Encoding) -> SmsText:
    if encoding == "gsm7":
        units = sum(2 if c in GSM7_EXTENDED else 1 for c in text)
        single, multi = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
    segments = 1 if units <= single else math.ceil(units / multi)
    return SmsText(text, encoding, units, segments)


def prepare(text: str, mode: Mode = "gsm7") -> SmsText:
    """The text as it will be sent, and its segments.

    ``gsm7``: unaccented, any character still outside GSM-7 replaced by ``?`` (never silently
    sent as UCS-2, which would triple the bill); ``ucs2``: as written; ``auto``: GSM-7 when the
    text already is, otherwise UCS-2."""
    text = unicodedata.normalize("NFC", text)
    if mode == "ucs2" or (mode == "auto" and not is_gsm7(text)):
        return count(text, "ucs2")
    plain = unaccent(text)
    plain = "".join(c if c in GSM7_BASIC or c in GSM7_EXTENDED else "?" for c in plain)
    return count(plain, "gsm7")
