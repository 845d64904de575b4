"""Bad component files are refused at intake with a typed error and a Vietnamese message, before any
pixel is decoded (no Prefect, no tesseract)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfWriter

from lienthong.digitize import errors as E
from lienthong.digitize.config import load_config
from lienthong.digitize.intake import TextPage, check_name, open_file, resolve_file_ref, sniff
from lienthong.digitize.pipeline import digitize_files
from samples.forms import Degradation, birth_certificate, write_born_digital_pdf, write_pdf


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    form = birth_certificate(3, Degradation(jpeg_quality=60))
    return form.save(tmp_path_factory.mktemp("scan") / "gcs.jpg")


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height (a decompression bomb): tiny on disk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + b"\x00" * (width // 8)
    idat = zlib.compress(row * 64, 9)  # the start of an all-black 1-bit image
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def _vi(exc: E.DigitizeError) -> str:
    assert exc.message_vi and exc.message_vi != exc.message
    return exc.message_vi


def test_zero_byte_file_is_refused_as_empty(tmp_path: Path, cfg) -> None:
    (tmp_path / "gcs.pdf").write_bytes(b"")
    with pytest.raises(E.EmptyFile) as ei:
        open_file(tmp_path / "gcs.pdf", cfg)
    assert "rỗng" in _vi(ei.value)


def test_truncated_pdf_is_refused_as_corrupt(tmp_path: Path, cfg) -> None:
    write_born_digital_pdf([("birth_certificate", 1)], tmp_path / "full.pdf")
    data = (tmp_path / "full.pdf").read_bytes()
    (tmp_path / "half.pdf").write_bytes(data[: len(data) // 2])
    with pytest.raises(E.CorruptFile) as ei:
        open_file(tmp_path / "half.pdf", cfg)
    assert "hỏng" in _vi(ei.value)


def test_pdf_with_garbage_body_is_refused_as_corrupt(tmp_path: Path, cfg) -> None:
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    with pytest.raises(E.CorruptFile):
        open_file(tmp_path / "bad.pdf", cfg)


def test_truncated_jpeg_is_refused_as_corrupt(tmp_path: Path, scan: Path, cfg) -> None:
    data = scan.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(E.CorruptFile):
        open_file(tmp_path / "cut.jpg", cfg)


def test_password_protected_pdf_is_refused_as_encrypted(tmp_path: Path, cfg) -> None:
    w = PdfWriter()
    w.add_blank_page(595, 842)
    w.encrypt(user_password="bi-mat", owner_password="chu-so-huu", algorithm="AES-256")
    w.write(tmp_path / "locked.pdf")
    with pytest.raises(E.EncryptedPdf) as ei:
        open_file(tmp_path / "locked.pdf", cfg)
    assert "mật khẩu" in _vi(ei.value)


def test_pdf_with_owner_password_only_is_opened(tmp_path: Path, cfg) -> None:
    write_born_digital_pdf([("death_notice", 2)], tmp_path / "plain.pdf")
    from pypdf import PdfReader

    w = PdfWriter(clone_from=PdfReader(tmp_path / "plain.pdf"))
    w.encrypt(user_password="", owner_password="chu-so-huu", algorithm="AES-128")
    w.write(tmp_path / "restricted.pdf")
    intake = open_file(tmp_path / "restricted.pdf", cfg)
    assert isinstance(intake.pages[0], TextPage) and "GIẤY BÁO TỬ" in intake.pages[0].text


def test_pdf_with_thousands_of_pages_is_refused_before_reading_them(tmp_path: Path, cfg) -> None:
    w = PdfWriter()
    for _ in range(3000):
        w.add_blank_page(595, 842)
    w.write(tmp_path / "huge.pdf")
    with pytest.raises(E.TooManyPages) as ei:
        open_file(tmp_path / "huge.pdf", cfg)
    assert "3000" in ei.value.message and "trang" in _vi(ei.value)


def test_multipage_tiff_over_the_page_limit_is_refused(tmp_path: Path) -> None:
    small = load_config(limits={"max_pages": 5})
    pages = [Image.new("L", (50, 70), 255) for _ in range(8)]
    pages[0].save(tmp_path / "many.tif", save_all=True, append_images=pages[1:])
    with pytest.raises(E.TooManyPages):
        open_file(tmp_path / "many.tif", small)


def test_fifty_thousand_pixel_square_image_is_refused_without_decoding(tmp_path: Path, cfg) -> None:
    bomb = _png_header_only(tmp_path / "bomb.png", 50_000, 50_000)
    assert bomb.stat().st_size < 100_000
    with pytest.raises(E.ImageTooLarge) as ei:
        open_file(bomb, cfg)
    assert "50000 x 50000" in ei.value.message and "300 DPI" in _vi(ei.value)


def test_a_huge_pdf_page_is_listed_for_ocr_not_refused(tmp_path: Path, cfg) -> None:
    # 200 x 200 inches is 60000 x 60000 pixels at 300 DPI: it is rendered at the resolution the
    # pixel limit allows (see test_digitize_formats), not refused for its nominal size.
    w = PdfWriter()
    w.add_blank_page(14_400, 14_400)
    w.write(tmp_path / "poster.pdf")
    (job,) = open_file(tmp_path / "poster.pdf", cfg).ocr_jobs
    assert job.kind == "pdf_page"


def test_source_pixel_limit_is_configurable(tmp_path: Path, scan: Path) -> None:
    with pytest.raises(E.ImageTooLarge):
        open_file(scan, load_config(limits={"max_source_pixels": 1_000_000}))
    # The OCR raster limit alone does not refuse an image: it is read at a lower resolution.
    assert open_file(scan, load_config(limits={"max_pixels": 1_000_000})).ocr_jobs


def test_jpeg_named_pdf_is_refused_as_lying_extension(tmp_path: Path, scan: Path, cfg) -> None:
    liar = tmp_path / "giay-chung-sinh.pdf"
    liar.write_bytes(scan.read_bytes())
    with pytest.raises(E.ExtensionMismatch) as ei:
        open_file(liar, cfg)
    assert (
        ".pdf" in ei.value.message and "JPEG" in ei.value.message and "không khớp" in _vi(ei.value)
    )


def test_lying_extension_can_be_accepted_by_configuration(tmp_path: Path, scan: Path) -> None:
    liar = tmp_path / "giay-chung-sinh.pdf"
    liar.write_bytes(scan.read_bytes())
    intake = open_file(liar, load_config(intake={"extension_mismatch": "accept"}))
    assert intake.kind == "jpeg" and intake.notes


def test_html_named_jpg_is_refused_as_unsupported(tmp_path: Path, cfg) -> None:
    (tmp_path / "scan.jpg").write_bytes(b"<!DOCTYPE html><html><script>alert(1)</script></html>")
    with pytest.raises(E.UnsupportedFileType) as ei:
        open_file(tmp_path / "scan.jpg", cfg)
    assert "HTML" in ei.value.message


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "..", "a/../../b.pdf", "x\x00.pdf", "C:\\Windows\\x.jpg"]
)
def test_path_traversal_names_are_refused(name: str) -> None:
    with pytest.raises(E.UnsafeFileName) as ei:
        check_name(name)
    assert "Tên tệp không hợp lệ" in ei.value.message_vi


def test_file_refs_cannot_leave_the_intake_directory(tmp_path: Path) -> None:
    root = tmp_path / "uploads"
    root.mkdir()
    (root / "ok.jpg").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("s")
    (root / "link.jpg").symlink_to(tmp_path / "secret.txt")
    assert resolve_file_ref("ok.jpg", [root]) == (root / "ok.jpg").resolve()
    for ref in ["../secret.txt", str(tmp_path / "secret.txt"), "link.jpg", "sub/../../secret.txt"]:
        with pytest.raises(E.UnsafeFileName):
            resolve_file_ref(ref, [root])


def test_bad_files_in_a_batch_do_not_stop_the_good_ones(tmp_path: Path, cfg) -> None:
    write_born_digital_pdf([("birth_certificate", 4)], tmp_path / "good.pdf")
    (tmp_path / "empty.png").write_bytes(b"")
    results = digitize_files(
        [tmp_path / "empty.png", tmp_path / "good.pdf", tmp_path / "good.pdf"],
        tmp_path / "out",
        cfg,
        names=[None, "../good.pdf", None],
    )
    assert isinstance(results[0].error, E.EmptyFile)
    assert isinstance(results[1].error, E.UnsafeFileName)
    assert results[2].error is None and (tmp_path / "out" / "good.pdf").exists()


def test_real_type_comes_from_the_bytes() -> None:
    buf = io.BytesIO()
    Image.new("L", (10, 10)).save(buf, "PNG")
    assert sniff(buf.getvalue()) == "png"
    assert sniff(b"%PDF-1.4 ...") == "pdf"
    assert sniff(b"MZ\x90\x00") != "pdf"


def test_image_only_pdf_pages_become_ocr_jobs(tmp_path: Path, cfg) -> None:
    form = birth_certificate(5, Degradation(jpeg_quality=60))
    write_pdf([form.image, form.image], tmp_path / "scan.pdf")
    intake = open_file(tmp_path / "scan.pdf", cfg)
    assert [p.kind for p in intake.ocr_jobs] == ["pdf_page", "pdf_page"]
