"""The vault's section of the settings (``LIENTHONG_VAULT_*``, :class:`lienthong.settings.VaultSettings`)."""

from __future__ import annotations

from lienthong.settings import VaultSettings, get_settings

__all__ = ["VaultSettings", "get_vault_settings"]


def get_vault_settings() -> VaultSettings:
    return get_settings().vault
