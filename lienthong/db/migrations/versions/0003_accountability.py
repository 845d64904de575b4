"""accountability: portal sync ledger and checkpoints, sweep events, lateness, read-only history

Revision ID: 0003_accountability
Revises: 0001_foundation
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_accountability"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "portal_sync",
        sa.Column("dossier_code", sa.String(40), primary_key=True),
        sa.Column("dossier_id", sa.Integer(), nullable=False),
        sa.Column("hoso_hash", sa.String(64)),
        sa.Column("progress_hash", sa.String(64)),
        sa.Column("progress_count", sa.Integer(), nullable=False),
        sa.Column("portal_status", sa.Integer()),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("sent_at", _TS),
        sa.Column("acked_at", _TS),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text()),
    )
    op.create_index("ix_portal_sync_dossier_id", "portal_sync", ["dossier_id"])
    op.create_index("ix_portal_sync_state", "portal_sync", ["state"])
    op.create_table(
        "portal_checkpoints",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("finished_at", _TS),
    )
    op.create_table(
        "sweep_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dossier_id", sa.Integer(), nullable=False),
        sa.Column("dossier_code", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("agency", sa.String(32), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.UniqueConstraint("dossier_id", "subject", "kind"),
    )
    op.create_index("ix_sweep_events_dossier_id", "sweep_events", ["dossier_id"])
    op.create_table(
        "lateness",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("dossier_id", sa.Integer(), nullable=False),
        sa.Column("dossier_code", sa.String(40), nullable=False),
        sa.Column("procedure_code", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("agency", sa.String(32), nullable=False),
        sa.Column("overrun_seconds", sa.Float(), nullable=False),
        sa.Column("primary", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("due_at", _TS, nullable=False),
        sa.Column("recorded_at", _TS, nullable=False),
        sa.UniqueConstraint("dossier_id", "subject"),
    )
    op.create_index("ix_lateness_dossier_id", "lateness", ["dossier_id"])
    op.create_index("ix_lateness_agency", "lateness", ["agency"])
    op.create_table(
        "history_dossiers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(40), nullable=False, unique=True),
        sa.Column("procedure_code", sa.String(32), nullable=False),
        sa.Column("agency", sa.String(32), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("due_at", _TS),
        sa.Column("finished_at", _TS),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("supplement_requests", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("imported_at", _TS, nullable=False),
    )
    op.create_index("ix_history_received", "history_dossiers", ["received_at"])
    op.create_index("ix_history_dossiers_agency", "history_dossiers", ["agency"])
    # History is read-only: the database refuses UPDATE and DELETE (like the status history).
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            """
            CREATE OR REPLACE FUNCTION history_dossiers_read_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION 'history_dossiers is read-only'; END; $$ LANGUAGE plpgsql;
            CREATE TRIGGER history_dossiers_no_change BEFORE UPDATE OR DELETE ON history_dossiers
            FOR EACH ROW EXECUTE FUNCTION history_dossiers_read_only();
            """
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER history_dossiers_no_{action.lower()} BEFORE {action} "
                "ON history_dossiers BEGIN "
                "SELECT RAISE(ABORT, 'history_dossiers is read-only'); END;"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS history_dossiers_no_change ON history_dossiers")
        op.execute("DROP FUNCTION IF EXISTS history_dossiers_read_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS history_dossiers_no_update")
        op.execute("DROP TRIGGER IF EXISTS history_dossiers_no_delete")
    for table in (
        "history_dossiers",
        "lateness",
        "sweep_events",
        "portal_checkpoints",
        "portal_sync",
    ):
        op.drop_table(table)
