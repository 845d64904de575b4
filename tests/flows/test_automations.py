"""Automations are declared in code and applied idempotently."""

import asyncio

import pytest
from prefect.client.orchestration import get_client

from infra.automations import apply_automations

pytestmark = pytest.mark.flows


def read():  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with get_client() as client:
            return await client.read_automations()

    return asyncio.run(go())


def test_zombie_and_crash_rerun_automations_exist_once_after_applying_twice(monkeypatch):
    monkeypatch.delenv("LIENTHONG_ALERT_WEBHOOK_URL", raising=False)
    apply_automations()
    apply_automations()
    mine = [a for a in read() if a.name.startswith("lienthong: ")]
    names = sorted(a.name for a in mine)
    assert names == ["lienthong: crash zombie flow runs", "lienthong: re-run crashed procedure runs"]
    zombie = next(a for a in mine if "zombie" in a.name)
    assert zombie.trigger.posture == "Proactive" and zombie.actions[0].state == "CRASHED"


def test_a_configured_webhook_adds_failure_and_deadline_notifications(monkeypatch):
    monkeypatch.setenv("LIENTHONG_ALERT_WEBHOOK_URL", "http://127.0.0.1:9/alerts")
    apply_automations()
    names = {a.name for a in read()}
    assert {"lienthong: notify failed procedure runs", "lienthong: notify deadlines about to pass"} <= names
