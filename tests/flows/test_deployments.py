"""Every deployment loads and registers (a cheap smoke test of the whole wiring)."""

import asyncio

import pytest
from prefect.client.orchestration import get_client

from infra.deployments import all_deployments
from lienthong.catalog import get_catalog

pytestmark = pytest.mark.flows


def test_every_procedure_and_batch_flow_registers_with_its_schedule():
    deployments = all_deployments()
    names = {d.name for d in deployments}
    assert {p.id for p in get_catalog()} <= names
    assert {"deadline-sweep", "portal-sync", "service-index", "data-quality-daily",
            "digitize-backlog", "vault-sweep", "approve-apology", "vault-correction"} <= names
    for d in deployments:
        d.apply()

    async def read():  # type: ignore[no-untyped-def]
        async with get_client() as client:
            return await client.read_deployments()

    stored = {d.name: d for d in asyncio.run(read())}
    sweep = stored["deadline-sweep"]
    assert sweep.schedules and sweep.schedules[0].schedule.timezone == "Asia/Ho_Chi_Minh"
    birth = stored["lien-thong-khai-sinh"]
    assert "agency:UBND_XA" in birth.tags and "2.002621" in birth.tags
    assert birth.parameter_openapi_schema["required"] == ["dossier_code"]
