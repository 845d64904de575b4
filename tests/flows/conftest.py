"""The Prefect test server is started once, and only for the flow tests (it costs ~10-15 s)."""

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Flow tests run at a fixed office time, in this process and in any subprocess they start."""
    from lienthong.settings import reset_settings

    monkeypatch.setenv("LIENTHONG_CLOCK", "fixed:2026-03-10T10:00:00+07:00")
    reset_settings()
    yield
    reset_settings()
