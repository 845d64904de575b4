"""The commit of a publication: the chain event hashed by chain.py, an address published once,
objects checked under their locks, nothing left behind by a failure; and the file store's handling
of an object a crash cut short."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lienthong.db import session_scope
from lienthong.vault.chain import body_of, chain_hash, verify_chain
from lienthong.vault.errors import PublicationConflict
from lienthong.vault.index import VaultChainHead, VaultEvent, VaultLink, VaultResult
from lienthong.vault.prepare import ResultDraft, prepare_result
from lienthong.vault.publish import commit_result, publish, write_objects
from lienthong.vault.store import FileVault, object_key, sha256_hex
from lienthong.vault.verify import verify_vault
from samples.results import death_extract_data, death_extract_draft

pytestmark = pytest.mark.integration


def draft(i: int, *, pdf: bytes | None = None, inputs: tuple[str, ...] = ()) -> ResultDraft:
    return death_extract_draft(
        f"group-{i}",
        death_extract_data(f"{i:06d}", f"001055{i:06d}"),
        pdf if pdf is not None else b"%PDF-1.7\n" + f"result {i}".encode() * 50,
        dossier_seq=i,
        inputs=inputs,
    )


def counts() -> tuple[int, int, int]:
    with session_scope() as s:
        head = s.get(VaultChainHead, 1)
        return (
            s.scalar(select(func.count()).select_from(VaultResult)) or 0,
            s.scalar(select(func.count()).select_from(VaultEvent)) or 0,
            head.length if head else 0,
        )


def test_single_publications_chain_events_that_python_recomputes(vault_env):
    env = vault_env
    first = publish(draft(1), store=env["store"], keyring=env["keyring"])  # creates the head
    later = [publish(draft(i), store=env["store"], keyring=env["keyring"]) for i in (2, 3)]
    linked = publish(draft(4, inputs=(first.address,)), store=env["store"], keyring=env["keyring"])
    assert all(c.created for c in [first, *later, linked])
    with session_scope() as s:
        problems, events = verify_chain(s)
        assert problems == [] and len(events) == 4
        for prev, ev in zip([None, *events], events, strict=False):
            body = body_of(ev)
            assert ev.prev_hash == (prev.hash if prev else "0" * 64)
            assert ev.hash == chain_hash(ev.prev_hash, body)
        row = s.scalar(select(VaultResult).where(VaultResult.address == linked.address))
        assert list(
            s.scalars(select(VaultLink.input_address).where(VaultLink.result_id == row.id))
        ) == [first.address]
    report = verify_vault(store=env["store"], keyring=env["keyring"])
    assert report.ok, report.problems
    assert counts() == (4, 4, 4)


def test_an_existing_address_is_returned_not_published_again(vault_env):
    env = vault_env
    publish(draft(1), store=env["store"], keyring=env["keyring"])
    again = publish(draft(1), store=env["store"], keyring=env["keyring"])
    assert again.created is False
    assert counts() == (1, 1, 1)


def test_a_shared_object_deleted_before_the_row_is_a_conflict_and_nothing_commits(vault_env):
    env = vault_env
    publish(draft(1), store=env["store"], keyring=env["keyring"])  # the chain head exists
    pdf = b"%PDF-1.7 shared bytes of two results"
    prepared = prepare_result(draft(2, pdf=pdf))
    env["store"].put_content(pdf)  # written earlier by another publication...
    written = write_objects(env["store"], prepared)
    assert object_key(sha256_hex(pdf)) not in written
    env["store"].delete(object_key(sha256_hex(pdf)))  # ...whose rollback deleted it meanwhile
    with pytest.raises(PublicationConflict) as err:
        commit_result(prepared, store=env["store"], keyring=env["keyring"], created=written)
    assert err.value.message_vi
    assert counts() == (1, 1, 1)


def test_an_object_a_crash_cut_short_is_rewritten_when_its_content_is_put_again(tmp_path):
    store = FileVault(tmp_path / "vault")
    data = b"%PDF-1.7 " + bytes(range(256)) * 40
    key = object_key(sha256_hex(data))
    path = store.root / key
    path.parent.mkdir(parents=True)
    path.write_bytes(data[:100])  # linked, then the machine lost power before the data was flushed
    assert store.put_content(data) == (key, sha256_hex(data), False)
    assert store.get(key) == data
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")]


def test_the_first_publication_of_an_empty_vault_follows_the_genesis_head(vault_env):
    env = vault_env
    assert counts() == (0, 0, 0)
    with session_scope() as s:
        head = s.get(VaultChainHead, 1)
        assert head is not None and head.last_hash == "0" * 64
    publish(draft(1), store=env["store"], keyring=env["keyring"])
    with session_scope() as s:
        problems, events = verify_chain(s)
        assert problems == [] and events[0].prev_hash == "0" * 64
