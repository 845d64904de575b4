"""The fast commit paths: one statement per publication (PostgreSQL hashes the chain event) and
publish_many's group commit; and the file store's handling of an object a crash cut short."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lienthong.db import session_scope
from lienthong.vault.chain import body_of, chain_hash, verify_chain
from lienthong.vault.errors import PublicationConflict
from lienthong.vault.index import VaultChainHead, VaultEvent, VaultLink, VaultResult
from lienthong.vault.publish import (
    ResultDraft,
    commit_result,
    prepare_result,
    publish,
    publish_many,
    write_objects,
)
from lienthong.vault.store import OBJECT_PREFIX, FileVault, object_key, sha256_hex
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


def test_publish_many_commits_a_group_in_one_chain_run_and_a_rerun_writes_nothing(vault_env):
    env = vault_env
    publish(draft(0), store=env["store"], keyring=env["keyring"])
    group = [draft(i) for i in range(1, 6)]
    out = publish_many(group, store=env["store"], keyring=env["keyring"])
    assert [c.created for c in out] == [True] * 5
    assert [c.address for c in out] == [str(prepare_result(d).address) for d in group]
    assert counts() == (6, 6, 6)
    objects = sorted(o.key for o in env["store"].list(OBJECT_PREFIX))
    mixed = publish_many([draft(3), draft(6)], store=env["store"], keyring=env["keyring"])
    assert [c.created for c in mixed] == [False, True]
    assert counts() == (7, 7, 7)
    assert len(list(env["store"].list(OBJECT_PREFIX))) == len(objects) + 2
    with session_scope() as s:
        problems, _ = verify_chain(s)
        assert problems == []
    assert verify_vault(store=env["store"], keyring=env["keyring"]).ok


def test_publish_many_is_all_or_nothing(vault_env, monkeypatch):
    env = vault_env
    publish(draft(0), store=env["store"], keyring=env["keyring"])
    before = sorted(o.key for o in env["store"].list(OBJECT_PREFIX))
    import lienthong.vault.publish as pub

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("database went away during the group commit")

    monkeypatch.setattr(pub, "_missing_objects_many", broken)
    with pytest.raises(ConnectionError):
        publish_many([draft(i) for i in range(1, 4)], store=env["store"], keyring=env["keyring"])
    assert counts() == (1, 1, 1)
    assert sorted(o.key for o in env["store"].list(OBJECT_PREFIX)) == before


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


def test_a_row_sent_while_its_objects_flush_commits_only_once_they_are_durable(vault_env):
    env = vault_env
    store = env["store"]
    publish(draft(0), store=store, keyring=env["keyring"])  # the chain head exists
    start = store.start_put_contents
    seen: list[tuple[int, int, int]] = []

    def flushing(fail: bool):  # type: ignore[no-untyped-def]
        def start_put_contents(objects, **kwargs):  # type: ignore[no-untyped-def]
            durable = start(objects, **kwargs)

            def wait() -> None:
                seen.append(counts())  # the row's statement has run by now, uncommitted
                durable()
                if fail:
                    raise OSError("fsync: input/output error")

            return wait

        return start_put_contents

    store.start_put_contents = flushing(fail=True)
    with pytest.raises(OSError):
        publish(draft(1), store=store, keyring=env["keyring"])
    assert counts() == (1, 1, 1)
    assert not any(store.exists(k) for k in prepare_result(draft(1)).keys)
    store.start_put_contents = flushing(fail=False)
    assert publish(draft(2), store=store, keyring=env["keyring"]).created  # no lock left behind
    assert seen == [(1, 1, 1), (1, 1, 1)]
    assert counts() == (2, 2, 2)
    assert verify_vault(store=store, keyring=env["keyring"]).ok
