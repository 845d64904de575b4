"""Fixtures of the vault tests: a FileVault in a temporary directory, an S3Vault against moto's
standalone server over HTTP on a free localhost port, dossiers with finished steps on PostgreSQL,
and (for the transaction tests only) a Prefect test server."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from infra.processes import free_port
from lienthong.agencies.results import generate
from lienthong.catalog import get_catalog
from lienthong.clock import FixedClock, set_clock
from lienthong.db import session_scope
from lienthong.db.models import ComponentRow, DossierRow, StepRow
from lienthong.reception import receive
from lienthong.settings import reset_settings
from lienthong.vault.index import VaultEvent, VaultResult
from lienthong.vault.seal import Keyring
from lienthong.vault.settings import VaultSettings, get_vault_settings
from lienthong.vault.store import OBJECT_PREFIX, FileVault, S3Vault, Vault
from samples.dossiers import make_submission

T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """moto's standalone S3 server, spoken to over HTTP like any S3-compatible endpoint."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_settings(moto_url: str, bucket: str | None = None) -> VaultSettings:
    return VaultSettings(
        backend="s3",
        s3_endpoint_url=moto_url,
        s3_bucket=bucket or f"vault-{uuid.uuid4().hex[:10]}",
        s3_region="ap-southeast-1",
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
    )  # type: ignore[arg-type]


@pytest.fixture
def file_vault(tmp_path: Path) -> FileVault:
    return FileVault(tmp_path / "vault")


@pytest.fixture
def s3_vault(moto_url: str) -> S3Vault:
    vault = S3Vault(s3_settings(moto_url))
    vault.ensure_bucket()
    return vault


@pytest.fixture(params=["file", "s3"])
def any_vault(request: pytest.FixtureRequest) -> Vault:
    return request.getfixturevalue(f"{request.param}_vault")


@pytest.fixture
def vault_env(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Settings pointing the vault at a temporary directory and keys, the clock fixed, the DB on PG."""
    monkeypatch.setenv("LIENTHONG_VAULT_DIR", str(tmp_path / "vault"))
    monkeypatch.setenv("LIENTHONG_VAULT_KEYS_DIR", str(tmp_path / "keys"))
    reset_settings()
    clock = FixedClock(T + timedelta(hours=2))
    set_clock(clock)
    settings = get_vault_settings()
    yield {
        "store": FileVault(settings.root),
        "keyring": Keyring(settings),
        "clock": clock,
        "db": db,
    }
    set_clock(None)
    reset_settings()


def received(
    procedure_id: str,
    seed: int,
    *,
    options: dict[str, Any] | None = None,
    components: list[dict[str, Any]] | None = None,
    deceased_id: str | None = None,
) -> str:
    """Receive a synthetic dossier (the reception desk's real code path); returns its code."""
    sub = make_submission(procedure_id, random.Random(seed), T, options=options)
    payload = sub.model_dump(mode="json")
    if components is not None:
        payload["components"] = components
    if deceased_id is not None:
        payload["deceased"]["citizen_id"] = deceased_id
    from lienthong.payloads import Submission

    return receive(Submission.model_validate(payload)).dossier_code


def finish_step(
    dossier_code: str, step_key: str, outputs: dict[str, Any] | None = None, seed: int = 0
) -> dict[str, Any]:
    """Record a step as done with the agency simulator's own result shapes (or ``outputs``)."""
    with session_scope() as s:
        d = s.scalar(select(DossierRow).where(DossierRow.code == dossier_code))
        assert d is not None
        spec = get_catalog().get(d.procedure_id).step(step_key)
        produced: dict[str, Any] = {}
        for st in d.steps:
            produced.update(st.outputs or {})
        if outputs is None:
            rng = random.Random(seed)
            outputs = {}
            data = {"declaration": d.payload, **produced}
            for name in spec.outputs:
                outputs[name] = generate(
                    name, data, {**produced, **outputs}, T + timedelta(hours=1), rng
                )
        row = next((st for st in d.steps if st.step_key == step_key), None)
        if row is None:
            row = StepRow(
                ref=f"{dossier_code}/{step_key}",
                dossier_id=d.id,
                step_key=step_key,
                agency=spec.agency,
                action=spec.action,
                time_limit_days=spec.time_limit.working_days,
            )
            s.add(row)
        row.status, row.started_at, row.finished_at = "done", T, T + timedelta(hours=1)
        row.outputs = outputs
        return outputs


def components_of(dossier_code: str) -> dict[str, ComponentRow]:
    with session_scope() as s:
        d = s.scalar(select(DossierRow).where(DossierRow.code == dossier_code))
        assert d is not None
        return {c.code: c for c in d.components}


@pytest.fixture(scope="session")
def prefect_server(prefect_api: str) -> str:
    """The session's Prefect server, for the transaction tests (requested explicitly, not autouse)."""
    return prefect_api


def counts(env: dict[str, Any]) -> tuple[int, int, int]:
    """What the vault holds: index rows, chain events, and objects in ``env``'s store."""
    with session_scope() as s:
        rows = s.scalar(select(func.count()).select_from(VaultResult)) or 0
        events = s.scalar(select(func.count()).select_from(VaultEvent)) or 0
    return rows, events, len(list(env["store"].list(OBJECT_PREFIX)))
