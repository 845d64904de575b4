"""The agencies' rate limit is shared by gateway replicas through Redis (lienthong.gateway.ratelimit):
two replicas together grant an agency its burst and rate, not twice them."""

from __future__ import annotations

import time
import uuid

import pytest

from lienthong.gateway.ratelimit import RedisRateLimiter, rate_limiter

pytestmark = pytest.mark.integration
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def replicas() -> list[RedisRateLimiter]:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"  # this test's keys only
    made = [RedisRateLimiter(REDIS, rate=5.0, burst=4, prefix=prefix) for _ in range(2)]
    try:
        made[0].client.ping()
    except Exception as exc:  # noqa: BLE001 - said plainly rather than as a connection traceback
        pytest.fail(f"Redis is not reachable at {REDIS}: {exc}")
    return made


def test_two_replicas_together_grant_one_burst_and_then_refuse_with_the_wait(replicas):
    a, b = replicas
    granted = [r.take("DVCQG") == 0.0 for r in (a, b, a, b, a, b)]
    assert granted == [True, True, True, True, False, False]
    wait = b.take("DVCQG")
    assert 0 < wait <= 0.2 + 0.05  # one request every 1/5 s
    assert a.take("BHXH") == 0.0  # each agency has its own limit


def test_the_shared_limit_refills_at_the_agencys_rate(replicas):
    a, b = replicas
    while a.take("DVCQG") == 0.0:
        pass
    assert b.take("DVCQG") > 0  # the other replica sees the drained limit
    time.sleep(0.45)  # at least two requests' worth at 5/s
    assert b.take("DVCQG") == 0.0


def test_the_limiter_is_shared_only_when_a_redis_url_is_set():
    assert isinstance(rate_limiter(5.0, 4, REDIS), RedisRateLimiter)
    assert not isinstance(rate_limiter(5.0, 4, None), RedisRateLimiter)
