"""Prefect tasks around the result vault: keyed, compensating publication (prefect-notes.md §5),
once-only reuse at intake, and corrections. What each step does lives in ``lienthong.vault``."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.transactions import Transaction, get_transaction, transaction
from sqlalchemy import select

from lienthong.db import session_scope
from lienthong.vault import reuse
from lienthong.vault.corrections import correct_result
from lienthong.vault.drafts import load_dossier, step_drafts
from lienthong.vault.index import VaultResult
from lienthong.vault.prepare import PreparedResult, prepare_result
from lienthong.vault.publish import commit_result, write_objects
from lienthong.vault.references import discard_objects
from lienthong.vault.seal import Keyring
from lienthong.vault.settings import get_vault_settings
from lienthong.vault.store import Vault, open_store
from tasks.retry import retrying

WRITTEN = "vault_written_keys"


@lru_cache(maxsize=4)
def _store(settings_json: str) -> Vault:
    return open_store(get_vault_settings())


@lru_cache(maxsize=4)
def _keyring(settings_json: str) -> Keyring:
    return Keyring(get_vault_settings())


def store() -> Vault:
    return _store(get_vault_settings().model_dump_json())


def keyring() -> Keyring:
    return _keyring(get_vault_settings().model_dump_json())


def _slug(value: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")


def _artifact_key(prefix: str, value: str) -> str:
    return f"{prefix}-{_slug(value)}"[:100]


def get_run_logger_safe():  # type: ignore[no-untyped-def]
    import logging

    try:
        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a run (hooks may run late)
        return logging.getLogger("lienthong.vault")


@task(name="vault: write result objects", cache_policy=NO_CACHE)
def write_result_objects(prepared: PreparedResult) -> list[str]:
    """Objects first: the PDF and the JSON under their content hashes. The keys this run created are
    kept in the transaction so that a rollback deletes them."""
    written: list[str] = []
    try:
        write_objects(store(), prepared, written)
    except BaseException:
        discard_objects(store(), written)  # a failure half-way cleans up after itself
        raise
    txn = get_transaction()
    if txn is not None:
        txn.set(WRITTEN, written)
    return written


@write_result_objects.on_rollback
def _discard_written(txn: Transaction) -> None:
    keys = txn.get(WRITTEN, [])
    deleted = discard_objects(store(), keys)
    get_run_logger_safe().warning(
        "vault publication rolled back: deleted %d of %d objects written", len(deleted), len(keys)
    )


@task(name="vault: commit index row", cache_policy=NO_CACHE)
def commit_result_row(prepared: PreparedResult, written: list[str]) -> dict[str, Any]:
    """The database row last: the commit point. A row already at this address wins (a concurrent or
    earlier run): then the objects this run created, if unused, are discarded."""
    outcome = commit_result(prepared, store=store(), keyring=keyring(), created=written)
    if not outcome.created and written:
        discard_objects(store(), written)
    return {"address": outcome.address, "created": outcome.created, "flagged": outcome.flagged}


def _indexed(address: str) -> bool:
    with session_scope() as s:
        return s.scalar(select(VaultResult.id).where(VaultResult.address == address)) is not None


def _publish_body(prepared: PreparedResult, txn: Transaction) -> str:
    written = write_result_objects(prepared)
    outcome = commit_result_row(prepared, written)
    txn.stage(outcome["address"])
    return str(outcome["address"])


def publish_in_transaction(prepared: PreparedResult, key: str) -> str:
    """Publish one result inside the keyed transaction ``key``; a committed key publishes nothing."""
    address = str(prepared.address)
    with transaction(key=key) as txn:
        if not txn.is_committed():
            return _publish_body(prepared, txn)
        if _indexed(address):
            get_run_logger_safe().info(
                "vault: %s already published (transaction %s committed)", address, key
            )
            return address
    # The transaction record outlived the database (a fresh demo database, say): publish again; the
    # index row remains the judge of what exists.
    with transaction(key=key, overwrite=True) as txn:
        return _publish_body(prepared, txn)


def transaction_key(dossier_uid: str, step_key: str, result_code: str) -> str:
    # The dossier's UID, not its code: a fresh database hands the same codes out again.
    return f"vault-publish-{dossier_uid}-{_slug(step_key)}-{_slug(result_code)}"


@task(
    name="vault: publish step results",
    cache_policy=NO_CACHE,
    # An S3 outage: twice, after 2 and 10 s; a database outage: ~90 s.
    **retrying(others=2, delays=(2, 10, 15, 30, 30)),
)
def publish_step_results(dossier_code: str, step_key: str) -> list[str]:
    """Publish every catalog result of a finished step; returns their vault addresses."""
    with session_scope() as s:
        drafts = step_drafts(s, dossier_code, step_key)
        dossier = load_dossier(s, dossier_code)
        uid = dossier.uid
    addresses = []
    for draft in drafts:
        prepared = prepare_result(draft)
        key = transaction_key(uid, step_key, draft.result_code)
        addresses.append(publish_in_transaction(prepared, key))
    if addresses:
        get_run_logger_safe().info(
            "vault: %s/%s published %s", dossier_code, step_key, ", ".join(addresses)
        )
    return addresses


@task(name="vault: reuse components", cache_policy=NO_CACHE, **retrying(others=2))
def reuse_components(dossier_code: str) -> dict[str, Any]:
    """Once-only at intake: attach the components the vault already holds; the rest are asked for."""
    outcome = reuse.reuse_components(dossier_code, store=store(), keyring=keyring())
    rows = [
        {
            "component": r["code"],
            "outcome": "reused",
            "address": r["address"],
            "legal basis": r["legal_basis"],
        }
        for r in outcome["reused"]
    ]
    rows += [
        {"component": r["code"], "outcome": "not in the vault", "address": "", "legal basis": ""}
        for r in outcome["not_found"]
    ]
    rows += [
        {
            "component": r["code"],
            "outcome": f"refused: {r['why']}",
            "address": r["address"] or "",
            "legal basis": "",
        }
        for r in outcome["refused"]
    ]
    if rows:
        create_table_artifact(
            key=_artifact_key("vault-reuse", dossier_code),
            table=rows,
            description=f"Once-only reuse for dossier {dossier_code}",
        )
    get_run_logger_safe().info(
        "vault: %s reused %d component(s), %d not found",
        dossier_code,
        len(outcome["reused"]),
        len(outcome["not_found"]),
    )
    return outcome


@task(name="vault: correct result", cache_policy=NO_CACHE)
def correct_result_task(
    address: str,
    reason: str,
    actor: str,
    data: dict[str, Any] | None = None,
    changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Publish a corrected version; list the results issued from the old one as an artifact."""
    outcome = correct_result(
        address,
        reason=reason,
        actor=actor,
        data=data,
        changes=changes,
        store=store(),
        keyring=keyring(),
    )
    with session_scope() as s:
        flagged = list(
            s.execute(select(VaultResult).where(VaultResult.address.in_(outcome.flagged))).scalars()
        )
    table = [
        {
            "address": r.address,
            "result": r.name,
            "dossier": r.source_dossier_code,
            "issuer": r.issuer,
            "reason": r.reissue_reason or "",
        }
        for r in flagged
    ]
    create_table_artifact(
        key=_artifact_key("vault-reissue", address.split("//", 1)[-1].rsplit("/v", 1)[0]),
        table=table
        or [
            {
                "address": "",
                "result": "nothing was issued from the corrected result",
                "dossier": "",
                "issuer": "",
                "reason": "",
            }
        ],
        description=f"Results to re-issue after {address} was superseded by {outcome.address}",
    )
    return {"address": outcome.address, "supersedes": address, "flagged": outcome.flagged}
