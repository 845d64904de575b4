"""Portal sync against the simulator over HTTP: already-exists, throttling, outage, resume."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from lienthong.db import session_scope
from lienthong.db.models import DossierRow
from lienthong.portal.client import PortalClient, PortalError, PortalSettings
from lienthong.portal.ledger import PortalCheckpoint, PortalSyncRow
from lienthong.portal.sync import catch_up, sync_changed, sync_rate
from lienthong.settings import reset_settings
from lienthong.simulators.portal import RunningSimulator
from tests.integration.accountability_factory import make_dossier, t

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def portal() -> Iterator[RunningSimulator]:
    with RunningSimulator() as sim:
        yield sim


@pytest.fixture
def sim(portal: RunningSimulator, db: str, monkeypatch: pytest.MonkeyPatch) -> RunningSimulator:
    portal.state.reset()
    monkeypatch.setenv("LIENTHONG_PORTAL_URL", portal.url)
    monkeypatch.setenv("LIENTHONG_PORTAL_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("LIENTHONG_PORTAL_MAX_RETRIES", "2")
    monkeypatch.setenv("LIENTHONG_PORTAL_CONCURRENCY", "1")
    reset_settings()
    return portal


def _configure(sim: RunningSimulator, **cfg: object) -> None:
    httpx.post(f"{sim.url}/_sim/config", json=cfg).raise_for_status()


def _dossiers(n: int) -> None:
    with session_scope() as s:
        for i in range(1, n + 1):
            make_dossier(
                s,
                f"000.00.06.H56-260302-{i:04d}",
                received_at="2026-03-02T09:00",
                due_at="2026-03-26T17:00",
                status=4 if i % 3 else 9,
                finished_at=None if i % 3 else "2026-03-20T10:00",
            )


def test_catch_up_stopped_by_an_outage_resumes_where_it_stopped_and_sends_each_dossier_once(sim):
    _dossiers(25)
    _configure(sim, fail_after=14)  # the portal goes down after 14 writes (7 dossiers + progress)
    with pytest.raises(PortalError):
        catch_up(batch_size=4)
    with session_scope() as s:
        cp = s.get(PortalCheckpoint, "catch-up")
        assert cp is not None and cp.processed == 7 and cp.finished_at is None and cp.total == 25
        acked = (
            s.execute(select(PortalSyncRow).where(PortalSyncRow.state == "acked")).scalars().all()
        )
        assert len(acked) == 7
    _configure(sim, fail_after=None)
    report = catch_up(batch_size=4)
    assert report.finished and report.processed == 25 and report.sent == 25
    stats = httpx.get(f"{sim.url}/_sim/stats").json()
    assert stats["dossiers"] == 25 and stats["creates"] == 25 and stats["max_creates_per_code"] == 1
    looked = httpx.get(
        f"{sim.url}/api/hoso/000.00.06.H56-260302-0003", headers={"Authorization": "Bearer x"}
    )
    assert looked.status_code == 200 and looked.json()["data"]["TrangThaiHoSo"] == 9


def test_a_rerun_sends_only_what_changed(sim):
    _dossiers(6)
    catch_up(batch_size=10)
    before = httpx.get(f"{sim.url}/_sim/stats").json()
    with session_scope() as s:
        row = s.execute(select(DossierRow).where(DossierRow.code.endswith("0002"))).scalar_one()
        row.due_at = t("2026-03-30T17:00")
    report = catch_up(batch_size=10, reset=True)
    after = httpx.get(f"{sim.url}/_sim/stats").json()
    assert (report.sent, report.unchanged) == (1, 5)
    assert after["updates"] - before["updates"] == 1 and after["creates"] == before["creates"]


def test_already_existing_dossier_on_the_portal_is_updated_not_duplicated(sim):
    _dossiers(2)
    with PortalClient(PortalSettings(url=sim.url)) as client:
        client.push_dossier(
            {
                "MaHoSo": "000.00.06.H56-260302-0001",
                "MaTTHC": "1.013831",
                "KenhThucHien": 1,
                "NgayTiepNhan": "20260302090000",
                "TrangThaiHoSo": 2,
            }
        )
    report = sync_changed()
    assert report.sent == 2
    stats = httpx.get(f"{sim.url}/_sim/stats").json()
    assert stats["already_exists"] == 1 and stats["updates"] == 1 and stats["dossiers"] == 2


def test_throttling_answers_are_waited_out(sim):
    _dossiers(5)
    _configure(sim, throttle_every=3, retry_after=0)
    report = catch_up(batch_size=5)
    assert report.sent == 5
    assert httpx.get(f"{sim.url}/_sim/stats").json()["throttled"] >= 3


def test_invalid_content_is_recorded_as_rejected_and_does_not_block_the_backlog(sim):
    _dossiers(3)
    with session_scope() as s:
        row = s.execute(select(DossierRow).where(DossierRow.code.endswith("0001"))).scalar_one()
        row.due_at = t("2026-03-01T17:00")  # appointment before reception: the portal refuses it
    report = catch_up(batch_size=10)
    assert (report.sent, report.rejected, report.finished) == (2, 1, True)
    with session_scope() as s:
        led = s.get(PortalSyncRow, "000.00.06.H56-260302-0001")
        assert (
            led is not None and led.state == "rejected" and "NgayHenTra" in (led.last_error or "")
        )
        assert sync_rate(s, t("2026-03-01T00:00"), t("2026-04-01T00:00")) == (2, 3)


def test_hourly_run_after_a_completed_run_looks_only_at_touched_dossiers(sim):
    _dossiers(4)
    assert sync_changed().total == 4
    assert sync_changed().total == 0
