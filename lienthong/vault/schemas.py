"""JSON schemas of results' machine-readable data, one per result code (config/vault/schemas)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from lienthong.settings import get_settings
from lienthong.vault.errors import ResultDataInvalid


def schema_dir(config_dir: Path | None = None) -> Path:
    return (config_dir or get_settings().config_dir) / "vault" / "schemas"


@lru_cache
def _validator(path: str) -> Draft202012Validator:
    schema = json.loads(Path(path).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def load_schema(result_code: str, config_dir: Path | None = None) -> dict[str, Any]:
    path = schema_dir(config_dir) / f"{result_code}.json"
    if not path.exists():
        raise ResultDataInvalid(
            f"no JSON schema for result code {result_code} ({path})",
            message_vi=f"Chưa có lược đồ dữ liệu cho mã kết quả {result_code}.",
        )
    schema: dict[str, Any] = _validator(str(path)).schema  # type: ignore[assignment]
    return schema


def _field(error: Any) -> str:
    if error.absolute_path:
        return str(error.absolute_path[0])
    if error.validator == "required" and "'" in error.message:
        return str(error.message.split("'")[1])
    return "(root)"


def validate_result_data(result_code: str, data: Any, config_dir: Path | None = None) -> None:
    """Refuse data that does not match its result code's schema, naming every failing field."""
    load_schema(result_code, config_dir)
    validator = _validator(str(schema_dir(config_dir) / f"{result_code}.json"))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        where = "; ".join(
            f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.validator}"
            for e in errors[:5]
        )
        fields = ", ".join(sorted({_field(e) for e in errors}))
        # Field names and the failing rule only: the values may be personal data.
        raise ResultDataInvalid(
            f"{result_code}: data does not match its schema ({where})",
            message_vi=f"Dữ liệu kết quả {result_code} không đúng lược đồ (trường: {fields}).",
        )
