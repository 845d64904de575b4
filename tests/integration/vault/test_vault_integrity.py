"""Tampering with an object, an index row or a chain entry is detected by verification."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from lienthong.db import get_engine, session_scope
from lienthong.vault.cli import register
from lienthong.vault.index import VaultResult
from lienthong.vault.verify import verify_vault

from .test_vault_publication import finish_step, publish_step, received

pytestmark = pytest.mark.integration


@pytest.fixture
def published(vault_env):
    # Two death extracts (the residence deregistration publishes nothing: it has no result code).
    addresses = []
    for seed in (11, 12):
        code = received("lien-thong-khai-tu", seed, options={"procedures": 2})
        finish_step(code, "khai_tu")
        addresses += publish_step(vault_env, code, "khai_tu")
    return vault_env, addresses


def verify(env, address=None):
    return verify_vault(address, store=env["store"], keyring=env["keyring"])


def run_cli(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["vault", *argv])
    return int(args.handler(args))


def test_an_untouched_vault_verifies_clean(published, capsys):
    env, addresses = published
    report = verify(env)
    assert report.ok and report.results_checked == 2 and report.events_checked == 2
    assert run_cli("verify", "--all") == 0
    assert run_cli("verify", addresses[0]) == 0
    assert "OK" in capsys.readouterr().out


def test_an_altered_object_is_reported_as_tampered(published, capsys):
    env, addresses = published
    with session_scope() as s:
        row = s.scalar(select(VaultResult).where(VaultResult.address == addresses[0]))
    path = env["store"].root / row.pdf_key
    path.write_bytes(path.read_bytes().replace(b"%PDF", b"%PDX", 1))
    report = verify(env)
    assert [(p.address, p.kind) for p in report.problems] == [(addresses[0], "object")]
    assert run_cli("verify", "--all") == 1
    assert "TAMPERED [object]" in capsys.readouterr().out


def test_an_altered_index_row_is_reported_as_tampered(published):
    env, addresses = published
    with session_scope() as s:
        row = s.scalar(select(VaultResult).where(VaultResult.address == addresses[1]))
        row.owner_citizen_id = "001099000001"  # someone re-points the result to another person
    report = verify(env, addresses[1])
    assert [(p.address, p.kind) for p in report.problems] == [(addresses[1], "row")]
    assert "owner_citizen_id" in report.problems[0].detail


def test_a_resealed_row_without_the_agency_key_fails_its_signature(published):
    env, addresses = published
    from lienthong.vault.seal import seal_digest

    with session_scope() as s:
        row = s.scalar(select(VaultResult).where(VaultResult.address == addresses[0]))
        sealed = dict(row.sealed, number="9999")
        row.sealed, row.number, row.sealed_sha256 = sealed, "9999", seal_digest(sealed)
    kinds = {p.kind for p in verify(env).problems}
    assert "seal" in kinds


def test_an_altered_chain_entry_is_reported_as_tampered(published):
    env, _ = published
    with get_engine().begin() as conn:
        conn.execute(text("SET session_replication_role = replica"))  # past the append-only trigger
        conn.execute(text("UPDATE vault_events SET actor = 'CONG_AN_XA' WHERE seq = 1"))
        conn.execute(text("SET session_replication_role = origin"))
    report = verify(env)
    assert any(
        p.kind == "chain" and "event 1" in p.detail and "altered" in p.detail
        for p in report.problems
    )


def test_a_removed_chain_entry_is_reported(published):
    env, addresses = published
    with get_engine().begin() as conn:
        conn.execute(text("SET session_replication_role = replica"))
        conn.execute(text("DELETE FROM vault_events WHERE seq = 2"))
        conn.execute(text("SET session_replication_role = origin"))
    details = [str(p) for p in verify(env).problems]
    assert any("cut from the end" in d for d in details)
    assert any(addresses[1] in d and "no publish event" in d for d in details)


def test_the_event_log_refuses_updates_without_privileges(published):
    with pytest.raises(Exception, match="append-only"), get_engine().begin() as conn:
        conn.execute(text("UPDATE vault_events SET actor = 'X'"))


def test_operators_find_and_get_results_with_personal_data_masked(published, capsys):
    env, addresses = published
    with session_scope() as s:
        row = s.scalar(select(VaultResult).where(VaultResult.address == addresses[0]))
        owner = row.owner_citizen_id
    assert run_cli("find", "--owner", owner, "--result-code", "KQ.G15.000034") == 0
    out = capsys.readouterr().out
    assert addresses[0] in out and owner not in out and owner[:3] in out
    assert run_cli("get", addresses[0]) == 0
    shown = capsys.readouterr().out
    assert '"so_trich_luc"' in shown and owner not in shown
    assert run_cli("get", addresses[0], "--unmask") == 0
    assert owner in capsys.readouterr().out
