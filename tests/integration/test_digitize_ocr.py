"""Digitization with the real tesseract: the text-layer fast path, OCR of the project's sample forms
with fields checked against the generator's truth, rotated and skewed scans, PDF and TIFF inputs,
damaged pages found by the workers, and the quality gate on a wrong language model."""

from __future__ import annotations

import json
from pathlib import Path

import pytesseract
import pytest
from pypdf import PdfReader
from reportlab.pdfgen import canvas

from lienthong.digitize import errors as E
from lienthong.digitize.config import load_config
from lienthong.digitize.pipeline import digitize_file, digitize_files
from samples.forms import (
    Degradation,
    birth_certificate,
    death_notice,
    write_born_digital_pdf,
    write_pdf,
    write_tiff,
)

pytestmark = pytest.mark.integration


def _truth(form) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in form.fields.items()}


def _field_accuracy(fields: dict, truth: dict) -> float:
    names = [n for n in truth if n in fields or n in ("number", "issued_on")]
    right = sum(fields.get(n, {}).get("value") == truth[n] for n in names)
    return right / len(names)


def test_born_digital_pdf_is_read_from_its_text_layer_without_ocr(
    tmp_path: Path, monkeypatch
) -> None:
    texts = write_born_digital_pdf(
        [("birth_certificate", 8), ("death_notice", 8)], tmp_path / "e.pdf"
    )

    def no_ocr(*a, **k):  # the fast path must never start tesseract
        raise AssertionError("tesseract was called for a page with a text layer")

    monkeypatch.setattr(pytesseract.pytesseract, "run_tesseract", no_ocr)
    cfg = load_config(ocr={"executor": "thread"})
    res = digitize_file(tmp_path / "e.pdf", tmp_path / "out", cfg)
    assert [p.source for p in res.pages] == ["text_layer", "text_layer"]
    assert "GIẤY CHỨNG SINH" in res.pages[0].text and "GIẤY BÁO TỬ" in res.pages[1].text
    assert res.form == "birth_certificate" and not res.review
    assert len(PdfReader(res.outputs["pdf"]).pages) == 2
    assert texts[0].split("\n")[5] in res.pages[0].text


@pytest.fixture(scope="module")
def forms():
    return [birth_certificate(21), death_notice(22), birth_certificate(23, level=1.5)]


@pytest.fixture(scope="module")
def ocr_results(forms, tmp_path_factory):
    d = tmp_path_factory.mktemp("scans")
    paths = [f.save(d / f"scan{i}.jpg") for i, f in enumerate(forms)]
    return digitize_files(paths, d / "out", load_config())


def test_scanned_forms_are_read_into_the_generators_fields(forms, ocr_results) -> None:
    for form, res in zip(forms, ocr_results, strict=True):
        assert res.error is None
        assert res.form == form.kind
        truth = _truth(form)
        assert _field_accuracy(res.fields, truth) >= 0.85, {
            n: (res.fields.get(n, {}).get("value"), truth[n]) for n in truth
        }
        for name in ("number", "issued_on"):
            assert res.fields[name]["value"] == truth[name]
            assert 0.6 <= res.fields[name]["confidence"] <= 1.0


def test_each_file_gets_a_searchable_pdf_text_and_json(ocr_results) -> None:
    res = ocr_results[1]
    pdf = PdfReader(res.outputs["pdf"])
    assert "GIẤY BÁO TỬ" in pdf.pages[0].extract_text() or "BÁO TỬ" in pdf.pages[0].extract_text()
    assert Path(res.outputs["txt"]).read_text(encoding="utf-8") == res.text
    data = json.loads(Path(res.outputs["json"]).read_text(encoding="utf-8"))
    page = data["page_details"][0]
    assert (
        page["confidence"] > 80
        and "ocr" in page["timings"]
        and page["text"] == res.pages[0].text
    )
    assert data["confidence"] == res.confidence and data["pages"] == 1


def test_upside_down_and_sideways_scans_are_turned_before_reading(tmp_path: Path) -> None:
    forms = [
        death_notice(
            31,
            Degradation(
                skew_degrees=0.4, blur_radius=0.5, noise_sigma=6, jpeg_quality=70, rotation=180
            ),
        ),
        birth_certificate(32, Degradation(noise_sigma=6, jpeg_quality=70, rotation=270)),
    ]
    results = digitize_files(
        [f.save(tmp_path / f"r{i}.jpg") for i, f in enumerate(forms)],
        tmp_path / "out",
        load_config(),
    )
    # ``rotation`` is the clockwise turn that undid the scan's counter-clockwise one.
    assert [r.pages[0].rotation for r in results] == [180, 270]
    for form, res in zip(forms, results, strict=True):
        assert res.pages[0].confidence > 80
        assert res.fields["number"]["value"] == form.fields["number"]


def test_skewed_scan_is_straightened(tmp_path: Path) -> None:
    form = birth_certificate(
        33, Degradation(skew_degrees=2.5, blur_radius=0.4, noise_sigma=5, jpeg_quality=75)
    )
    res = digitize_file(form.save(tmp_path / "s.jpg"), tmp_path / "out")
    assert abs(res.pages[0].skew_degrees - 2.5) < 0.2
    assert res.fields["mother_citizen_id"]["value"] == form.fields["mother_citizen_id"]


def test_slightly_skewed_scan_is_read_as_scanned_with_every_field(tmp_path: Path) -> None:
    # Under deskew.min_degrees tesseract reads as well unturned (bench_digitize --skew), and the
    # fields' rows follow the text lines' slope, so turning the page would only cost time.
    form = death_notice(
        34, Degradation(skew_degrees=-0.9, blur_radius=0.6, noise_sigma=9, jpeg_quality=60)
    )
    res = digitize_file(form.save(tmp_path / "s.jpg"), tmp_path / "out")
    assert res.pages[0].skew_degrees == 0.0 and res.pages[0].rotation == 0
    truth = _truth(form)
    assert _field_accuracy(res.fields, truth) == 1.0, {
        n: (res.fields.get(n, {}).get("value"), truth[n]) for n in truth
    }


def test_scanned_pdf_and_multipage_tiff_are_split_into_pages(tmp_path: Path) -> None:
    a, b = death_notice(41, level=0.5), birth_certificate(42, level=0.5)
    write_pdf([a.image, b.image], tmp_path / "scan.pdf")
    write_tiff([b.image, a.image], tmp_path / "scan.tif")
    pdf, tif = digitize_files([tmp_path / "scan.pdf", tmp_path / "scan.tif"], tmp_path / "out")
    assert [p.source for p in pdf.pages] == ["pdf_image", "pdf_image"]  # no re-rendering
    assert [p.source for p in tif.pages] == ["tiff_frame", "tiff_frame"]
    assert pdf.form == "death_notice" and tif.form == "birth_certificate"
    assert "GIẤY CHỨNG SINH" in pdf.pages[1].text and "GIẤY BÁO TỬ" in tif.pages[1].text
    assert len(PdfReader(pdf.outputs["pdf"]).pages) == 2


def test_vector_pdf_page_without_text_is_rasterized(tmp_path: Path) -> None:
    c = canvas.Canvas(str(tmp_path / "drawn.pdf"))
    c.rect(100, 100, 300, 400)
    c.line(50, 50, 500, 700)
    c.showPage()
    c.save()
    res = digitize_file(tmp_path / "drawn.pdf", tmp_path / "out")
    assert res.pages[0].source == "pdf_render" and res.pages[0].dpi == 300


def test_pdf_hiding_a_fifty_thousand_pixel_image_is_refused(tmp_path: Path) -> None:
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject

    w = PdfWriter()
    page = w.add_blank_page(595, 842)
    img = DecodedStreamObject()
    img.set_data(b"\xff" * 100)
    img.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Image"),
            NameObject("/Width"): NumberObject(50_000),
            NameObject("/Height"): NumberObject(50_000),
            NameObject("/ColorSpace"): NameObject("/DeviceGray"),
            NameObject("/BitsPerComponent"): NumberObject(8),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): w._add_object(img)})}
    )
    content = DecodedStreamObject()
    content.set_data(b"q 595 0 0 842 0 0 cm /Im0 Do Q")
    page[NameObject("/Contents")] = w._add_object(content)
    w.write(tmp_path / "bomb.pdf")
    with pytest.raises(E.ImageTooLarge):
        digitize_file(tmp_path / "bomb.pdf", tmp_path / "out")


def test_tiff_with_a_damaged_page_is_refused_as_corrupt(tmp_path: Path) -> None:
    f = death_notice(51, level=0.3)
    write_tiff([f.image.reduce(2), f.image.reduce(2)], tmp_path / "two.tif")
    data = (tmp_path / "two.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: int(len(data) * 0.7)])
    results = digitize_files([tmp_path / "cut.tif"], tmp_path / "out")
    assert isinstance(results[0].error, E.CorruptFile)


def test_wrong_language_model_is_caught_by_the_diacritics_gate(tmp_path: Path) -> None:
    form = birth_certificate(61, level=0.5)
    res = digitize_file(form.save(tmp_path / "g.jpg"), tmp_path / "out", lang="eng")
    assert res.review
    assert "broken_diacritics" in {r["code"] for r in res.reasons}


def test_poor_scan_goes_to_review_not_onward(tmp_path: Path) -> None:
    form = death_notice(62, Degradation(blur_radius=5.5, noise_sigma=4, jpeg_quality=30))
    res = digitize_file(form.save(tmp_path / "poor.jpg"), tmp_path / "out")
    assert res.review and res.reasons


def _page_jobs(tmp_path: Path) -> tuple[list, list]:
    from lienthong.digitize.jobs import PageJob

    forms = [
        birth_certificate(41),
        death_notice(42, Degradation(skew_degrees=2.0, noise_sigma=6, jpeg_quality=70)),
        birth_certificate(43, Degradation(noise_sigma=6, jpeg_quality=70, rotation=180)),
    ]
    jobs = [
        PageJob(i, 0, "image", str(f.save(tmp_path / f"p{i}.jpg"))) for i, f in enumerate(forms)
    ]
    return forms, jobs


def _params(tmp_path: Path):
    from lienthong.digitize.pipeline import _params

    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return _params(load_config(), str(work), None)


def _runs(monkeypatch) -> list[str]:
    """The inputs of every tesseract run from now on (a list file for a batch)."""
    seen: list[str] = []
    real = pytesseract.pytesseract.run_tesseract

    def counting(src, *a, **k):
        seen.append(str(src))
        return real(src, *a, **k)

    monkeypatch.setattr(pytesseract.pytesseract, "run_tesseract", counting)
    return seen


def test_a_batch_of_pages_is_read_by_one_tesseract_run_as_each_page_alone(
    tmp_path: Path, monkeypatch
) -> None:
    from lienthong.digitize.ocr import ocr_page, ocr_pages

    forms, jobs = _page_jobs(tmp_path)
    params = _params(tmp_path)
    alone = [ocr_page(j, params) for j in jobs]
    runs = _runs(monkeypatch)
    together = ocr_pages(jobs, params)
    assert len(runs) == 1 and runs[0].endswith(".list")  # the language model loaded once
    assert [p.index for p in together] == [0, 0, 0]
    assert [p.file_index for p in together] == [0, 1, 2]
    assert [p.rotation for p in together] == [0, 0, 180]
    for one, batched, form in zip(alone, together, forms, strict=True):
        assert batched.error is None
        # The same engine on the same pixels: the same reading, page for page.
        assert batched.text == one.text and batched.confidence == one.confidence
        assert [w[:6] for w in batched.words] == [w[:6] for w in one.words]
        assert form.fields["number"] in batched.text
        pdf = PdfReader(batched.pdf)  # each page gets its own one-page searchable PDF
        assert len(pdf.pages) == 1 and form.fields["number"] in pdf.pages[0].extract_text()


def test_a_bad_page_in_a_batch_fails_alone_and_a_refused_batch_is_read_page_by_page(
    tmp_path: Path, monkeypatch
) -> None:
    from lienthong.digitize import ocr
    from lienthong.digitize.jobs import PageJob

    forms, jobs = _page_jobs(tmp_path)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(Path(jobs[0].path).read_bytes()[:5000])
    jobs.insert(1, PageJob(9, 0, "image", str(cut)))
    params = _params(tmp_path)

    def refused(*a, **k):
        raise ocr.PageError("ocr_failed", "tesseract died")

    monkeypatch.setattr(ocr.tesseract, "read_batch", refused)
    runs = _runs(monkeypatch)
    pages = ocr.ocr_pages(jobs, params)
    assert pages[1].error.code == "corrupt_file" and pages[1].file_index == 9
    good = [pages[0], *pages[2:]]
    assert all(p.error is None for p in good)
    assert len(runs) >= 3 and not any(r.endswith(".list") for r in runs)
    for page, form in zip(good, forms, strict=True):
        assert form.fields["number"] in page.text


def test_pages_of_many_files_share_batches_and_each_file_gets_its_own_outputs(
    tmp_path: Path, monkeypatch
) -> None:
    forms, jobs = _page_jobs(tmp_path)
    runs = _runs(monkeypatch)
    cfg = load_config(ocr={"executor": "thread", "workers": 1, "batch_pages": 8})
    results = digitize_files([j.path for j in jobs], tmp_path / "out", cfg)
    assert sum(r.endswith(".list") for r in runs) == 1  # 3 pages, one worker: batches of 2 and 1
    for res, form in zip(results, forms, strict=True):
        assert res.error is None and res.fields["number"]["value"] == form.fields["number"]
        assert len(PdfReader(res.outputs["pdf"]).pages) == 1
