"""Digitization of dossier components (số hóa): PDF/image files to searchable PDF, text, fields and
confidence, with a quality gate that sends weak results to a person. No Prefect here."""

from lienthong.digitize.config import DigitizeConfig, load_config
from lienthong.digitize.errors import DigitizeError
from lienthong.digitize.pipeline import FileResult, digitize_file, digitize_files

__all__ = [
    "DigitizeConfig",
    "DigitizeError",
    "FileResult",
    "digitize_file",
    "digitize_files",
    "load_config",
]
