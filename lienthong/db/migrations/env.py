"""Alembic environment: the URL comes from the caller (lienthong.db.migrate) or the settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import pool

# The feature tables live beside their code and import Base from lienthong.db.models; importing them
# here (not from models.py, which would be a cycle) puts them in the metadata Alembic compares.
from lienthong.citizen import capability as _status_capability  # noqa: F401
from lienthong.citizen import ratings as _citizen_ratings  # noqa: F401
from lienthong.db import get_engine
from lienthong.db.models import Base
from lienthong.gateway import models as _gateway_models  # noqa: F401
from lienthong.notify import citizen as _citizen_messages  # noqa: F401
from lienthong.portal import ledger as _portal_ledger  # noqa: F401
from lienthong.vault import index as _vault_index  # noqa: F401

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = get_engine(config.get_main_option("sqlalchemy.url") or None)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      poolclass=pool.NullPool)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
