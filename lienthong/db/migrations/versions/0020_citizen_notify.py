"""citizen: the outbox of messages to citizens, and revoked status links

Revision ID: 0020_citizen_notify
Revises: 0001_foundation
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_citizen_notify"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "citizen_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_key", sa.String(200), nullable=False, unique=True),
        sa.Column("history_id", sa.Integer, unique=True),
        sa.Column("dossier_code", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("channel_index", sa.Integer, nullable=False),
        sa.Column("channel", sa.String(16)),
        sa.Column("attempts", sa.Integer, nullable=False),
        _ts("next_attempt_at", False),
        sa.Column("last_error", sa.Text),
        sa.Column("reference", sa.String(32), nullable=False),
        sa.Column("provider_message_id", sa.String(64)),
        sa.Column("encoding", sa.String(8)),
        sa.Column("segments", sa.Integer),
        _ts("created_at", False),
        _ts("sent_at"),
        _ts("delivered_at"),
        sa.Column("delivery_status", sa.String(32)),
    )
    op.create_index("ix_citizen_messages_due", "citizen_messages", ["state", "next_attempt_at"])
    op.create_index("ix_citizen_messages_dossier_code", "citizen_messages", ["dossier_code"])
    op.create_index("ix_citizen_messages_reference", "citizen_messages", ["reference"])
    op.create_table(
        "status_capabilities",
        sa.Column("dossier_uid", sa.String(32), primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        _ts("revoked_at", False),
        sa.Column("revoked_by", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("status_capabilities")
    op.drop_index("ix_citizen_messages_reference", table_name="citizen_messages")
    op.drop_index("ix_citizen_messages_dossier_code", table_name="citizen_messages")
    op.drop_index("ix_citizen_messages_due", table_name="citizen_messages")
    op.drop_table("citizen_messages")
