"""Files as office scanners write them (issue 17 §1): every PDF image encoding and colour space,
images on pages of any size, odd metadata, a text layer beside a scan, one bad page among good
ones. The files are made here (samples/scans.py, samples/jbig2.py) from the sample forms."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lienthong.digitize import errors as E
from lienthong.digitize.config import load_config
from lienthong.digitize.jobs import PageJob
from lienthong.digitize.pipeline import _params, digitize_file, digitize_files
from lienthong.digitize.raster import open_raster
from samples.forms import birth_certificate, death_notice
from samples.scans import (
    ENCODINGS,
    ImageXObject,
    PageSpec,
    a4_points,
    image_xobject,
    scan_pdf,
    visible_text,
    write_pdf,
)

DPI = 150


@pytest.fixture(scope="module")
def page() -> Image.Image:
    return birth_certificate(71, level=0.3).image.reduce(2)  # A4 at 150 DPI


def _job(path: Path, frame: int = 0) -> PageJob:
    return PageJob(0, frame, "pdf_page", str(path), frame, 300)


def _params_in(tmp_path: Path, **limits: int):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    cfg = load_config(limits={**load_config().limits.model_dump(), **limits}) if limits else None
    return _params(cfg or load_config(), str(work), None)


def _ink_disagreement(a: Image.Image, b: Image.Image) -> float:
    x = np.asarray(a.convert("L").resize(b.size)) < 150
    y = np.asarray(b.convert("L")) < 150
    return float(np.mean(x ^ y))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_image_encoding_and_colour_space_is_taken_out_as_scanned(
    tmp_path: Path, page: Image.Image, encoding: str
) -> None:
    pdf = scan_pdf(tmp_path / f"{encoding}.pdf", [page], [encoding], DPI)
    raster = open_raster(_job(pdf), _params_in(tmp_path))
    assert raster.source == "pdf_image" and raster.size == page.size
    assert raster.dpi == pytest.approx(DPI, abs=0.5) and raster.reduction == 1.0
    # The pixels the scanner put in, whatever the coding: bilevel ones exactly, lossy ones nearly.
    assert _ink_disagreement(Image.open(raster.path), page) < 0.003


def test_a_scan_with_a_page_in_each_kind_of_coding_is_read_page_by_page(tmp_path: Path) -> None:
    forms = [birth_certificate(72, level=0.3), death_notice(73, level=0.3)] * 3
    encodings = ["jbig2_globals", "ccitt_g3", "jpeg_cmyk", "jpeg2000", "lzw", "indexed"]
    images = [f.image.resize((1654, 2339)) for f in forms]  # A4 at 200 DPI
    pdf = scan_pdf(tmp_path / "office.pdf", images, encodings, 200)
    res = digitize_file(pdf, tmp_path / "out")
    assert res.error is None and len(res.pages) == 6
    for p, form in zip(res.pages, forms, strict=True):
        assert p.source == "pdf_image" and p.error is None
        assert form.fields["number"] in p.text, (p.page, encodings[p.index])


def test_an_image_direct_extraction_refuses_is_read_from_the_rendered_page(
    tmp_path: Path, page: Image.Image
) -> None:
    # The scan drawn turned a quarter (the scanner's software rotated it with the matrix): taking
    # the image out as stored would give a sideways page, so the page is rendered as it shows.
    w, h = a4_points(page, DPI)
    turned = PageSpec((h, w), image_xobject(page, "jpeg"), placement=(0, w, -h, 0, h, 0))
    pdf = write_pdf(tmp_path / "turned.pdf", [turned])
    raster = open_raster(_job(pdf), _params_in(tmp_path))
    assert raster.source == "pdf_render" and raster.dpi == 300
    res = digitize_file(pdf, tmp_path / "out")
    assert res.pages[0].source == "pdf_render"
    assert birth_certificate(71).fields["number"] in res.pages[0].text


def test_a_letter_scan_on_a_huge_page_is_taken_out_at_its_own_resolution(
    tmp_path: Path, page: Image.Image
) -> None:
    # 47 x 33 inches (A0): 140 Mpx at 300 DPI, which the old limit refused from the page size.
    w, h = a4_points(page, DPI)
    spec = PageSpec((2384, 3370), image_xobject(page, "jpeg"), placement=(w, 0, 0, h, 100, 2000))
    pdf = write_pdf(tmp_path / "poster.pdf", [spec])
    res = digitize_file(pdf, tmp_path / "out")
    p = res.pages[0]
    assert p.source == "pdf_image" and p.dpi == pytest.approx(DPI, abs=0.5) and p.reduction == 1.0
    assert res.fields["number"]["value"] == birth_certificate(71).fields["number"]


def test_a_huge_page_is_rendered_at_the_resolution_the_limit_allows(tmp_path: Path) -> None:
    # A 40 x 40 inch poster (144 Mpx at 300 DPI): a scan of big print plus a drawn frame, so
    # it is rendered; a 4 Mpx limit brings it to 50 DPI, where the print is still legible.
    from PIL import ImageDraw, ImageFont

    from samples.forms import FONT_DIR

    art = Image.new("L", (2000, 2000), 255)
    font = ImageFont.truetype(str(FONT_DIR / "DejaVuSans.ttf"), 60)
    for k in range(3):
        ImageDraw.Draw(art).text((100, 200 + 150 * k), "THONG BAO SO 4711", fill=0, font=font)
    frame = b"q 4 w 20 20 2840 2840 re S Q\n"
    spec = PageSpec((2880, 2880), image_xobject(art, "flate"), content_extra=frame)
    pdf = write_pdf(tmp_path / "big.pdf", [spec])
    params = _params_in(tmp_path, max_pixels=4_000_000)
    raster = open_raster(_job(pdf), params)
    assert raster.source == "pdf_render" and raster.size[0] * raster.size[1] <= 4_000_000
    assert raster.dpi == pytest.approx(50, abs=1) and raster.reduction == pytest.approx(1 / 6, 0.01)
    cfg = load_config(limits={**load_config().limits.model_dump(), "max_pixels": 4_000_000})
    res = digitize_file(pdf, tmp_path / "out", cfg)
    assert res.error is None and res.pages[0].reduction < 0.2
    assert any("pixel limit" in n for n in res.notes) and "4711" in res.text
    assert res.pages[0].details()["reduction"] == res.pages[0].reduction


def _blank_image(w: int, h: int) -> ImageXObject:
    data = zlib.compress(b"\xff" * (w * h), 9)
    return ImageXObject(
        data,
        w,
        h,
        {"/Filter": "/FlateDecode", "/ColorSpace": "/DeviceGray", "/BitsPerComponent": "8"},
    )


def test_one_huge_image_is_read_smaller_and_a_bomb_fails_its_page_alone(
    tmp_path: Path, page: Image.Image
) -> None:
    good = PageSpec(a4_points(page, DPI), image_xobject(page, "jpeg"))
    huge = PageSpec((612, 612), _blank_image(9000, 9000))  # 81 Mpx over the 60 Mpx OCR limit
    bomb_img = ImageXObject(b"\xff" * 100, 50_000, 50_000, _blank_image(1, 1).entries)
    bomb_img.entries = {"/ColorSpace": "/DeviceGray", "/BitsPerComponent": "8"}
    bomb = PageSpec((595, 842), bomb_img)
    pdf = write_pdf(tmp_path / "mixed.pdf", [good, huge, bomb])
    cfg = load_config(limits={**load_config().limits.model_dump(), "max_pixels": 9_000_000})
    res = digitize_file(pdf, tmp_path / "out", cfg)
    assert res.error is None and res.review
    one, two, three = res.pages
    assert one.error is None and one.reduction == 1.0
    assert two.error is None and two.reduction == pytest.approx(1 / 3, abs=0.01)
    assert three.error is not None and three.error.code == "image_too_large"
    failed = [r for r in res.reasons if r["code"] == "page_failed"]
    assert [r["page"] for r in failed] == [3] and "Trang 3" in failed[0]["message_vi"]
    assert res.fields["number"]["value"] == birth_certificate(71).fields["number"]


def test_a_file_whose_only_page_is_a_bomb_is_refused(tmp_path: Path) -> None:
    bomb_img = ImageXObject(
        b"\xff" * 100, 50_000, 50_000, {"/ColorSpace": "/DeviceGray", "/BitsPerComponent": "8"}
    )
    pdf = write_pdf(tmp_path / "bomb.pdf", [PageSpec((595, 842), bomb_img)])
    with pytest.raises(E.ImageTooLarge):
        digitize_file(pdf, tmp_path / "out")


@pytest.mark.parametrize("info", [b"(a string, not a dictionary)", b"99 0 R"])
def test_odd_or_unreadable_metadata_does_not_refuse_the_file(
    tmp_path: Path, page: Image.Image, info: bytes
) -> None:
    spec = PageSpec(a4_points(page, DPI), image_xobject(page, "jpeg"))
    pdf = write_pdf(tmp_path / "odd.pdf", [spec], info=info)
    res = digitize_file(pdf, tmp_path / "out")
    assert res.fields["number"]["value"] == birth_certificate(71).fields["number"]


def test_a_file_pypdf_cannot_parse_is_read_as_pdfium_draws_it(
    tmp_path: Path, page: Image.Image
) -> None:
    spec = PageSpec(a4_points(page, DPI), image_xobject(page, "ccitt_g4"))
    data = write_pdf(tmp_path / "ok.pdf", [spec]).read_bytes()
    i, j = data.index(b"xref"), data.index(b"trailer")
    broken = tmp_path / "xref.pdf"
    broken.write_bytes(data[:i] + b"xref\n0 3\nnot a cross-reference table\n" + data[j:])
    res = digitize_file(broken, tmp_path / "out")
    assert any("PDFium" in n for n in res.notes)
    assert res.fields["number"]["value"] == birth_certificate(71).fields["number"]


def test_a_scan_with_a_few_words_of_text_layer_is_read_whole(
    tmp_path: Path, page: Image.Image
) -> None:
    # The scanner's software stamped "COPY 1/1" as real text over the scan: too little to be the
    # page's text layer, so the page is rendered with both and OCRed.
    w, h = a4_points(page, DPI)
    stamp = visible_text(["COPY 1/1"], 450, 40, size=14)
    spec = PageSpec((w, h), image_xobject(page, "jpeg"), content_extra=stamp)
    res = digitize_file(write_pdf(tmp_path / "stamped.pdf", [spec]), tmp_path / "out")
    p = res.pages[0]
    assert p.source == "pdf_render" and "COPY" in p.text
    assert res.fields["number"]["value"] == birth_certificate(71).fields["number"]


def test_a_tiff_frame_with_damaged_pixels_fails_alone(tmp_path: Path) -> None:
    from samples.forms import write_tiff

    forms = [birth_certificate(74, level=0.3), death_notice(75, level=0.3)]
    path = write_tiff([f.image.reduce(2) for f in forms], tmp_path / "two.tif", dpi=DPI)
    tif = Image.open(path)
    tif.seek(1)
    start, count = tif.tag_v2[273][0], tif.tag_v2[279][0]  # the second frame's first strip
    tif.close()
    data = bytearray(path.read_bytes())
    data[start : start + count] = bytes(count)  # its compressed pixels zeroed: not deflate data
    path.write_bytes(bytes(data))
    (res,) = digitize_files([path], tmp_path / "out")
    assert res.error is None and res.review
    assert res.pages[0].error is None and forms[0].fields["number"] in res.pages[0].text
    assert res.pages[1].error is not None and res.pages[1].error.code == "corrupt_file"
    assert [r["page"] for r in res.reasons if r["code"] == "page_failed"] == [2]
