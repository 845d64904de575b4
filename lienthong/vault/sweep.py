"""The orphan sweep: objects no index row refers to, older than a grace period, are deleted.

Orphans come from publications that crashed between writing objects and committing the row (the
rollback hook never ran). The grace period keeps the sweep away from publications in progress."""

from __future__ import annotations

from datetime import datetime, timedelta

from lienthong.clock import get_clock
from lienthong.vault.references import delete_if_unreferenced
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
    return [
        info
        for info in store.list(OBJECT_PREFIX)
        if digest_of_key(info.key) is not None
        and info.modified <= cutoff
        and delete_if_unreferenced(store, info.key, session_url=session_url, dry_run=dry_run)
    ]
