"""Corrections: a new version supersedes the old one (kept); results issued from it are flagged."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lienthong.db import session_scope
from lienthong.vault.corrections import correct_result, flagged_for_reissue
from lienthong.vault.errors import VaultError
from lienthong.vault.index import VaultResult
from lienthong.vault.reads import find_results, get_result
from lienthong.vault.verify import verify_vault

from .test_vault_publication import finish_step, publish_step, received

pytestmark = pytest.mark.integration


@pytest.fixture
def group_1(vault_env):
    """A birth registration whose extract was used by the residence and health-insurance steps."""
    code = received("lien-thong-khai-sinh", 31)
    finish_step(code, "khai_sinh")
    [birth] = publish_step(vault_env, code, "khai_sinh")
    finish_step(code, "thuong_tru")
    finish_step(code, "bhyt")
    [residence] = publish_step(vault_env, code, "thuong_tru")
    [card] = publish_step(vault_env, code, "bhyt")
    return vault_env, birth, residence, card


def correct(env, address, **kw):
    return correct_result(
        address, store=env["store"], keyring=env["keyring"], actor="UBND_XA", **kw
    )


def test_a_corrected_birth_certificate_is_a_new_version_and_the_old_one_stays(group_1):
    env, birth, _, _ = group_1
    old = get_result(birth, agency="UBND_XA", store=env["store"])
    fixed = dict(old.data, ho_ten=old.data["ho_ten"] + " Anh")
    outcome = correct(env, birth, data=fixed, reason="Sai tên theo giấy chứng sinh")
    assert outcome.address == birth.replace("/v1", "/v2")
    still = get_result(birth, agency="UBND_XA", store=env["store"])
    assert still.status == "superseded" and still.superseded_by == outcome.address
    assert still.data == old.data
    new = get_result(outcome.address, agency="UBND_XA", store=env["store"])
    assert new.data["ho_ten"].endswith(" Anh") and new.metadata["supersedes"] == birth
    owner = new.metadata["owner_citizen_id"]
    assert [r.address for r in find_results(owner, "KQ.G15.000031", valid_only=True)] == [
        outcome.address
    ]
    assert verify_vault(store=env["store"], keyring=env["keyring"]).ok


def test_results_issued_from_the_superseded_version_are_flagged_for_reissue(group_1):
    env, birth, residence, card = group_1
    outcome = correct(env, birth, changes={"number": "0042"}, reason="Sai số đăng ký")
    assert sorted(outcome.flagged) == sorted([residence, card])
    flagged = {r.address: r for r in flagged_for_reissue()}
    assert set(flagged) == {residence, card}
    assert birth in flagged[card].reissue_reason
    # A flagged result is no longer offered for reuse.
    with session_scope() as s:
        owner = s.scalar(select(VaultResult.owner_citizen_id).where(VaultResult.address == card))
    assert find_results(owner, "KQ.G18.000047", valid_only=True) == []


def test_only_the_newest_version_can_be_corrected(group_1):
    env, birth, _, _ = group_1
    correct(env, birth, changes={"scope": "Toàn quốc"}, reason="Bổ sung phạm vi")
    with pytest.raises(VaultError, match="superseded"):
        correct(env, birth, changes={"scope": "Tỉnh"}, reason="again")


def test_a_correction_without_a_reason_is_refused(group_1):
    env, birth, _, _ = group_1
    with pytest.raises(VaultError):
        correct(env, birth, changes={"number": "1"}, reason=" ")


def test_flipping_a_superseded_result_back_to_valid_is_detected(group_1):
    env, birth, _, _ = group_1
    correct(env, birth, changes={"number": "0042"}, reason="Sai số")
    with session_scope() as s:
        row = s.scalar(select(VaultResult).where(VaultResult.address == birth))
        row.status, row.superseded_by = "valid", None
    report = verify_vault(store=env["store"], keyring=env["keyring"])
    assert [(p.address, p.kind) for p in report.problems] == [(birth, "state")]
