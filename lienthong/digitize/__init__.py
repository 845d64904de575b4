"""Digitization of dossier components (số hóa): PDF/image files to searchable PDF, text, fields and
confidence, with a quality gate that sends weak results to a person. No Prefect here.

The names below load on first use: a page worker importing ``lienthong.digitize.ocr`` (the pool's
fork server preloads it) must not pay for the pipeline, pypdf and the settings it never uses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lienthong.digitize.config import DigitizeConfig, load_config
    from lienthong.digitize.errors import DigitizeError
    from lienthong.digitize.pipeline import FileResult, digitize_file, digitize_files

_WHERE = {
    "DigitizeConfig": "config",
    "load_config": "config",
    "DigitizeError": "errors",
    "FileResult": "pipeline",
    "digitize_file": "pipeline",
    "digitize_files": "pipeline",
}

__all__ = [
    "DigitizeConfig",
    "DigitizeError",
    "FileResult",
    "digitize_file",
    "digitize_files",
    "load_config",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"lienthong.digitize.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'lienthong.digitize' has no attribute {name!r}")
