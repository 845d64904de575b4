"""Wiring of the accountability flows on the Prefect test server: sweep, portal catch-up, index."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from lienthong.clock import FixedClock, set_clock
from lienthong.db import session_scope
from lienthong.settings import reset_settings
from lienthong.simulators.portal import RunningSimulator
from lienthong.sweep import pending_apologies
from tests.integration.accountability_factory import make_dossier

pytestmark = pytest.mark.flows


@pytest.fixture
def env(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(tmp_path))
    reset_settings()
    set_clock(FixedClock(datetime(2026, 3, 5, 10, 0)))
    with session_scope() as s:
        make_dossier(
            s,
            "000.00.06.H56-260302-0001",
            received_at="2026-03-02T09:00",
            due_at="2026-03-06T17:00",
            steps=[
                {
                    "key": "tham_dinh",
                    "agency": "VPDKDD",
                    "started_at": "2026-03-02T09:00",
                    "due_at": "2026-03-04T17:00",
                }
            ],
        )
        make_dossier(
            s,
            "000.00.06.H56-260302-0002",
            received_at="2026-03-02T09:00",
            due_at="2026-03-04T17:00",
            status=9,
            finished_at="2026-03-04T10:00",
            history=[(2, "2026-03-02T09:00"), (9, "2026-03-04T10:00")],
        )
    yield tmp_path
    set_clock(None)


async def _artifact_keys() -> set[str]:
    async with get_client() as client:
        return {a.key for a in await client.read_artifacts() if a.key}


def test_deadline_sweep_flow_drafts_form_04_and_publishes_its_table(env):
    from flows.deadline_sweep import deadline_sweep

    result = deadline_sweep(start_approvals=False)
    assert result["apology_drafts"] == ["000.00.06.H56-260302-0001"]
    assert [d.dossier_code for d in pending_apologies()] == ["000.00.06.H56-260302-0001"]
    assert result["notifications"]["sent"] >= 2  # late step + draft, to the land office
    import asyncio

    assert "deadline-sweep" in asyncio.run(_artifact_keys())


def test_portal_catch_up_flow_walks_the_backlog_with_progress(env, monkeypatch):
    from flows.portal_sync import portal_sync

    with RunningSimulator() as sim:
        monkeypatch.setenv("LIENTHONG_PORTAL_URL", sim.url)
        report = portal_sync(catch_up=True, batch_size=1, batches_per_task=1)
        assert report["finished"] and report["sent"] == 2
        assert len(sim.state.dossiers) == 2
    import asyncio

    assert {"portal-catch-up", "portal-sync"} <= asyncio.run(_artifact_keys())


def test_service_index_flow_writes_the_report_and_artifacts(env):
    from flows.service_index import service_index

    out = service_index(date(2026, 3, 1), date(2026, 3, 31))
    assert out["received"] == 2 and out["resolved"] == 1 and out["on_time_rate"] == 100.0
    assert Path(out["html"]).exists()
    import asyncio

    assert {"service-index", "on-time-by-agency", "service-index-report"} <= asyncio.run(
        _artifact_keys()
    )
