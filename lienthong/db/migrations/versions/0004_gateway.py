"""gateway: nonces used by each agency (replay protection)

Revision ID: 0004_gateway
Revises: 0001_foundation
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_gateway"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_nonces",
        sa.Column("agency", sa.String(32), nullable=False),
        sa.Column("nonce", sa.String(128), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agency", "nonce"),
    )
    op.create_index("ix_gateway_nonces_seen_at", "gateway_nonces", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_gateway_nonces_seen_at", table_name="gateway_nonces")
    op.drop_table("gateway_nonces")
