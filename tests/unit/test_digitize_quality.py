"""The quality gate, field extraction and page geometry, on inputs built without OCR."""

from __future__ import annotations

import io
import math
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from lienthong.digitize.config import load_config
from lienthong.digitize.fields import FORMS, detect_form, extract_fields, field_labels
from lienthong.digitize.geometry import analyse, upright_score
from lienthong.digitize.quality import check_fields, check_page, deaccent, diacritics_check
from lienthong.digitize.result import PageResult, Word
from samples.forms import Degradation, birth_certificate_layout, death_notice_layout, make_form


@pytest.fixture(scope="module")
def cfg():
    return load_config()


def _words_of(lines, conf: float = 95.0, skew_degrees: float = 0.0):
    """Word boxes as tesseract would report them for a perfectly read page (~12 px per char), on
    a page turned counter-clockwise by ``skew_degrees`` about its top left corner."""
    t = math.tan(math.radians(skew_degrees))
    words = []
    for j, ln in enumerate(lines):
        for s in ln.segs:
            x = int(s.x_mm * 11.8)
            for w in s.text.split():
                y = int(ln.y_mm * 11.8) - 40 - round(t * (x + 6 * len(w)))
                words.append(Word(w, conf, x, y, 12 * len(w), 46, j))
                x += 12 * len(w) + 14
    return words


def _expected(truth: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in truth.items()}


def test_vietnamese_text_keeps_its_diacritics_verdict(cfg) -> None:
    text = make_form("birth_certificate", 1, Degradation.none()).text
    assert not diacritics_check(text, cfg).broken


def test_text_stripped_of_tone_marks_is_flagged_as_broken_diacritics(cfg) -> None:
    text = deaccent(make_form("death_notice", 1, Degradation.none()).text)
    check = diacritics_check(text, cfg)
    assert check.broken and check.plain_share > 0.9


def test_syllables_missing_their_vowels_are_flagged(cfg) -> None:
    text = " ".join(["QUYT ĐNH", "Đng ký khai sinh cho trẻ", "Ch tch Ủy ban nhân dân xã"] * 4)
    check = diacritics_check(text, cfg)
    assert check.broken and check.invalid_share > 0.15


def test_page_under_the_confidence_threshold_goes_to_review(cfg) -> None:
    text = make_form("birth_certificate", 2, Degradation.none()).text
    page = PageResult(0, 0, "image", text, confidence=61.0, low_confidence_share=0.4)
    codes = {r.code for r in check_page(page, cfg)}
    assert codes == {"low_page_confidence", "many_low_confidence_words"}
    assert not check_page(replace(page, confidence=93.0, low_confidence_share=0.02), cfg)


def test_text_layer_pages_and_blank_pages_need_no_review(cfg) -> None:
    assert not check_page(PageResult(0, 0, "text_layer", "x", confidence=100.0), cfg)
    assert not check_page(PageResult(0, 1, "image", ink_share=0.0), cfg)
    assert check_page(PageResult(0, 1, "image", ink_share=0.05), cfg)


@pytest.mark.parametrize(
    "kind,layout",
    [("birth_certificate", birth_certificate_layout), ("death_notice", death_notice_layout)],
)
@pytest.mark.parametrize("seed", [1, 7, 23])
def test_fields_are_read_back_from_word_positions(kind, layout, seed) -> None:
    lines, truth = layout(seed)
    fields = extract_fields(kind, [PageResult(0, 0, words=_words_of(lines))])
    expected = _expected(truth)
    for name, f in fields.items():
        if name in expected:
            assert f["value"] == expected[name], name
    for name in FORMS[kind]["required"]:
        assert fields[name]["value"] == expected[name]
        assert fields[name]["confidence"] > 0.9


@pytest.mark.parametrize("skew", [-4.0, 1.7, 4.0])
def test_fields_of_a_page_left_skewed_are_read_along_its_text_lines(skew: float) -> None:
    # Pages skewed less than deskew.min_degrees are OCRed as scanned: rows follow the lines' slope.
    lines, truth = birth_certificate_layout(5)
    words = _words_of(lines, skew_degrees=skew)
    fields = extract_fields("birth_certificate", [PageResult(0, 0, words=words)])
    expected = _expected(truth)
    for name, f in fields.items():
        if name in expected:
            assert f["value"] == expected[name], name
    for name in FORMS["birth_certificate"]["required"]:
        assert fields[name]["value"] == expected[name]


def test_missing_and_weak_fields_go_to_review(cfg) -> None:
    lines, _ = birth_certificate_layout(3)
    words = [w for w in _words_of(lines) if not w[0].startswith("Giới")]
    words = [(w[0], 30.0, *w[2:]) if w[0].isdigit() else w for w in words]
    fields = extract_fields("birth_certificate", [PageResult(0, 0, words=words)])
    reasons = check_fields(
        fields, FORMS["birth_certificate"]["required"], cfg, field_labels("birth_certificate")
    )
    by_code = {(r.code, r.field) for r in reasons}
    assert ("field_missing", "child_sex") in by_code
    assert ("low_field_confidence", "mother_birth_year") in by_code


def test_forms_are_recognised_by_their_title_even_with_damaged_accents() -> None:
    assert detect_form("SỞ Y TẾ\nGIẤY CHỨNG SINH\nHọ và tên mẹ") == "birth_certificate"
    assert detect_form("GIAY BAO TU\nHo va ten nguoi chet") == "death_notice"
    assert detect_form("GIẤY BÁO TỬ"[:6]) is None


@pytest.mark.parametrize("skew", [-1.8, -0.6, 0.0, 0.9, 2.2])
def test_skew_of_a_scanned_page_is_measured_to_a_tenth_of_a_degree(skew: float) -> None:
    form = make_form(
        "death_notice", 4, Degradation(skew_degrees=skew, noise_sigma=8, jpeg_quality=60)
    )
    im = Image.open(io.BytesIO(form.jpeg))
    im.draft("L", (im.width // 8, im.height // 8))
    geo = analyse(np.asarray(im.convert("L")))
    assert abs(geo.skew_degrees - skew) <= 0.15 and not geo.vertical_text


def test_a_page_lying_on_its_side_is_noticed() -> None:
    form = make_form("birth_certificate", 4, Degradation(rotation=90, jpeg_quality=60))
    geo = analyse(np.asarray(form.image.reduce(8)))
    assert geo.vertical_text


@pytest.mark.parametrize("seed", [3, 8, 13])
def test_an_upside_down_page_is_told_from_an_upright_one_by_its_accents(seed: int) -> None:
    for rotation, sign in [(0, 1), (180, -1)]:
        form = make_form(
            "birth_certificate",
            seed,
            Degradation(skew_degrees=0.8, noise_sigma=8, jpeg_quality=60, rotation=rotation),
        )
        quarter = np.asarray(form.image.reduce(4))
        assert sign * upright_score(quarter, analyse(quarter).skew_degrees) > 0.15


def test_sample_forms_are_deterministic_from_the_seed() -> None:
    a = make_form("birth_certificate", 11)
    b = make_form("birth_certificate", 11)
    c = make_form("birth_certificate", 12)
    assert a.jpeg == b.jpeg and a.fields == b.fields and a.text == b.text
    assert a.fields != c.fields
    assert a.fields["mother_citizen_id"].isdigit() and len(a.fields["mother_citizen_id"]) == 12


@pytest.mark.parametrize(
    ("pages", "workers", "most", "sizes"),
    [
        (16, 2, 8, [4, 4, 4, 4]),  # two batches a worker, so a slow one is balanced
        (50, 2, 8, [7, 7, 6, 6, 6, 6, 6, 6]),  # no batch over the limit, sizes within one page
        (3, 2, 8, [1, 1, 1]),
        (5, 1, 8, [3, 2]),
        (9, 1, 1, [1] * 9),  # batch_pages 1: a tesseract run a page
        (0, 2, 8, []),
    ],
)
def test_pages_are_batched_for_tesseract_runs(pages, workers, most, sizes) -> None:
    from lienthong.digitize.jobs import PageJob, batches

    jobs = [PageJob(0, i, "image", f"p{i}.jpg") for i in range(pages)]
    out = batches(jobs, workers, most)
    assert [len(b) for b in out] == sizes
    assert [j for b in out for j in b] == jobs  # every page once, in order
