"""Tables of the gateway: the nonces already used, per agency (replay protection)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from lienthong.db.models import Base


class GatewayNonce(Base):
    """A nonce seen once; kept in the database so replays are refused across restarts and replicas.

    Rows older than twice the timestamp window can go: a request that old fails the timestamp check.
    """

    __tablename__ = "gateway_nonces"
    agency: Mapped[str] = mapped_column(String(32), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(nullable=False, index=True)
