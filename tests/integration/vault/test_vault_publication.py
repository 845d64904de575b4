"""Publishing results of finished steps (core path, PostgreSQL, the simulator's data shapes)."""

from __future__ import annotations

import json

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from lienthong.db import session_scope
from lienthong.vault.drafts import step_drafts
from lienthong.vault.errors import ResultDataInvalid
from lienthong.vault.index import VaultEvent, VaultLink, VaultResult
from lienthong.vault.prepare import prepare_result
from lienthong.vault.publish import publish
from lienthong.vault.store import OBJECT_PREFIX

from .conftest import counts, finish_step, received

pytestmark = pytest.mark.integration


def publish_step(env, code: str, step: str) -> list[str]:
    with session_scope() as s:
        drafts = step_drafts(s, code, step)
    return [publish(d, store=env["store"], keyring=env["keyring"]).address for d in drafts]


def test_a_birth_registration_publishes_the_birth_certificate_under_its_address(vault_env):
    code = received("lien-thong-khai-sinh", 1)
    outputs = finish_step(code, "khai_sinh")
    [address] = publish_step(vault_env, code, "khai_sinh")
    assert address == f"vault://UBND_XA/KQ.G15.000031/{code}.khai_sinh/v1"
    with session_scope() as s:
        row = s.scalar(select(VaultResult).where(VaultResult.address == address))
        assert row.owner_citizen_id == outputs["personal_id"]
        assert row.number == outputs["birth_extract"]["so_dang_ky"]
        assert row.procedure_code == "1.001193" and row.source_dossier_code == code
        assert row.issuing_body.startswith("Ủy ban nhân dân") and row.permanent
    stored = json.loads(vault_env["store"].get(row.json_key))
    assert stored["ho_ten"] == outputs["birth_extract"]["ho_ten"]
    text = (
        PdfReader(__import__("io").BytesIO(vault_env["store"].get(row.pdf_key)))
        .pages[0]
        .extract_text()
    )
    assert "GIẤY KHAI SINH" in text and outputs["birth_extract"]["ho_ten"] in text


def test_downstream_results_of_the_same_dossier_link_to_the_upstream_result(vault_env):
    code = received("lien-thong-khai-sinh", 2)
    finish_step(code, "khai_sinh")
    [birth] = publish_step(vault_env, code, "khai_sinh")
    finish_step(code, "bhyt")
    [card] = publish_step(vault_env, code, "bhyt")
    with session_scope() as s:
        card_row = s.scalar(select(VaultResult).where(VaultResult.address == card))
        links = s.execute(
            select(VaultLink.input_address).where(VaultLink.result_id == card_row.id)
        ).scalars()
        assert list(links) == [birth]
        # The card belongs to the child: the personal ID the civil-status step produced.
        birth_row = s.scalar(select(VaultResult).where(VaultResult.address == birth))
        assert card_row.owner_citizen_id == birth_row.owner_citizen_id


def test_publishing_the_same_result_again_writes_nothing(vault_env):
    code = received("lien-thong-khai-tu", 3, options={"procedures": 2})
    finish_step(code, "khai_tu")
    first = publish_step(vault_env, code, "khai_tu")
    objects = sorted(o.key for o in vault_env["store"].list(OBJECT_PREFIX))
    assert publish_step(vault_env, code, "khai_tu") == first
    assert sorted(o.key for o in vault_env["store"].list(OBJECT_PREFIX)) == objects
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(VaultResult)) == 1
        assert s.scalar(select(func.count()).select_from(VaultEvent)) == 1


def test_data_that_breaks_its_schema_is_refused_naming_the_field(vault_env):
    code = received("lien-thong-khai-sinh", 4)
    outputs = finish_step(code, "khai_sinh")
    outputs["birth_extract"]["ngay_sinh"] = "31/02/2026"
    finish_step(code, "khai_sinh", outputs)
    with session_scope() as s:
        [draft] = step_drafts(s, code, "khai_sinh")
    with pytest.raises(ResultDataInvalid) as err:
        prepare_result(draft)
    assert "ngay_sinh" in err.value.message_vi
    assert outputs["birth_extract"]["ho_ten"] not in err.value.message  # no personal data in errors


def test_an_object_write_failing_half_way_leaves_nothing_and_the_next_try_publishes(
    vault_env, monkeypatch
):
    """publish() writes the objects before the row: a write that fails half-way must delete the
    object it did write, and commit nothing."""
    code = received("lien-thong-khai-tu", 5, options={"procedures": 2})
    finish_step(code, "khai_tu")
    with session_scope() as s:
        [draft] = step_drafts(s, code, "khai_tu")
    store = vault_env["store"]
    real_put = type(store).put
    calls: list[str] = []

    def second_write_fails(self, key, data, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(key)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_put(self, key, data, **kwargs)

    monkeypatch.setattr(type(store), "put", second_write_fails)
    with pytest.raises(OSError):
        publish(draft, store=store, keyring=vault_env["keyring"])
    assert counts(vault_env) == (0, 0, 0)
    monkeypatch.setattr(type(store), "put", real_put)
    done = publish(draft, store=store, keyring=vault_env["keyring"])
    assert done.created and counts(vault_env) == (1, 1, 2)


def test_the_same_result_published_from_several_threads_at_once_is_stored_once(vault_env):
    from concurrent.futures import ThreadPoolExecutor

    code = received("lien-thong-khai-tu", 6, options={"procedures": 2})
    finish_step(code, "khai_tu")
    with session_scope() as s:
        [draft] = step_drafts(s, code, "khai_tu")
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(
            pool.map(
                lambda _: publish(draft, store=vault_env["store"], keyring=vault_env["keyring"]),
                range(4),
            )
        )
    assert sum(o.created for o in outcomes) == 1
    assert {o.address for o in outcomes} == {outcomes[0].address}
    assert counts(vault_env) == (1, 1, 2)
    with session_scope() as s:
        row = s.scalar(select(VaultResult))
    store = vault_env["store"]
    assert sorted(o.key for o in store.list(OBJECT_PREFIX)) == sorted([row.pdf_key, row.json_key])
