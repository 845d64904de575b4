"""Publication inside keyed Prefect transactions on a real (test) Prefect server and PostgreSQL:
a failure between the object writes and the row leaves nothing, a re-run writes nothing, and two
concurrent publications of the same result produce one."""

from __future__ import annotations

import pytest
from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

import tasks.vault as vault_tasks
from lienthong.vault.store import OBJECT_PREFIX

from .conftest import counts
from .test_vault_publication import finish_step, received

pytestmark = [pytest.mark.integration, pytest.mark.flows]


@flow
def publish_once(dossier_code: str, step_key: str) -> list[str]:
    return vault_tasks.publish_step_results.with_options(retries=0)(dossier_code, step_key)


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def publish_twice_at_once(dossier_code: str, step_key: str) -> list[list[str]]:
    task = vault_tasks.publish_step_results.with_options(retries=0)
    futures = [task.submit(dossier_code, step_key) for _ in range(2)]
    return [f.result() for f in futures]


def test_a_published_step_result_is_committed_once_and_a_rerun_writes_nothing(
    prefect_server, vault_env
):
    code = received("lien-thong-khai-sinh", 51)
    finish_step(code, "khai_sinh")
    first = publish_once(code, "khai_sinh")
    assert first == [f"vault://UBND_XA/KQ.G15.000031/{code}.khai_sinh/v1"]
    assert counts(vault_env) == (1, 1, 2)
    mtimes = {o.key: o.modified for o in vault_env["store"].list(OBJECT_PREFIX)}
    assert publish_once(code, "khai_sinh") == first
    assert counts(vault_env) == (1, 1, 2)
    assert {o.key: o.modified for o in vault_env["store"].list(OBJECT_PREFIX)} == mtimes


def test_a_failure_between_the_object_writes_and_the_row_leaves_nothing(
    prefect_server, vault_env, monkeypatch
):
    code = received("lien-thong-khai-tu", 52, options={"procedures": 2})
    finish_step(code, "khai_tu")
    written: list[str] = []
    real_write = vault_tasks.write_objects

    def spy(store, prepared, out=None):  # type: ignore[no-untyped-def]
        keys = real_write(store, prepared, out)
        written.extend(keys)
        return keys

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ConnectionError("database went away before the index row was written")

    monkeypatch.setattr(vault_tasks, "write_objects", spy)
    monkeypatch.setattr(vault_tasks, "commit_result", crash)
    with pytest.raises(ConnectionError):
        publish_once(code, "khai_tu")
    assert len(written) == 2  # the objects were written, then rolled back
    assert counts(vault_env) == (0, 0, 0)
    # The transaction did not commit: once the database is back, the same run publishes.
    monkeypatch.undo()
    assert len(publish_once(code, "khai_tu")) == 1
    assert counts(vault_env) == (1, 1, 2)


def test_two_concurrent_publications_of_the_same_result_produce_one(prefect_server, vault_env):
    code = received("lien-thong-khai-sinh", 53)
    finish_step(code, "khai_sinh")
    a, b = publish_twice_at_once(code, "khai_sinh")
    assert a == b and len(a) == 1
    assert counts(vault_env) == (1, 1, 2)


def test_the_sweep_deletes_only_orphans_older_than_the_grace_period(prefect_server, vault_env):
    import os
    import time

    from flows.vault_sweep import vault_sweep

    code = received("lien-thong-khai-sinh", 54)
    finish_step(code, "khai_sinh")
    publish_once(code, "khai_sinh")
    store = vault_env["store"]
    old_key, _, _ = store.put_content(b"orphan of a crashed publication")
    fresh_key, _, _ = store.put_content(b"publication in progress")
    two_days_ago = time.time() - 48 * 3600
    os.utime(store.root / old_key, (two_days_ago, two_days_ago))
    for o in store.list(OBJECT_PREFIX):  # the published result's objects are old too, but in use
        if o.key not in (old_key, fresh_key):
            os.utime(store.root / o.key, (two_days_ago, two_days_ago))
    vault_env["clock"].set(__import__("datetime").datetime.now())
    assert vault_sweep(grace_hours=24, dry_run=True)["orphans"] == 1 and store.exists(old_key)
    assert vault_sweep(grace_hours=24) == {"orphans": 1, "bytes": 31, "dry_run": False}
    assert not store.exists(old_key) and store.exists(fresh_key)
    assert counts(vault_env) == (1, 1, 3)
