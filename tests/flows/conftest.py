"""Every flow test runs against the session's Prefect server (tests/conftest.py: ``prefect_api``)."""

import asyncio
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_server(prefect_api: str) -> str:
    return prefect_api


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Flow tests run at a fixed office time, in this process and in any subprocess they start."""
    from lienthong.settings import reset_settings

    monkeypatch.setenv("LIENTHONG_CLOCK", "fixed:2026-03-10T10:00:00+07:00")
    reset_settings()
    yield
    reset_settings()


@pytest.fixture
def forget_runs() -> Iterator[None]:
    """Delete this test's runs of the birth registration deployment afterwards: other flow tests of
    the session count that deployment's runs. Modules that start such runs use it for every test."""
    yield
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async def delete() -> None:
        async with get_client() as client:
            runs = await client.read_flow_runs(
                deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["lien-thong-khai-sinh"])))
            for run in runs:
                await client.delete_flow_run(run.id)

    asyncio.run(delete())
