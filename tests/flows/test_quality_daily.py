"""The ``data-quality-daily`` flow on a real Prefect test server (tests/flows/conftest.py), and the
typed supplement input of a paused run."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.runtime import flow_run

from flows.data_quality_daily import ARTIFACT_KEY, SCHEDULE, data_quality_daily
from lienthong.clock import VN_TZ
from lienthong.reception import receive
from lienthong.settings import reset_settings
from samples.dossiers import make_submission
from tasks.quality import SupplementInput, apply_supplement, validate_dossier

T = datetime(2025, 9, 10, 8, 15, tzinfo=VN_TZ)


@pytest.fixture
def var_dir(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LIENTHONG_VAR_DIR", str(tmp_path))
    reset_settings()
    yield tmp_path
    reset_settings()


async def _artifacts() -> dict[str, Any]:
    async with get_client() as client:
        return {a.key: a.data for a in await client.read_artifacts() if a.key}


def test_daily_flow_publishes_a_table_and_a_summary_linking_the_data_docs(var_dir: Path) -> None:
    subs = [make_submission("lien-thong-khai-sinh", random.Random(1), T),
            make_submission("lien-thong-khai-tu", random.Random(2), T,
                            defects=["death_after_registration"]),
            make_submission("chuyen-nhuong-dat", random.Random(3), T)]
    for s in subs:
        receive(s)
    result = data_quality_daily(day=T.date())
    assert (result["dossiers"], result["valid"], result["invalid"]) == (3, 2, 1)
    docs = var_dir / "quality" / "docs" / "index.html"
    assert docs.exists() and result["docs"] == docs.resolve().as_uri()

    artifacts = asyncio.run(_artifacts())
    table, summary = str(artifacts[ARTIFACT_KEY]), artifacts[f"{ARTIFACT_KEY}-summary"]
    assert "death.date_of_death_not_after_registration" in table
    assert "[Great Expectations Data Docs](file://" in summary and "index.html" in summary
    for s in subs:
        assert s.applicant.full_name not in table + summary
        assert str(s.applicant.citizen_id) not in table + summary
    assert SCHEDULE["cron"] and SCHEDULE["timezone"] == "Asia/Ho_Chi_Minh"


@flow(name="quality-supplement-round-trip")
def _validate_then_wait_for_supplement(dossier_code: str) -> list[dict[str, Any]]:
    """The shape the procedure flow follows: validate, wait for typed input, apply, validate."""
    first = validate_dossier(dossier_code)
    rounds = [first]
    if not first["ok"]:
        supplement = pause_flow_run(wait_for_input=SupplementInput, timeout=60,
                                    key=f"supplement-{flow_run.id}")
        apply_supplement(dossier_code, supplement)
        rounds.append(validate_dossier(dossier_code))
    return rounds


def test_paused_run_resumes_with_the_citizens_supplement_and_the_dossier_passes(
        var_dir: Path) -> None:
    s = make_submission("lien-thong-khai-sinh", random.Random(5), T,
                        defects=["child_sex_mismatch"])
    code = receive(s).dossier_code
    assert s.child is not None

    def citizen_answers() -> None:
        async def resume_when_paused() -> None:
            async with get_client() as client:
                for _ in range(300):
                    runs = await client.read_flow_runs()
                    paused = [r for r in runs if r.state and r.state.is_paused()
                              and r.parameters.get("dossier_code") == code]
                    if paused:
                        fix = {"birth_certificate.child_sex": s.child.sex}  # type: ignore[union-attr]
                        await resume_flow_run(paused[0].id, run_input={"fields": fix})
                        return
                    await asyncio.sleep(0.2)

        asyncio.run(resume_when_paused())

    helper = threading.Thread(target=citizen_answers, daemon=True)
    helper.start()
    rounds = _validate_then_wait_for_supplement(code)
    helper.join(timeout=5)
    assert [r["ok"] for r in rounds] == [False, True]
    assert rounds[0]["lines_vi"][0].startswith("Giới tính của trẻ")
