"""Which objects a committed index row refers to, decided under per-digest locks that serialise
the publishers and the deleters of the same content (a content-addressed object may be shared by
several results, and a rollback or the orphan sweep must never delete one a commit is using)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from lienthong.db import session_scope
from lienthong.db.locks import lock_names
from lienthong.vault.index import VaultResult
from lienthong.vault.store import Vault, digest_of_key


def lock_digests(session: Session, digests: list[str]) -> None:
    """Take the locks of these objects for the session's transaction."""
    lock_names(session, digests)


def is_referenced(session: Session, digest: str) -> bool:
    """Whether a committed result refers to the object of this digest (call under its lock)."""
    return (
        session.scalar(
            select(VaultResult.id)
            .where(or_(VaultResult.pdf_sha256 == digest, VaultResult.json_sha256 == digest))
            .limit(1)
        )
        is not None
    )


def delete_if_unreferenced(
    store: Vault, key: str, *, session_url: str | None = None, dry_run: bool = False
) -> bool:
    """Delete the object ``key`` unless a committed row refers to it; True when it is (or, with
    ``dry_run``, would be) deleted. Keys that are not content addresses are left alone."""
    d = digest_of_key(key)
    if d is None:
        return False
    with session_scope(session_url) as s:
        lock_digests(s, [d])
        if is_referenced(s, d):
            return False
        if not dry_run:
            store.delete(key)
        return True


def discard_objects(store: Vault, keys: list[str], session_url: str | None = None) -> list[str]:
    """Delete objects written by a publication that did not commit, unless a committed row uses them
    (content-addressed keys are shared by identical files). Returns the keys deleted."""
    return [k for k in keys if delete_if_unreferenced(store, k, session_url=session_url)]
