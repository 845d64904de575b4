"""digitize-backlog fans its OCR out on Dask (a real LocalCluster of two worker processes) and
records exactly what the in-process page pool records for the same files."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from typing import Any

import pytest
from pypdf import PdfReader

from lienthong.db import session_scope
from lienthong.db.models import ComponentRow
from lienthong.digitize import components as core
from lienthong.settings import get_settings, reset_settings
from samples.forms import Degradation, birth_certificate, death_notice, write_pdf
from tests.integration.accountability_factory import dossier_with_components

pytestmark = [pytest.mark.flows, pytest.mark.integration]

DASK_CODE = "000.00.06.H56-260310-0101"
LOCAL_CODE = "000.00.06.H56-260310-0102"


def _recorded(cid: int) -> dict[str, Any]:
    """What the database holds for a component, less what differs between any two runs."""
    with session_scope() as s:
        c = s.get(ComponentRow, cid)
        assert c is not None
        d = dict((c.meta or {})["digitize"])
        pages = [{k: v for k, v in p.items() if k != "timings"} for p in d.pop("page_details")]
        for k in ("seconds", "outputs", "file_ref"):
            d.pop(k, None)
        return {"status": c.status, "digitized": c.digitized, "confidence": c.confidence, "digitize": d,
                "pages": pages}


def _outputs(code: str, component: str, cid: int) -> tuple[str, list[str], dict[str, Any]]:
    base = get_settings().var_dir / "digitized" / code / f"{component}-{cid}"
    text = base.with_suffix(".txt").read_text(encoding="utf-8")
    layer = [p.extract_text() for p in PdfReader(base.with_suffix(".pdf")).pages]
    summary = json.loads(base.with_suffix(".json").read_text(encoding="utf-8"))
    return text, layer, {k: summary[k] for k in ("pages", "confidence", "form", "fields", "review", "reasons")}


def _ocr_task_runs(flow_run_id: uuid.UUID, expected: int, timeout: float = 60.0) -> list[Any]:
    """The flow run's ocr-page task runs once the server has recorded `expected` of them finished.

    Task runs reach the API through the event pipeline (the task-run recorder), after the flow
    has returned: a read straight after the run may see one still Running, or none at all."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.objects import TERMINAL_STATES

    async def read() -> list[Any]:
        async with get_client() as client:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                runs = await client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
                )
                ocr = [r for r in runs if r.name.startswith("ocr-page")]
                finished = [r for r in ocr if r.state_type in TERMINAL_STATES]
                if len(finished) >= expected or asyncio.get_running_loop().time() > deadline:
                    return ocr
                await asyncio.sleep(0.5)

    return asyncio.run(read())


def test_backlog_ocr_on_a_local_dask_cluster_equals_the_in_process_path(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIENTHONG_DASK_WORKERS", "2")
    monkeypatch.delenv("LIENTHONG_DASK_ADDRESS", raising=False)
    reset_settings()
    up = get_settings().var_dir / "uploads"
    up.mkdir(parents=True)
    # Three pages: a birth certificate scan, and a two-page PDF whose second page is upside down.
    gcs = birth_certificate(301, level=0.8)
    gcs.save(up / "gcs.jpg")
    first = death_notice(302, level=0.8)
    d = first.degradation
    flipped = death_notice(303, Degradation(d.skew_degrees, d.blur_radius, d.noise_sigma, d.jpeg_quality, 180))
    write_pdf([first.image, flipped.image], up / "gbt.pdf")
    files = [("GCS", "uploads/gcs.jpg"), ("GBT", "uploads/gbt.pdf")]
    dask_ids = dossier_with_components(DASK_CODE, [(c, ref, True) for c, ref in files])
    local_ids = dossier_with_components(LOCAL_CODE, [(c, ref, True) for c, ref in files])

    from flows.digitize_backlog import digitize_backlog

    state = digitize_backlog(dossier_codes=[DASK_CODE], return_state=True)
    assert state.is_completed(), state
    totals = state.result()
    assert totals["dossiers"] == 1 and totals["pages"] == 3
    assert totals["digitized"] + totals["needs_review"] == 2 and totals["rejected"] == 0
    # Every page went through an ocr-page task run on the cluster, none on the local page pool.
    runs = _ocr_task_runs(state.state_details.flow_run_id, expected=3)
    assert len(runs) == 3 and all(r.state_type.value == "COMPLETED" for r in runs)

    # The same files through the in-process page pool.
    outcomes = core.digitize_components(local_ids)
    assert [o["status"] for o in outcomes] != []
    for (component, _), dask_id, local_id in zip(files, dask_ids, local_ids, strict=True):
        on_dask, in_process = _recorded(dask_id), _recorded(local_id)
        assert on_dask["pages"], on_dask
        assert on_dask == in_process
        assert _outputs(DASK_CODE, component, dask_id) == _outputs(LOCAL_CODE, component, local_id)
    # The upside-down page was turned on the Dask worker too, and read.
    gbt = _recorded(dask_ids[1])["pages"]
    assert [p["rotation"] for p in gbt] == [0, 180]
    assert all(p["confidence"] > 80 for p in gbt)
    assert _recorded(dask_ids[0])["digitize"]["fields"]["mother_citizen_id"]["value"] == gcs.fields[
        "mother_citizen_id"
    ]
    shutil.rmtree(up)
