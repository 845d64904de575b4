"""Seals another agency can check with stock libraries (RFC 8785 + Ed25519), seals made before RFC
8785, and seal-key rotation: what an old key sealed stays verifiable, what it seals after its
retirement does not."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from lienthong.db import session_scope
from lienthong.vault.index import VaultResult
from lienthong.vault.publish import publish
from lienthong.vault.seal import Keyring, Seal, canonical_json
from lienthong.vault.verify import verify_vault
from samples.results import death_extract_data, death_extract_draft

from .test_vault_integrity import run_cli

pytestmark = pytest.mark.integration


def draft(i: int):  # type: ignore[no-untyped-def]
    return death_extract_draft(
        f"seal-{i}",
        death_extract_data(f"{i:06d}", f"001055{i:06d}"),
        b"%PDF-1.7\n" + f"result {i}".encode() * 20,
        dossier_seq=i,
    )


def row_of(address: str) -> VaultResult:
    with session_scope() as s:
        row = s.scalar(select(VaultResult).where(VaultResult.address == address))
        assert row is not None
        return row


def test_another_agency_checks_a_seal_with_a_stock_rfc8785_library_and_the_public_key(vault_env):
    env = vault_env
    done = publish(draft(1), store=env["store"], keyring=env["keyring"])
    row = row_of(done.address)
    # What the other agency holds: the sealed document, the signature, the issuer's public key.
    payload = rfc8785.dumps(row.sealed)
    assert hashlib.sha256(payload).hexdigest() == row.sealed_sha256
    assert row.sealed["seal"] == {"canonicalization": "RFC8785", "key_id": row.key_id}
    [public] = [k for k in env["keyring"].public_keys("UBND_XA") if k.key_id == row.key_id]
    raw = base64.b64decode(public.as_json()["public_key"])
    Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(row.signature), payload)


def test_a_seal_made_before_rfc8785_still_verifies(vault_env, monkeypatch):
    env = vault_env
    ring: Keyring = env["keyring"]

    def legacy_seal(agency, document):  # type: ignore[no-untyped-def]
        payload = canonical_json(document)  # the first canonical form, no "seal" entry
        signature, key_id = ring.sign(agency, payload)
        return Seal(document, payload, signature, key_id)

    monkeypatch.setattr(ring, "seal", legacy_seal)
    old = publish(draft(1), store=env["store"], keyring=ring)
    monkeypatch.undo()
    new = publish(draft(2), store=env["store"], keyring=ring)
    assert "seal" not in row_of(old.address).sealed and "seal" in row_of(new.address).sealed
    report = verify_vault(store=env["store"], keyring=ring)
    assert report.ok, report.problems


def test_results_sealed_before_a_rotation_stay_verifiable_and_verify_all_passes(vault_env, capsys):
    env = vault_env
    before = publish(draft(1), store=env["store"], keyring=Keyring())
    env["clock"].advance(timedelta(hours=1))
    assert run_cli("rotate-key", "UBND_XA") == 0
    env["clock"].advance(timedelta(hours=1))
    after = publish(draft(2), store=env["store"], keyring=Keyring())
    assert row_of(before.address).key_id != row_of(after.address).key_id
    assert run_cli("verify", "--all") == 0
    assert "checked 2 result(s)" in capsys.readouterr().out


def test_a_key_that_seals_after_its_retirement_is_caught(vault_env):
    env = vault_env
    stale: Keyring = env["keyring"]  # e.g. a worker that still holds the old key in memory
    publish(draft(1), store=env["store"], keyring=stale)
    env["clock"].advance(timedelta(hours=1))
    Keyring().rotate("UBND_XA", env["clock"].now())
    env["clock"].advance(timedelta(minutes=5))
    late = publish(draft(2), store=env["store"], keyring=stale)
    report = verify_vault(store=env["store"], keyring=Keyring())
    assert [(p.address, p.kind) for p in report.problems] == [(late.address, "seal")]
    assert "outside its validity" in report.problems[0].detail


def test_a_key_the_keyring_never_held_is_refused(vault_env, tmp_path):
    env = vault_env
    from lienthong.vault.settings import VaultSettings

    foreign = Keyring(VaultSettings(keys_dir=tmp_path / "elsewhere"))
    done = publish(draft(1), store=env["store"], keyring=foreign)
    report = verify_vault(store=env["store"], keyring=Keyring())
    assert [(p.address, p.kind) for p in report.problems] == [(done.address, "seal")]
    assert "not one of UBND_XA's keys" in report.problems[0].detail
