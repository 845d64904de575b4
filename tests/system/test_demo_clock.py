"""The demo's simulated clock charges no orchestration time, read off the demo's own database.

Its clock compresses office time (thousands of times), so every real second the orchestrator
spends (a process starting, a flow run's tasks, a busy machine) would turn into office hours
charged to the dossiers and the agencies. It stands still while the orchestrator owes work, so:

- every step is handed to its agency within the office hour it became ready (after acceptance, a
  payment, or the steps before it), and every dossier is resolved within the hour of its last result;
- a step is late exactly when the simulator's lateness switch made it late (as the simulator itself
  reports), and a dossier only when one of its steps is;
- the service-quality index blames no lateness on the one-stop desk (MOT_CUA), which answers for
  the time lost between steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from lienthong.db import dispose_engines, session_scope
from lienthong.db.models import DossierRow, StepRow
from lienthong.settings import reset_settings

pytestmark = [pytest.mark.integration, pytest.mark.topology]  # the demo's own stack of processes

OFFICE_HOUR = 1.0


@pytest.fixture
def demo_db(demo: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """This process reads the demo's database (SQLite under its ./var); yields the demo's codes
    (other tests may add dossiers of their own through the gateway)."""
    var: Path = demo["var"]
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(var))
    monkeypatch.delenv("LIENTHONG_DATABASE_URL", raising=False)
    reset_settings()
    dispose_engines()
    with session_scope() as s:
        codes = list(s.execute(select(DossierRow.code).where(
            DossierRow.idempotency_key.like("demo%"))).scalars())
    yield codes
    dispose_engines()
    reset_settings()


def _simulated_steps(demo: dict[str, Any]) -> dict[str, dict[str, Any]]:
    port = demo["env"]["LIENTHONG_SIM_PORT"]
    return httpx.get(f"http://127.0.0.1:{port}/admin/steps", timeout=10).raise_for_status().json()


def test_every_step_is_handed_over_within_the_office_hour_it_became_ready(demo_db: list[str]) -> None:
    from flows.demo import hand_over_gaps

    gaps = hand_over_gaps(demo_db)
    handed = {g.step for g in gaps if g.step != "return"}
    assert len(demo_db) >= 3 and len(handed) >= 5, (demo_db, gaps)
    assert any(g.step == "return" for g in gaps)
    slow = [g for g in gaps if g.office_hours > OFFICE_HOUR]
    assert not slow, f"orchestration time charged to dossiers: {slow}"


def test_the_gap_check_sees_a_late_hand_over(demo_db: list[str]) -> None:
    """Control: a hand-over moved two office hours after its step was ready is caught."""
    from flows.demo import hand_over_gaps
    from lienthong.calendar import get_calendar

    gap = next(g for g in hand_over_gaps(demo_db) if g.step != "return")
    later = get_calendar().add_working_seconds(gap.handed_at, 2 * 3600)
    with session_scope() as s:
        row = s.execute(select(DossierRow).where(DossierRow.code == gap.dossier_code)).scalar_one()
        step = next(st for st in row.steps if st.step_key == gap.step)
        original, step.started_at = step.started_at, later
    try:
        moved = next(g for g in hand_over_gaps([gap.dossier_code]) if g.step == gap.step)
        assert moved.office_hours > OFFICE_HOUR and moved.office_hours >= gap.office_hours + 1.99, (gap, moved)
    finally:
        with session_scope() as s:
            s.execute(select(StepRow).where(StepRow.id == step.id)).scalar_one().started_at = original


def test_lateness_comes_only_from_the_simulators_lateness_switch(demo: dict[str, Any], demo_db: list[str]) -> None:
    switched = {rid for rid, v in _simulated_steps(demo).items() if v["late_by_switch"]}
    with session_scope() as s:
        rows = s.execute(select(DossierRow).where(DossierRow.code.in_(demo_db))).scalars().all()
        late_steps = {f"{r.code}:{st.step_key}" for r in rows for st in r.steps if st.verdict == "late"}
        handed = {f"{r.code}:{st.step_key}" for r in rows for st in r.steps if st.started_at is not None}
        late_dossiers = {r.code for r in rows if r.late}
    assert late_steps == switched & handed
    for code in late_dossiers:
        assert any(s.startswith(code + ":") for s in late_steps), f"{code} is late though no step is"


def test_the_index_blames_no_lateness_on_the_one_stop_desk(demo_db: list[str]) -> None:
    from lienthong.index.report import build_report
    from samples.dossiers import DEMO_START

    with session_scope() as s:
        ends = [r.finished_at for r in s.execute(select(DossierRow).where(
            DossierRow.code.in_(demo_db))).scalars() if r.finished_at is not None]
    assert ends
    day = DEMO_START.date()
    report = build_report(day, day + timedelta(days=1), as_of=max(ends), write=False)
    assert "MOT_CUA" not in report.lateness, report.lateness
