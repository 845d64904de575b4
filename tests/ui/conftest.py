"""Browser tests: a real `prefect server start` (API and UI) and headless Debian Chromium.

The Prefect test harness serves the API only, so these tests start the server as `make ui` does,
on a free port with its own PREFECT_HOME under the session's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from infra import processes
from infra.local import prefect_env
from infra.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
DRIVER_PATHS = ("/usr/bin/chromedriver",)


class PrefectServer:
    def __init__(self, url: str, api: str, env: dict[str, str], log: Path) -> None:
        self.url, self.api, self.env, self.log = url, api, env, log


@pytest.fixture(scope="session")
def prefect_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """`prefect server start` with the UI, on SQLite under a scratch PREFECT_HOME (as `make ui`
    starts it); this process and every subprocess it starts talk to it."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    var = tmp_path_factory.mktemp("prefect-ui")
    env = prefect_env(var_dir=var, port=free_port())
    server = processes.prefect_server(env, log_dir=var)
    try:
        server.start(timeout=300)
        with mock.patch.dict(os.environ, env), \
                temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
            yield PrefectServer(f"http://127.0.0.1:{env['PREFECT_SERVER_API_PORT']}", env["PREFECT_API_URL"],
                                env, server.log_path)
    finally:
        server.stop()


def _find(paths: tuple[str, ...], name: str) -> str | None:
    return next((p for p in paths if os.access(p, os.X_OK)), None) or shutil.which(name)


def _chromium() -> tuple[str, str]:
    """Debian's chromium and its matching driver; installed by the system-deps script if missing.
    The test skips only when they are absent and cannot be installed."""
    browser, driver = _find(CHROMIUM_PATHS, "chromium"), _find(DRIVER_PATHS, "chromedriver")
    if not (browser and driver):
        why = "neither root nor password-less sudo"
        if os.geteuid() == 0 or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
            done = subprocess.run(["bash", str(ROOT / "infra/scripts/system-deps.sh")], capture_output=True,
                                  timeout=900)
            tail = done.stderr.decode(errors="replace")[-300:]
            why = f"infra/scripts/system-deps.sh exited {done.returncode}: {tail}"
        browser, driver = _find(CHROMIUM_PATHS, "chromium"), _find(DRIVER_PATHS, "chromedriver")
        if not (browser and driver):
            pytest.skip(f"headless Chromium and chromedriver are not installed and could not be installed ({why})")
    return browser, driver


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    return _chromium()


@pytest.fixture
def browser(chromium_paths: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """Headless Chromium under Selenium; a screenshot of the last page is kept when a test fails."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1440,1000", "--lang=en-US", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            shot = Path(os.environ.get("LIENTHONG_UI_SCREENSHOTS", tmp_path)) / f"{request.node.name}.png"
            with contextlib.suppress(Exception):
                driver.save_screenshot(str(shot))
                print(f"screenshot of the failing page: {shot}")
        driver.quit()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
