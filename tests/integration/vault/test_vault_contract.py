"""The same contract for both object stores: the directory and S3 over HTTP (moto's server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from lienthong.vault.errors import ObjectMissing
from lienthong.vault.store import OBJECT_PREFIX, S3Vault, object_key, sha256_hex

from .conftest import s3_settings

pytestmark = pytest.mark.integration


def test_an_object_put_is_read_back_byte_for_byte(any_vault):
    data = "Giấy khai sinh — Nguyễn Thị Ánh".encode() * 100
    key, digest, created = any_vault.put_content(data, content_type="application/pdf")
    assert created and key == object_key(sha256_hex(data)) and digest == sha256_hex(data)
    assert any_vault.exists(key)
    assert any_vault.get(key) == data


def test_writing_the_same_content_twice_creates_it_once(any_vault):
    first = any_vault.put_content(b"%PDF-1.4 same bytes")
    second = any_vault.put_content(b"%PDF-1.4 same bytes")
    assert first[0] == second[0] and first[2] is True and second[2] is False
    assert [o.key for o in any_vault.list(OBJECT_PREFIX)] == [first[0]]


def test_a_missing_object_is_a_typed_error_not_a_stack_trace(any_vault):
    with pytest.raises(ObjectMissing) as err:
        any_vault.get(object_key("0" * 64))
    assert err.value.message_vi


def test_deleting_removes_the_object_and_deleting_again_is_harmless(any_vault):
    key, _, _ = any_vault.put_content(b"to be deleted")
    any_vault.delete(key)
    assert not any_vault.exists(key)
    any_vault.delete(key)
    assert list(any_vault.list(OBJECT_PREFIX)) == []


def test_listing_reports_size_and_time_of_every_object_under_a_prefix(any_vault):
    keys = {any_vault.put_content(f"object {i}".encode())[0] for i in range(3)}
    any_vault.put("other/thing", b"not content-addressed")
    listed = {o.key: o for o in any_vault.list(OBJECT_PREFIX)}
    assert set(listed) == keys
    now = datetime.now(UTC)
    for info in listed.values():
        assert info.size == len(b"object 0")
        assert now - timedelta(minutes=5) < info.modified <= now + timedelta(minutes=5)


def test_a_presigned_url_reads_the_object_without_the_store_credentials(any_vault):
    key, _, _ = any_vault.put_content(b"%PDF-1.7 presigned")
    url = any_vault.presigned_url(key, 60)
    assert "testing" not in url.split("?")[0] and "SecretAccessKey" not in url
    if url.startswith("file://"):
        from urllib.parse import urlparse
        from urllib.request import url2pathname

        with open(url2pathname(urlparse(url).path), "rb") as fh:
            assert fh.read() == b"%PDF-1.7 presigned"
    else:
        assert "X-Amz-Expires=60" in url and "X-Amz-Signature=" in url
        assert httpx.get(url).content == b"%PDF-1.7 presigned"


def test_s3_puts_ask_for_server_side_encryption(s3_vault):
    key, _, _ = s3_vault.put_content(b"encrypted at rest")
    head = s3_vault.client.head_object(Bucket=s3_vault.bucket, Key=key)
    assert head["ServerSideEncryption"] == "AES256"


def test_s3_objects_get_a_retention_period_when_the_bucket_has_object_lock(moto_url):
    vault = S3Vault(s3_settings(moto_url).model_copy(update={"object_lock_days": 30}))
    vault.ensure_bucket(object_lock=True)
    assert vault.object_lock_enabled
    key, _, _ = vault.put_content(b"retained result")
    head = vault.client.head_object(Bucket=vault.bucket, Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=29)
    # A rollback (governance mode) may still remove what an aborted publication wrote.
    vault.delete(key)
    assert not vault.exists(key)


def test_s3_without_object_lock_puts_no_retention(s3_vault):
    key, _, _ = s3_vault.put_content(b"no lock here")
    head = s3_vault.client.head_object(Bucket=s3_vault.bucket, Key=key)
    assert "ObjectLockMode" not in head
