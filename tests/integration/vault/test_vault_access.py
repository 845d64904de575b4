"""Access: an agency reads what it issued or what a procedure it takes part in may reuse."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from lienthong.db import session_scope
from lienthong.vault.drafts import step_drafts
from lienthong.vault.errors import AccessDenied
from lienthong.vault.index import VaultAccess
from lienthong.vault.publish import publish
from lienthong.vault.reads import get_result, presigned_urls

from .test_vault_publication import finish_step, publish_step, received

pytestmark = pytest.mark.integration


@pytest.fixture
def group_2(vault_env):
    code = received("lien-thong-khai-tu", 41, options={"procedures": 2})
    finish_step(code, "khai_tu")
    finish_step(code, "xoa_thuong_tru")
    [extract] = publish_step(vault_env, code, "khai_tu")
    # The residence deregistration has no result-type code in any national sheet: nothing of it
    # is published (issue 16: no result code is made up).
    assert publish_step(vault_env, code, "xoa_thuong_tru") == []
    return vault_env, extract, None


def test_the_issuing_agency_reads_its_own_result(group_2):
    env, extract, _ = group_2
    assert get_result(extract, agency="UBND_XA", store=env["store"]).data["so_trich_luc"]


def test_social_insurance_reads_the_death_extract_its_allowance_procedure_reuses(group_2):
    env, extract, _ = group_2
    assert get_result(extract, agency="BHXH", store=env["store"]).status == "valid"


def test_an_agency_outside_the_rules_is_refused_and_the_refusal_is_logged(group_2):
    env, extract, _ = group_2
    with pytest.raises(AccessDenied) as err:  # the tax office reuses no death extract
        get_result(extract, agency="THUE", store=env["store"])
    assert "THUE" in err.value.message_vi
    with session_scope() as s:
        log = s.execute(select(VaultAccess).order_by(VaultAccess.id)).scalars().all()
        assert [(a.agency, a.granted) for a in log] == [("THUE", False)]


def test_s3_hands_out_short_lived_urls_to_allowed_agencies_only(db, moto_url, vault_env):
    from lienthong.vault.store import S3Vault

    from .conftest import s3_settings

    s3 = S3Vault(s3_settings(moto_url))
    s3.ensure_bucket()
    code = received("lien-thong-khai-tu", 42, options={"procedures": 2})
    finish_step(code, "khai_tu")
    with session_scope() as s:
        [draft] = step_drafts(s, code, "khai_tu")
    address = publish(draft, store=s3, keyring=vault_env["keyring"]).address
    urls = presigned_urls(address, agency="BHXH", store=s3, expires_seconds=120)
    assert all("X-Amz-Expires=120" in u and "testing" not in u.split("?")[0] for u in urls.values())
    assert httpx.get(urls["pdf"]).content.startswith(b"%PDF")
    assert httpx.get(urls["data"]).json()["so_trich_luc"]
    with pytest.raises(AccessDenied):
        presigned_urls(address, agency="VPDKDD", store=s3, expires_seconds=120)
