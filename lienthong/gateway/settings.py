"""The gateway's section of the settings (``LIENTHONG_GATEWAY_*``, :class:`lienthong.settings.GatewaySettings`)."""

from __future__ import annotations

from lienthong.settings import GatewaySettings, get_settings

__all__ = ["GatewaySettings", "get_gateway_settings"]


def get_gateway_settings() -> GatewaySettings:
    return get_settings().gateway
