"""SMS segments: GSM-7 160/153 (extension characters count twice), UCS-2 70/67, unaccenting."""

from __future__ import annotations

import pytest

from lienthong.notify.sms import count, is_gsm7, prepare, unaccent


@pytest.mark.parametrize(("n", "segments"), [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3)])
def test_gsm7_segments(n, segments):
    assert count("a" * n, "gsm7").segments == segments


@pytest.mark.parametrize(("n", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_segments(n, segments):
    assert count("ệ" * n, "ucs2").segments == segments


def test_extension_characters_take_two_septets():
    assert count("[" * 80, "gsm7").units == 160 and count("[" * 81, "gsm7").segments == 2


def test_characters_beyond_the_bmp_take_two_utf16_units():
    assert count("😀" * 35, "ucs2").units == 70 and count("😀" * 36, "ucs2").segments == 2


def test_vietnamese_is_unaccented_for_gsm7():
    text = "Hồ sơ đã được tiếp nhận. Hẹn trả kết quả: 17:00 ngày 13/03/2026…"
    plain = unaccent(text)
    assert plain == "Ho so da duoc tiep nhan. Hen tra ket qua: 17:00 ngày 13/03/2026...".replace("ngày", "ngay")
    assert is_gsm7(plain) and not is_gsm7(text)


def test_prepare_follows_the_configured_encoding():
    text = "Hồ sơ 000.00.06.H56-260310-0001 đã có kết quả. " * 3
    gsm, ucs, auto = prepare(text, "gsm7"), prepare(text, "ucs2"), prepare(text, "auto")
    assert (gsm.encoding, ucs.encoding, auto.encoding) == ("gsm7", "ucs2", "ucs2")
    assert gsm.segments == 1 and ucs.segments == 3  # 144 characters: one GSM-7 SMS, three UCS-2
    assert prepare("Ho so da co ket qua", "auto").encoding == "gsm7"
    assert prepare("Giá 5€ ✓", "gsm7").text == "Gia 5€ ?"  # never silently UCS-2
