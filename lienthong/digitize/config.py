"""Settings of digitization: ``config/digitize.yaml``, or ``$LIENTHONG_DIGITIZE_CONFIG``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from lienthong.settings import get_settings


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_M):
    max_file_bytes: int = Field(default=200_000_000, gt=0)
    max_pages: int = Field(default=300, gt=0)
    max_pixels: int = Field(default=60_000_000, gt=0)  # the raster OCRed: larger is read smaller
    max_source_pixels: int = Field(default=250_000_000, gt=0)  # an image decoded: larger is a bomb
    page_timeout_seconds: float = Field(default=120, gt=0)


class TextLayer(_M):
    min_chars: int = 20
    max_garbage_share: float = 0.2


class Ocr(_M):
    dpi: int = Field(default=300, ge=72, le=600)
    psm: int = 3
    workers: int = Field(default=0, ge=0)
    executor: Literal["process", "thread"] = "process"
    start_method: Literal["fork", "forkserver", "spawn"] = "fork"
    low_word_confidence: float = 60
    batch_pages: int = Field(default=8, ge=1)

    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


class Orientation(_M):
    recheck_below_confidence: float = 55
    min_osd_confidence: float = 1.5


class Deskew(_M):
    min_degrees: float = 1.0
    max_degrees: float = 5.0


class Photos(_M):
    enabled: bool = True
    min_page_share: float = Field(default=0.2, gt=0, lt=1)
    max_page_share: float = Field(default=0.93, gt=0, le=1)


class Diacritics(_M):
    min_words: int = 20
    max_plain_share: float = 0.8
    max_invalid_share: float = 0.15


class Quality(_M):
    page_min_confidence: float = 75
    max_low_confidence_share: float = 0.25
    field_min_confidence: float = 0.6
    diacritics: Diacritics = Diacritics()


class Intake(_M):
    extension_mismatch: Literal["reject", "accept"] = "reject"
    allowed_roots: list[str] = ["."]

    def roots(self) -> list[Path]:
        base = get_settings().var_dir
        return [
            (base / r).resolve() if not Path(r).is_absolute() else Path(r).resolve()
            for r in self.allowed_roots
        ]


class DigitizeConfig(_M):
    legal_basis: list[dict[str, Any]] = []
    languages: list[str] = ["vie"]
    mixed_languages: list[str] = ["vie", "eng"]
    limits: Limits = Limits()
    text_layer: TextLayer = TextLayer()
    ocr: Ocr = Ocr()
    orientation: Orientation = Orientation()
    deskew: Deskew = Deskew()
    photos: Photos = Photos()
    quality: Quality = Quality()
    intake: Intake = Intake()

    @property
    def lang(self) -> str:
        return "+".join(self.languages)


def config_path() -> Path:
    env = os.environ.get("LIENTHONG_DIGITIZE_CONFIG")
    return Path(env) if env else get_settings().config_dir / "digitize.yaml"


def load_config(path: Path | None = None, **overrides: Any) -> DigitizeConfig:
    """The digitization settings; ``overrides`` replace top-level sections (tests, the bench)."""
    path = path or config_path()
    data: dict[str, Any] = {}
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return DigitizeConfig.model_validate(data)
