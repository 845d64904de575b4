"""Typed errors for files that cannot be digitized. Each says, in Vietnamese, what the official
should ask the citizen for: the dossier is kept and the component is marked for supplement."""

from __future__ import annotations

from lienthong.errors import ExitCode, LienThongError
from lienthong.privacy import mask_ids_in_text


def shown(name: str) -> str:
    """The last part of a file name, with ID-number-like digit runs masked (names carry data)."""
    return mask_ids_in_text(name.replace("\\", "/").rsplit("/", 1)[-1])[:120]


class DigitizeError(LienThongError):
    """A component file that cannot be digitized as it is; ``code`` is stable for retry rules."""

    code = "digitize_error"
    exit_code = ExitCode.INPUT_FILE


class EmptyFile(DigitizeError):
    code = "empty_file"

    def __init__(self, name: str) -> None:
        name = shown(name)
        super().__init__(
            f"{name}: the file is empty (0 bytes)",
            message_vi=f"Tệp «{name}» rỗng (0 byte). Đề nghị nộp lại bản quét của giấy tờ.",
        )


class CorruptFile(DigitizeError):
    code = "corrupt_file"

    def __init__(self, name: str, detail: str) -> None:
        name = shown(name)
        super().__init__(
            f"{name}: the file is truncated or damaged ({detail})",
            message_vi=f"Tệp «{name}» bị hỏng hoặc không đầy đủ, không đọc được. "
            "Đề nghị quét và nộp lại giấy tờ.",
        )


class EncryptedPdf(DigitizeError):
    code = "encrypted_pdf"

    def __init__(self, name: str) -> None:
        name = shown(name)
        super().__init__(
            f"{name}: the PDF is password-protected",
            message_vi=f"Tệp PDF «{name}» được đặt mật khẩu nên không đọc được. "
            "Đề nghị nộp bản không đặt mật khẩu.",
        )


class TooManyPages(DigitizeError):
    code = "too_many_pages"

    def __init__(self, name: str, pages: int | str, limit: int) -> None:
        name = shown(name)
        super().__init__(
            f"{name}: {pages} pages, more than the limit of {limit}",
            message_vi=f"Tệp «{name}» có quá nhiều trang ({pages}; tối đa {limit} trang). "
            "Đề nghị chỉ nộp các trang của giấy tờ được yêu cầu.",
        )


class ImageTooLarge(DigitizeError):
    """A page larger than the pixel limit: a decompression bomb, or a scan far above 300 DPI."""

    code = "image_too_large"

    def __init__(self, name: str, width: int, height: int, limit: int) -> None:
        name = shown(name)
        super().__init__(
            f"{name}: page of {width} x {height} pixels exceeds the limit of {limit} pixels",
            message_vi=f"Ảnh trong tệp «{name}» quá lớn ({width} x {height} điểm ảnh). "
            "Đề nghị quét lại ở độ phân giải 300 DPI.",
        )


class FileTooLarge(DigitizeError):
    code = "file_too_large"

    def __init__(self, name: str, size: int, limit: int) -> None:
        name = shown(name)
        super().__init__(
            f"{name}: {size} bytes, more than the limit of {limit}",
            message_vi=f"Tệp «{name}» quá lớn ({size // 1_000_000} MB; tối đa "
            f"{limit // 1_000_000} MB). Đề nghị quét lại ở 300 DPI hoặc tách tệp.",
        )


class UnsupportedFileType(DigitizeError):
    code = "unsupported_file_type"

    def __init__(self, name: str, detected: str) -> None:
        name = shown(name)
        super().__init__(
            f"{name}: content is {detected}, not PDF, JPEG, PNG or TIFF",
            message_vi=f"Tệp «{name}» không phải bản quét PDF, JPEG, PNG hoặc TIFF "
            f"(nội dung thực là {detected}). Đề nghị nộp bản quét đúng định dạng.",
        )


class ExtensionMismatch(DigitizeError):
    """The name claims one type, the bytes are another (a lying extension)."""

    code = "extension_mismatch"

    def __init__(self, name: str, claimed: str, detected: str) -> None:
        name = shown(name)
        super().__init__(
            f"{name}: the extension says {claimed} but the content is {detected}",
            message_vi=f"Phần mở rộng của tệp «{name}» ({claimed}) không khớp với nội dung thực "
            f"({detected}). Đề nghị nộp lại tệp đúng định dạng.",
        )


class UnsafeFileName(DigitizeError):
    """A file name or reference that climbs out of its directory (path traversal) or hides bytes."""

    code = "unsafe_file_name"

    def __init__(self, name: str, detail: str) -> None:
        shown_ = mask_ids_in_text(name.encode("unicode_escape").decode("ascii"))[:80]
        super().__init__(
            f"{shown_!r}: unsafe file name ({detail})",
            message_vi="Tên tệp không hợp lệ (chứa đường dẫn hoặc ký tự không cho phép). "
            "Đề nghị đặt lại tên tệp và nộp lại.",
        )


class FileMissing(DigitizeError):
    code = "file_missing"

    def __init__(self, name: str) -> None:
        name = shown(name)
        super().__init__(
            f"{name}: file not found",
            message_vi=f"Không tìm thấy tệp «{name}» của thành phần hồ sơ. Đề nghị nộp lại tệp.",
        )


class OcrFailed(DigitizeError):
    """tesseract failed or timed out on a page: worth a retry, then a person."""

    code = "ocr_failed"

    def __init__(self, name: str, detail: str) -> None:
        name = shown(name)
        super().__init__(
            f"{name}: OCR failed ({detail})",
            message_vi=f"Không nhận dạng được nội dung tệp «{name}». Cán bộ cần kiểm tra bản quét.",
        )
