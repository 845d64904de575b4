"""The orphan sweep: objects no index row refers to, older than a grace period, are deleted.

Orphans come from publications that crashed between writing objects and committing the row (the
rollback hook never ran). The grace period keeps the sweep away from publications in progress."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select

from lienthong.clock import get_clock
from lienthong.db import session_scope
from lienthong.vault.index import VaultResult
from lienthong.vault.publish import lock_digests
from lienthong.vault.store import OBJECT_PREFIX, ObjectInfo, Vault, digest_of_key


def sweep_orphans(
    store: Vault,
    *,
    grace: timedelta,
    now: datetime | None = None,
    dry_run: bool = False,
    session_url: str | None = None,
) -> list[ObjectInfo]:
    """Delete (or, with ``dry_run``, only list) unreferenced objects last modified before now - grace."""
    cutoff = (now or get_clock().now()) - grace
    removed: list[ObjectInfo] = []
    for info in store.list(OBJECT_PREFIX):
        d = digest_of_key(info.key)
        if d is None or info.modified > cutoff:
            continue
        with session_scope(session_url) as s:
            lock_digests(s, [d])
            used = s.scalar(
                select(VaultResult.id)
                .where(or_(VaultResult.pdf_sha256 == d, VaultResult.json_sha256 == d))
                .limit(1)
            )
            if used is not None:
                continue
            if not dry_run:
                store.delete(info.key)
        removed.append(info)
    return removed
