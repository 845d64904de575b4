"""vault: the chain head starts at the genesis hash (one row, written here rather than by the first
publication, so that appending to the chain is the same statement on an empty vault)

Revision ID: 0020_corev_chain_genesis
Revises: 0002_vault
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_corev_chain_genesis"
down_revision: str | Sequence[str] | None = "0002_vault"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64


def upgrade() -> None:
    head = sa.table("vault_chain_head", sa.column("id"), sa.column("last_hash"), sa.column("length"))
    bind = op.get_bind()
    if bind.execute(sa.select(head.c.id).where(head.c.id == 1)).first() is None:
        op.execute(head.insert().values(id=1, last_hash=GENESIS_HASH, length=0))


def downgrade() -> None:
    # The head of a chain that has events is part of the record; only a genesis head goes.
    head = sa.table("vault_chain_head", sa.column("id"), sa.column("length"))
    op.execute(head.delete().where(head.c.id == 1, head.c.length == 0))
