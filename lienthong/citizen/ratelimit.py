"""Rate limits of the status capability: per token and per client address, in Redis.

Fixed one-minute windows shared by every gateway worker and replica (``INCR`` + ``EXPIRE`` in one
round trip). Counting per address too bounds how fast anyone can try tokens. The token itself is
never a Redis key: its SHA-256 is. If Redis cannot be reached the limits fall back to this
process's memory (a warning is logged once), so the page keeps answering during a Redis outage.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

log = logging.getLogger("lienthong.citizen")
PREFIX = "lienthong:status:"


class StatusLimiter:
    def __init__(self, redis_url: str, per_token: int, per_ip: int, *, now: Callable[[], float] = time.time) -> None:
        import redis

        self.per_token, self.per_ip, self.now = per_token, per_ip, now
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._local: dict[str, int] = {}
        self._warned = False

    def check(self, token: str, ip: str) -> float:
        """0 if the request may go on, else the seconds to wait (for Retry-After)."""
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        now = self.now()
        window = int(now // 60)
        keys = (f"{PREFIX}t:{digest}:{window}", f"{PREFIX}ip:{ip}:{window}")
        try:
            pipe = self._redis.pipeline(transaction=False)
            for k in keys:
                pipe.incr(k)
                pipe.expire(k, 120)
            counts = pipe.execute()
        except self._errors as exc:
            if not self._warned:
                log.warning("status rate limits fall back to process memory: Redis %s", type(exc).__name__)
                self._warned = True
            if len(self._local) > 100_000:  # old windows go
                self._local = {k: v for k, v in self._local.items() if k.endswith(f":{window}")}
            for k in keys:
                self._local[k] = self._local.get(k, 0) + 1
            counts = [self._local[keys[0]], 0, self._local[keys[1]]]
        if counts[0] > self.per_token or counts[2] > self.per_ip:
            return 60 - now % 60
        return 0.0
