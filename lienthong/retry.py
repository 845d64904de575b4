"""The core's one way to try something again (tenacity): a number of tries, the wait before each,
and which failures are worth another try. Whole Prefect tasks are retried by Prefect, in tasks/."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

T = TypeVar("T")


def exponential(base: float, cap: float) -> Callable[[int, BaseException], float]:
    """Waits of ``base``, 2 × ``base``, 4 × ``base`` … seconds, never more than ``cap``."""
    return lambda attempt, _exc: min(cap, base * 2 ** (attempt - 1))


def fixed(delays: Sequence[float]) -> Callable[[int, BaseException], float]:
    """The ``n``-th wait is ``delays[n - 1]``."""
    return lambda attempt, _exc: delays[attempt - 1]


def call_with_retries(
    work: Callable[[], T],
    *,
    tries: int,
    wait: Callable[[int, BaseException], float],
    when: Callable[[BaseException], bool],
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[BaseException, float], None] | None = None,
) -> T:
    """``work()``, tried at most ``tries`` times while it fails with an exception ``when`` accepts;
    ``wait(n, exc)`` seconds after the ``n``-th failure. The last failure is raised as it was."""

    def waiting(state: RetryCallState) -> float:
        assert state.outcome is not None
        exc = state.outcome.exception()
        assert exc is not None
        return wait(state.attempt_number, exc)

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.next_action is not None:
            exc = state.outcome.exception()
            assert exc is not None
            on_retry(exc, state.next_action.sleep)

    retrying = Retrying(
        stop=stop_after_attempt(tries),
        wait=waiting,
        retry=retry_if_exception(when),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(work)
