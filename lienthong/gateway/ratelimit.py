"""Each agency's request rate limit: a sustained rate and a burst, shared by every gateway replica.

The limit is GCRA (the generic cell rate algorithm, the token bucket without a refill timer): one
theoretical arrival time per agency. With a Redis URL set, that time lives in Redis and is moved by
one atomic script on Redis's own clock, so N replicas together grant an agency its rate, not N times
it. Without one (the embedded default: one gateway process), it lives in this process's memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol


class RateLimiter(Protocol):
    def take(self, key: str) -> float:
        """Take one request; 0 if granted, else the seconds until one would be."""


def retry_after(wait: float) -> str:
    """A ``Retry-After`` header value (whole seconds, at least 1)."""
    return str(max(1, math.ceil(wait)))


class LocalRateLimiter:
    """GCRA in this process's memory: right for a single gateway process only."""

    def __init__(self, rate: float, burst: int, *, now: Callable[[], float] = time.monotonic) -> None:
        self.interval, self.tolerance, self._now = 1.0 / rate, (burst - 1) / rate, now
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        with self._lock:
            now = self._now()
            tat = max(self._tat.get(key, now), now)
            if tat - now > self.tolerance:
                return tat - now - self.tolerance
            self._tat[key] = tat + self.interval
            return 0.0


# KEYS[1]: the agency's key; ARGV: interval and tolerance in microseconds. Redis's clock, so that
# replicas on several hosts agree. Returns the wait in microseconds (0: granted), as a string.
_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
if tat - now > tolerance then return tostring(tat - now - tolerance) end
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval), 'PX',
           math.ceil((tolerance + interval) / 1000) + 1000)
return '0'
"""


class RedisRateLimiter:
    """GCRA in Redis, shared by every replica that uses the same Redis and prefix."""

    def __init__(self, url: str, rate: float, burst: int, *, prefix: str = "lienthong:rate:") -> None:
        import redis

        self.client: Any = redis.Redis.from_url(url)
        self.prefix = prefix
        self.interval_us = round(1_000_000 / rate)
        self.tolerance_us = round((burst - 1) * 1_000_000 / rate)
        self._script = self.client.register_script(_GCRA)

    def take(self, key: str) -> float:
        wait = self._script(keys=[self.prefix + key], args=[self.interval_us, self.tolerance_us])
        return int(wait) / 1_000_000


def rate_limiter(rate: float, burst: int, redis_url: str | None) -> RateLimiter:
    """The limiter the settings call for: Redis when a URL is set, else this process's memory."""
    if redis_url:
        return RedisRateLimiter(redis_url, rate, burst)
    return LocalRateLimiter(rate, burst)
