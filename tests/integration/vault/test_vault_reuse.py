"""Once-only reuse at intake: a result already in the vault is attached, not asked for again."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from sqlalchemy import select, update

from lienthong.db import session_scope
from lienthong.vault.drafts import step_drafts
from lienthong.vault.index import VaultAccess, VaultEvent, VaultResult
from lienthong.vault.publish import publish
from lienthong.vault.reads import reusable_addresses
from lienthong.vault.reuse import reuse_components

from .conftest import components_of
from .test_vault_publication import finish_step, publish_step, received

pytestmark = pytest.mark.integration
DECEASED = "001058012345"


def death_registered_earlier(env) -> str:
    """A first group-2 dossier (2 procedures) registered the death and published the extract."""
    code = received("lien-thong-khai-tu", 21, options={"procedures": 2}, deceased_id=DECEASED)
    finish_step(code, "khai_tu")
    [address] = publish_step(env, code, "khai_tu")
    return address


def reuse(env, code):
    return reuse_components(code, store=env["store"], keyring=env["keyring"])


def test_the_family_filing_for_the_allowance_is_not_asked_for_the_death_extract_again(vault_env):
    extract = death_registered_earlier(vault_env)
    later = received("tro-cap-mai-tang", 22, deceased_id=DECEASED)
    outcome = reuse(vault_env, later)
    assert [r["address"] for r in outcome["reused"]] == [extract]
    tlkt = components_of(later)["TLKT"]
    assert tlkt.vault_address == extract and tlkt.reused and tlkt.from_national_vault
    assert tlkt.status == "reused" and tlkt.file_ref is None
    with session_scope() as s:
        access = (
            s.execute(select(VaultAccess).where(VaultAccess.purpose == "reuse")).scalars().all()
        )
        assert [(a.address, a.granted, a.dossier_code) for a in access] == [(extract, True, later)]
        assert (
            "Luật Bảo hiểm xã hội 2024" in access[0].legal_basis
            and "1.014177" in access[0].legal_basis
        )
        event = s.execute(select(VaultEvent).where(VaultEvent.kind == "reuse")).scalar_one()
        assert event.address == extract and event.legal_basis == access[0].legal_basis


def test_nothing_in_the_vault_means_the_citizen_is_asked(vault_env):
    code = received("tro-cap-mai-tang", 23, deceased_id="001060099999")
    outcome = reuse(vault_env, code)
    assert outcome["reused"] == [] and [n["code"] for n in outcome["not_found"]] == ["TLKT"]
    assert "TLKT" not in components_of(code)


def test_another_persons_result_is_never_reused(vault_env):
    death_registered_earlier(vault_env)
    code = received("tro-cap-mai-tang", 24, deceased_id="001060011111")
    assert reuse(vault_env, code)["reused"] == []


def test_a_result_that_fails_verification_is_not_reused(vault_env):
    extract = death_registered_earlier(vault_env)
    from lienthong.vault.index import VaultResult

    with session_scope() as s:
        row = s.scalar(select(VaultResult).where(VaultResult.address == extract))
    path = vault_env["store"].root / row.json_key
    path.write_bytes(path.read_bytes().replace(b"}", b',"x":1}'))
    code = received("tro-cap-mai-tang", 25, deceased_id=DECEASED)
    assert reuse(vault_env, code)["reused"] == []
    with session_scope() as s:
        refused = (
            s.execute(select(VaultAccess).where(VaultAccess.granted.is_(False))).scalars().all()
        )
        assert refused and refused[0].reason.startswith("integrity")


def test_a_component_the_citizen_points_to_in_the_vault_is_attached_by_address(vault_env):
    extract = death_registered_earlier(vault_env)
    code = received(
        "lien-thong-khai-tu",
        26,
        options={"procedures": 3},
        deceased_id=DECEASED,
        components=[
            {"code": "TK02", "name": "Tờ khai", "file": "uploads/tk02.pdf"},
            {"code": "TLKT", "name": "Trích lục khai tử", "vault_address": extract},
        ],
    )
    outcome = reuse(vault_env, code)
    assert [r["code"] for r in outcome["reused"]] == ["TLKT"]
    assert components_of(code)["TLKT"].reused


def test_pointing_to_someone_elses_result_is_refused(vault_env):
    extract = death_registered_earlier(vault_env)
    code = received(
        "lien-thong-khai-tu",
        27,
        options={"procedures": 3},
        deceased_id="001060022222",
        components=[{"code": "TLKT", "name": "Trích lục khai tử", "vault_address": extract}],
    )
    outcome = reuse(vault_env, code)
    assert outcome["refused"][0]["why"] == "belongs to another person"
    assert not components_of(code)["TLKT"].reused


def test_the_look_up_offers_only_results_still_valid_on_the_day_and_not_flagged(vault_env):
    code = received("lien-thong-khai-tu", 25, options={"procedures": 2}, deceased_id=DECEASED)
    finish_step(code, "khai_tu")
    with session_scope() as s:
        [draft] = step_drafts(s, code, "khai_tu")
    limited = dataclasses.replace(draft, valid_until=date(2026, 6, 30))
    address = publish(limited, store=vault_env["store"], keyring=vault_env["keyring"]).address
    looked = lambda day: reusable_addresses(DECEASED, draft.result_code, on=day)  # noqa: E731
    assert looked(date(2026, 6, 30)) == [address]
    assert looked(date(2026, 7, 1)) == []  # past its validity
    assert reusable_addresses("001060011111", draft.result_code, on=date(2026, 6, 1)) == []
    with session_scope() as s:
        s.execute(update(VaultResult).values(needs_reissue=True))
    assert looked(date(2026, 6, 1)) == []  # flagged for re-issue after a correction
