"""Where and how a result is collected, by the dossier's reception channel
(``collection:`` of ``config/notify/citizen.yaml``), and the receiving unit's name."""

from __future__ import annotations

import contextlib
from functools import lru_cache
from pathlib import Path

import yaml

from lienthong.settings import get_settings


@lru_cache(maxsize=4)
def _texts(path: str) -> dict[str, str]:
    with Path(path).open(encoding="utf-8") as fh:
        return dict(yaml.safe_load(fh)["collection"])


def unit_name() -> str:
    from lienthong.catalog import load_agencies

    with contextlib.suppress(Exception):
        return str(load_agencies(get_settings().config_dir).get("MOT_CUA", {}).get("name") or "")
    return ""


def collection_text(channel: str) -> str:
    texts = _texts(str(get_settings().config_dir / "notify" / "citizen.yaml"))
    text = texts.get(channel) or texts.get("in_person", "")
    return text.replace("{unit_name}", unit_name() or "Bộ phận Một cửa")
