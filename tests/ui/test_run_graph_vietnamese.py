"""The run graph reads Vietnamese: a dossier's run graph, screenshotted in headless Chromium and read
back by the project's own tesseract (vie).

The graph draws its labels from a bitmap font sheet; Prefect ships it with ASCII only, so
"CONG_AN_XA: Đăng ký thường trú" is drawn "CONG_AN_XA: ng k thng tr". ``infra.ui_patch`` (applied by
``make setup``) widens the sheet; this test fails if the patch is missing or no longer takes.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import time
import unicodedata
from datetime import datetime

import pytest
from PIL import Image, ImageOps
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from flows.procedure import procedure, start_run
from infra import ui_patch
from lienthong.reception import receive
from samples.dossiers import make_submission
from tests.ui import prefect_ui as ui
from tests.ui.conftest import ROOT, PrefectServer

pytestmark = pytest.mark.ui
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")
PROCEDURE = "lien-thong-khai-sinh"
# Rendering a 430-glyph sheet in software WebGL on two shared cores takes a while; the test polls.
RENDER_WAIT = 240.0


@pytest.fixture(autouse=True)
def office_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIENTHONG_CLOCK", "fixed:2026-03-10T10:00:00+07:00")
    from lienthong.settings import reset_settings

    reset_settings()


def finished_birth_registration(server: PrefectServer, seed: int) -> tuple[str, str]:
    """A birth registration through its deployment, run to the end by a runner subprocess (the
    agencies answer at once, approvals are automatic). Returns (dossier code, flow run id)."""
    code = receive(make_submission(PROCEDURE, random.Random(seed), T)).dossier_code
    procedure.to_deployment(name=PROCEDURE).apply()
    run_id = start_run(code)
    env = {**os.environ, **server.env, "PREFECT__FLOW_RUN_ID": run_id}
    done = subprocess.run([sys.executable, "-m", "prefect.engine"], env=env, cwd=ROOT, capture_output=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    return code, run_id


def ocr(png: bytes) -> str:
    """The graph's text as tesseract reads it: light text on a dark canvas, so invert it."""
    image = ImageOps.invert(Image.open(io.BytesIO(png)).convert("L"))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    out = subprocess.run(["tesseract", "stdin", "stdout", "-l", "vie", "--psm", "11"], input=buf.getvalue(),
                         capture_output=True, env={**os.environ, "OMP_THREAD_LIMIT": "1"}, timeout=120)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return " ".join(unicodedata.normalize("NFC", out.stdout.decode()).split())


def test_the_bundle_the_server_serves_is_patched() -> None:
    assert ui_patch.bundle_dirs(), "no Prefect UI bundle installed"
    assert all(ui_patch.is_patched(b) for b in ui_patch.bundle_dirs()), "run `make setup` (infra.ui_patch)"


def test_patch_is_idempotent_and_refuses_an_unknown_bundle() -> None:
    module = "x={resolution:qG,chars:v1.ASCII},y=1"
    once, changed = ui_patch.patch_text(module)
    assert changed and ui_patch.MARKER in once and "v1.ASCII" not in once
    assert ui_patch.patch_text(once) == (once, False)
    with pytest.raises(ui_patch.PatchError):
        ui_patch.patch_text("x={resolution:qG,chars:v1.ALPHA}")


def test_the_run_graph_of_a_dossier_reads_vietnamese(prefect_ui, browser, db, agency_sim) -> None:
    code, run_id = finished_birth_registration(prefect_ui, seed=71)

    # A dossier's graph holds some twenty steps in small type: draw it at three device pixels per
    # CSS pixel, as a high-density phone or monitor would, so tesseract can read the labels.
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1440, "height": 1000, "deviceScaleFactor": 3, "mobile": False})
    browser.get(f"{prefect_ui.url}/runs/flow-run/{run_id}")
    WebDriverWait(browser, ui.WAIT).until(ec.title_contains(code))
    graph = WebDriverWait(browser, ui.WAIT).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".flow-run-graph canvas")))

    deadline, text = time.monotonic() + RENDER_WAIT, ""
    while time.monotonic() < deadline:
        text = ocr(graph.screenshot_as_png)
        if "Đăng ký" in text:
            break
        time.sleep(5)
    # The ASCII part proves the graph drew its labels; the Vietnamese part proves the sheet covers it.
    assert "AN_XA" in text.replace(" ", ""), f"the run graph drew no step labels: {text!r}"
    assert "Đăng ký" in text, f"the run graph dropped Vietnamese letters: {text!r}"
