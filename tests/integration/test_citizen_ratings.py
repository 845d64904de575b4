"""Satisfaction ratings from the status link, and the index indicators they feed (5.4 per
province, agency and procedure)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from lienthong.calendar import get_calendar
from lienthong.citizen import capability
from lienthong.citizen.ratings import CitizenRating
from lienthong.db import session_scope
from lienthong.db.models import DossierRow, StepRow
from lienthong.db.store import apply_event
from lienthong.gateway.app import create_app
from lienthong.gateway.settings import GatewaySettings
from lienthong.index.report import build_report
from lienthong.reception import receive
from lienthong.settings import reset_settings
from samples.dossiers import make_submission
from tests.conftest import LiveServer
from tests.integration.gateway_helpers import SECRETS

pytestmark = pytest.mark.integration
T = datetime.fromisoformat("2026-03-10T09:15:00+07:00")


@pytest.fixture
def gateway(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("LIENTHONG_AGENCY_SECRETS", json.dumps(SECRETS))
    reset_settings()
    with LiveServer(create_app(GatewaySettings(rate_per_second=1000, rate_burst=1000))) as server:
        monkeypatch.setenv("LIENTHONG_STATUS_PUBLIC_URL", server.url)
        yield server.url


def _dossier(seed: int, *, deliver: bool = True, channel: str = "in_person") -> tuple[str, str]:
    sub = make_submission("lien-thong-khai-sinh", random.Random(seed), T).model_copy(update={"channel": channel})
    code = receive(sub).dossier_code
    cal = get_calendar()
    with session_scope() as s:
        apply_event(s, code, "start_processing", T, cal, actor="test")
        if deliver:
            apply_event(s, code, "resolve", T + timedelta(hours=2), cal, actor="test")
            apply_event(s, code, "deliver", T + timedelta(hours=2), cal, actor="test")
        uid = s.execute(select(DossierRow.uid).where(DossierRow.code == code)).scalar_one()
        return code, capability.current_url(s, uid)


def test_a_delivered_dossier_is_rated_once_from_its_page(gateway: str):
    code, url = _dossier(1)
    page = httpx.get(url).text
    assert "Đánh giá mức độ hài lòng" in page and "Đánh giá tổng thể dịch vụ" in page
    assert "Tiến độ và chất lượng cung cấp dịch vụ công trực tuyến" not in page  # asked of online dossiers
    sent = httpx.post(f"{url}/danh-gia", data={"q1": "3", "q4": "1"}, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"].endswith("#rating")
    thanks = httpx.get(url).text
    assert "Ông/Bà đã đánh giá" in thanks and "Rất hài lòng" in thanks and "<form" not in thanks
    with session_scope() as s:
        r = s.execute(select(CitizenRating)).scalar_one()
        assert (r.dossier_code, r.overall, r.disliked, r.answers) == (code, 3, True, {"1": 3, "4": 1})
        assert "MOT_CUA" in r.agencies
    again = httpx.post(f"{url.replace('/tra-cuu/', '/v1/status/')}/rating", json={"answers": {"1": 2}})
    assert again.status_code == 409 and "đã được đánh giá" in again.json()["message_vi"]


def test_a_rating_before_delivery_or_out_of_the_scale_is_refused(gateway: str):
    _, open_url = _dossier(2, deliver=False)
    assert "Đánh giá mức độ hài lòng" not in httpx.get(open_url).text
    early = httpx.post(f"{open_url.replace('/tra-cuu/', '/v1/status/')}/rating", json={"answers": {"1": 3}})
    assert early.status_code == 422 and "chưa trả kết quả" in early.json()["message_vi"]
    _, url = _dossier(3, channel="online")
    api = url.replace("/tra-cuu/", "/v1/status/") + "/rating"
    assert httpx.post(api, json={"answers": {"1": 7}}).status_code == 422
    assert httpx.post(api, json={"answers": {"99": 3}}).status_code == 422
    missing = httpx.post(f"{url}/danh-gia", data={"q2": "3"})
    assert missing.status_code == 422 and "Đánh giá tổng thể dịch vụ" in missing.text  # the required one
    assert httpx.post(api, json={"answers": {"1": 3, "12": 2}}).status_code == 201  # online: 12 asked
    assert httpx.post(f"{capability.base_url()}/v1/status/{'0' * 54}/rating", json={"answers": {"1": 3}}
                      ).status_code == 404


def test_ratings_feed_indicator_5_4_and_the_total_rises(gateway: str):
    codes = [_dossier(10 + i)[0] for i in range(4)]
    day = T.date()

    def report():  # type: ignore[no-untyped-def]
        return build_report(day, day, as_of=T + timedelta(days=1), write=False)

    before = report()
    assert before.province.indicator("5.4").value is None  # no rating: no data, no points
    with session_scope() as s:
        from lienthong.citizen.ratings import rate

        rows = {r.code: r for r in s.execute(select(DossierRow)).scalars()}
        rate(s, rows[codes[0]], {"1": 3})
        rate(s, rows[codes[1]], {"1": 1})  # a dislike
    after = report()
    ind = after.province.indicator("5.4")
    assert (ind.numerator, ind.denominator) == (3, 4)  # 4 on time, 1 with a dislike
    assert ind.value == 0.75 and ind.points == round(6 * 0.75 / 0.9, 2)
    assert after.province.indicator("5.4a").value == 0.5  # half the delivered dossiers rated
    assert after.province.points == round(before.province.points + ind.points, 2)
    [proc] = after.by_procedure.values()  # one procedure: its 5.4 is the province's
    assert proc.indicator("5.4").value == 0.75


def test_a_rating_counts_for_the_agencies_that_acted(gateway: str):
    code, _ = _dossier(20, deliver=False)
    cal = get_calendar()
    with session_scope() as s:
        row = s.execute(select(DossierRow).where(DossierRow.code == code)).scalar_one()
        s.add(StepRow(ref=f"{code}:khai_sinh", dossier_id=row.id, step_key="khai_sinh", agency="UBND_XA",
                      action="Đăng ký khai sinh", kind="agency", time_limit_days=1, status="done",
                      started_at=T, finished_at=T + timedelta(minutes=30), due_at=T + timedelta(hours=8)))
        apply_event(s, code, "resolve", T + timedelta(hours=1), cal, actor="test")
        apply_event(s, code, "deliver", T + timedelta(hours=1), cal, actor="test")
        from lienthong.citizen.ratings import rate

        assert rate(s, row, {"1": 2}).agencies == ["MOT_CUA", "UBND_XA"]
    day = T.date()
    rep = build_report(day, day, as_of=T + timedelta(days=1), write=False)
    assert rep.by_agency["UBND_XA"].indicator("5.4").value == 1.0


def test_the_demos_citizens_rate_some_delivered_dossiers(gateway: str):
    from samples.ratings import rate_delivered

    codes = [_dossier(30 + i)[0] for i in range(5)] + [_dossier(40, deliver=False)[0]]
    rated = rate_delivered(codes, seed=2026, share=1.0)
    assert rated == 5 and rate_delivered(codes, seed=2026, share=1.0) == 0  # once each, never the open one
    with session_scope() as s:
        assert {r.source for r in s.execute(select(CitizenRating)).scalars()} == {"demo"}
