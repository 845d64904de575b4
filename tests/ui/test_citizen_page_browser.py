"""The citizen's status page in headless Chromium, on a phone-sized screen and on the desk's
portrait touch screen: readable (no sideways scrolling, body text at least 16 px, touch targets
at least 44 px), in Vietnamese, with the status, appointment, steps and what is missing."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import select

from lienthong.calendar import get_calendar
from lienthong.citizen import capability
from lienthong.db import session_scope
from lienthong.db.models import DossierRow
from lienthong.db.store import apply_event
from lienthong.gateway.app import create_app
from lienthong.gateway.settings import GatewaySettings
from lienthong.reception import receive
from lienthong.settings import reset_settings
from samples.dossiers import make_submission
from tests.conftest import LiveServer
from tests.integration.gateway_helpers import SECRETS

pytestmark = [pytest.mark.ui, pytest.mark.integration]
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True}
DESK = {"width": 1080, "height": 1920, "deviceScaleFactor": 1, "mobile": False}


@pytest.fixture
def gateway(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("LIENTHONG_AGENCY_SECRETS", json.dumps(SECRETS))
    reset_settings()
    with LiveServer(create_app(GatewaySettings(rate_per_second=1000, rate_burst=1000))) as server:
        monkeypatch.setenv("LIENTHONG_STATUS_PUBLIC_URL", server.url)
        yield server.url


def _dossier_asking_for_supplement() -> str:
    code = receive(make_submission("lien-thong-khai-sinh", random.Random(11), T)).dossier_code
    with session_scope() as s:
        apply_event(s, code, "start_processing", T, get_calendar(), actor="test")
        apply_event(s, code, "request_supplement", T, get_calendar(), actor="test", reason="Thiếu giấy tờ",
                    items=["Bản chính Giấy chứng sinh do cơ sở y tế cấp (bản đã nộp bị mờ, không đọc được số)"])
        uid = s.execute(select(DossierRow.uid).where(DossierRow.code == code)).scalar_one()
        return capability.current_url(s, uid)


def _layout(browser) -> dict:  # type: ignore[no-untyped-def]
    return browser.execute_script("""
        const px = e => parseFloat(getComputedStyle(e).fontSize);
        const texts = [...document.querySelectorAll('dd, li, p')].filter(e => e.offsetParent);
        return {
          scroll: document.documentElement.scrollWidth, width: window.innerWidth,
          minFont: Math.min(...texts.map(px)),
          status: document.getElementById('status').innerText,
          due: document.getElementById('due').innerText,
          missing: document.getElementById('missing').innerText,
          steps: document.getElementById('steps').innerText,
          lang: document.documentElement.lang,
        };""")


@pytest.mark.parametrize("screen", [PHONE, DESK], ids=["phone", "desk"])
def test_the_status_page_reads_on_a_phone_and_on_the_desk(gateway, browser, screen):
    url = _dossier_asking_for_supplement()
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", screen)
    browser.get(url)
    got = _layout(browser)
    assert got["lang"] == "vi" and got["status"] == "Yêu cầu bổ sung giấy tờ"
    assert got["due"] == "17:00 ngày 13/03/2026"
    assert "Bản chính Giấy chứng sinh" in got["missing"]
    assert got["scroll"] <= got["width"], "the page scrolls sideways"
    assert got["minFont"] >= 16


def test_a_citizen_rates_the_delivered_dossier_on_a_phone(gateway, browser):
    from selenium.webdriver.common.by import By

    code = receive(make_submission("lien-thong-khai-sinh", random.Random(12), T)).dossier_code
    with session_scope() as s:
        for event in ("start_processing", "resolve", "deliver"):
            apply_event(s, code, event, T, get_calendar(), actor="test")
        uid = s.execute(select(DossierRow.uid).where(DossierRow.code == code)).scalar_one()
        url = capability.current_url(s, uid)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    browser.get(url)
    choice = browser.find_element(By.CSS_SELECTOR, "input[name='q1'][value='3']")
    label = choice.find_element(By.XPATH, "..")
    assert label.size["height"] >= 44 and label.text.strip() == "Rất hài lòng"  # a finger-sized target
    label.click()
    button = browser.find_element(By.ID, "send-rating")
    assert button.size["height"] >= 44
    button.click()
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    rated = WebDriverWait(browser, 30).until(expected_conditions.presence_of_element_located((By.ID, "rated"))).text
    assert "Ông/Bà đã đánh giá" in rated and "Rất hài lòng" in rated
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
