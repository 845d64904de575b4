"""One typed settings object (lienthong.settings): its sections, each from its own prefix, built once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lienthong.gateway.settings import get_gateway_settings
from lienthong.settings import get_settings, reset_settings
from lienthong.vault.settings import get_vault_settings


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    reset_settings()
    yield monkeypatch
    monkeypatch.undo()
    reset_settings()


def test_the_sections_are_read_from_their_own_prefixes_into_one_object(fresh):
    fresh.setenv("LIENTHONG_VAULT_BACKEND", "s3")
    fresh.setenv("LIENTHONG_VAULT_S3_BUCKET", "tinh-vault")
    fresh.setenv("LIENTHONG_GATEWAY_PORT", "9999")
    fresh.setenv("LIENTHONG_UNIT_ID", "000.00.07.H57")
    s = get_settings()
    assert (s.unit_id, s.vault.backend, s.vault.s3_bucket) == ("000.00.07.H57", "s3", "tinh-vault")
    assert s.gateway.port == 9999
    assert get_vault_settings() is s.vault and get_gateway_settings() is s.gateway


def test_settings_are_built_once_and_read_again_only_when_reset(fresh):
    fresh.setenv("LIENTHONG_GATEWAY_PORT", "9001")
    first = get_settings()
    fresh.setenv("LIENTHONG_GATEWAY_PORT", "9002")
    assert get_settings() is first and get_gateway_settings().port == 9001
    reset_settings()
    assert get_gateway_settings().port == 9002 and get_settings() is not first


def test_a_bad_value_in_a_section_is_refused_when_the_settings_are_built(fresh):
    from pydantic import ValidationError

    fresh.setenv("LIENTHONG_VAULT_PRESIGN_SECONDS", "0")
    with pytest.raises(ValidationError):
        get_settings()
