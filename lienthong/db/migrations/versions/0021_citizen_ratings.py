"""citizen: satisfaction ratings of delivered dossiers

Revision ID: 0021_citizen_ratings
Revises: 0001_foundation
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021_citizen_ratings"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "citizen_ratings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dossier_code", sa.String(40), nullable=False, unique=True),
        sa.Column("procedure_code", sa.String(32), nullable=False),
        sa.Column("agencies", sa.JSON, nullable=False),
        sa.Column("answers", sa.JSON, nullable=False),
        sa.Column("overall", sa.Integer, nullable=False),
        sa.Column("disliked", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_citizen_ratings_procedure_code", "citizen_ratings", ["procedure_code"])


def downgrade() -> None:
    op.drop_index("ix_citizen_ratings_procedure_code", table_name="citizen_ratings")
    op.drop_table("citizen_ratings")
