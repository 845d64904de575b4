"""vault: result index, derivation links, event hash chain, access log

Revision ID: 0002_vault
Revises: 0001_foundation
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from lienthong.db.append_only import drop_append_only, make_append_only

revision: str = "0002_vault"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("vault_events", "vault_access_log")


def upgrade() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "vault_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("lineage", sa.String(200), nullable=False),
        sa.Column("issuer", sa.String(32), nullable=False),
        sa.Column("result_code", sa.String(16), nullable=False),
        sa.Column("local_id", sa.String(120), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("owner_citizen_id", sa.String(12), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("issuing_body", sa.Text(), nullable=False),
        sa.Column("signer", sa.Text(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("permanent", sa.Boolean(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("procedure_code", sa.String(32), nullable=False),
        sa.Column("source_dossier_code", sa.String(40), nullable=False),
        sa.Column("source_step", sa.String(64), nullable=True),
        sa.Column("supersedes", sa.String(200), nullable=True),
        sa.Column("pdf_key", sa.String(120), nullable=False),
        sa.Column("pdf_sha256", sa.String(64), nullable=False),
        sa.Column("json_key", sa.String(120), nullable=False),
        sa.Column("json_sha256", sa.String(64), nullable=False),
        sa.Column("sealed", sa.JSON(), nullable=False),
        sa.Column("sealed_sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("published_at", ts, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("superseded_by", sa.String(200), nullable=True),
        sa.Column("needs_reissue", sa.Boolean(), nullable=False),
        sa.Column("reissue_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address"),
        sa.UniqueConstraint(
            "issuer", "result_code", "local_id", "version", name="uq_vault_results_identity"
        ),
    )
    op.create_index(
        "ix_vault_results_owner_code",
        "vault_results",
        ["owner_citizen_id", "result_code", "status"],
    )
    op.create_index("ix_vault_results_lineage", "vault_results", ["lineage"])
    op.create_index(
        "ix_vault_results_source_dossier_code", "vault_results", ["source_dossier_code"]
    )
    op.create_index("ix_vault_results_pdf_sha256", "vault_results", ["pdf_sha256"])
    op.create_index("ix_vault_results_json_sha256", "vault_results", ["json_sha256"])
    op.create_table(
        "vault_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("result_id", sa.Integer(), nullable=False),
        sa.Column("input_address", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["result_id"], ["vault_results.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("result_id", "input_address", name="uq_vault_links"),
    )
    op.create_index("ix_vault_links_input_address", "vault_links", ["input_address"])
    op.create_table(
        "vault_events",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", ts, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("actor", sa.String(32), nullable=False),
        sa.Column("dossier_code", sa.String(40), nullable=True),
        sa.Column("procedure_code", sa.String(32), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("hash"),
    )
    op.create_index("ix_vault_events_address", "vault_events", ["address"])
    op.create_table(
        "vault_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "vault_access_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", ts, nullable=False),
        sa.Column("agency", sa.String(32), nullable=False),
        sa.Column("address", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.Column("procedure_code", sa.String(32), nullable=True),
        sa.Column("dossier_code", sa.String(40), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_vault_access_log_agency", "vault_access_log", ["agency"])
    op.create_index("ix_vault_access_log_address", "vault_access_log", ["address"])

    for table in APPEND_ONLY:
        make_append_only(table)


def downgrade() -> None:
    for table in APPEND_ONLY:
        drop_append_only(table)
    op.drop_table("vault_access_log")
    op.drop_table("vault_chain_head")
    op.drop_table("vault_events")
    op.drop_table("vault_links")
    op.drop_table("vault_results")
