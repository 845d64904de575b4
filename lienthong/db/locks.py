"""Named locks held until the end of the caller's transaction, for writers that must not overlap
on the same thing without a row to lock (e.g. the vault's objects, by digest)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session


def lock_names(session: Session, names: Iterable[str]) -> None:
    """Take the locks of ``names`` for the session's transaction, always in the same order (two
    transactions locking overlapping names never deadlock). PostgreSQL: transaction-scoped advisory
    locks. SQLite has one writer at a time already: the transaction's first write takes it."""
    wanted = sorted(set(names))
    if not wanted or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(d, 0))) "
            "FROM (SELECT unnest(CAST(:ds AS text[])) AS d ORDER BY 1) AS sorted"
        ),
        {"ds": wanted},
    )
