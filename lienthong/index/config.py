"""The index rules (``config/service_index.yaml``), loaded once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from lienthong.settings import get_settings


@dataclass(frozen=True)
class IndicatorSpec:
    id: str
    group: str
    name: str
    kind: str
    max_points: float
    threshold: float = 1.0
    confirmed: bool = True


@dataclass(frozen=True)
class IndexConfig:
    groups: dict[str, dict[str, Any]]
    rule: dict[str, Any]
    indicators: tuple[IndicatorSpec, ...]
    result_keys: list[str]
    legal_basis: list[dict[str, Any]]

    @classmethod
    def load(cls, config_dir: Path) -> IndexConfig:
        with (config_dir / "service_index.yaml").open(encoding="utf-8") as fh:
            raw = yaml.safe_load(fh)
        return cls(
            groups=dict(raw["groups"]),
            rule=dict(raw["on_time_rule"]),
            indicators=tuple(IndicatorSpec(**i) for i in raw["indicators"]),
            result_keys=list(raw.get("digitization", {}).get("result_delivery_keys", ["vault"])),
            legal_basis=list(raw.get("legal_basis", [])),
        )


@lru_cache
def _cached(config_dir: str) -> IndexConfig:
    return IndexConfig.load(Path(config_dir))


def get_index_config() -> IndexConfig:
    return _cached(str(get_settings().config_dir))
