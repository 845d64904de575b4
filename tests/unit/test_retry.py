"""The core's retry helper (lienthong.retry): how many tries, which waits, which failures."""

from __future__ import annotations

import pytest

from lienthong.retry import call_with_retries, exponential, fixed


class Flaky:
    def __init__(self, *failures: BaseException) -> None:
        self.failures, self.calls = list(failures), 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "done"


def test_a_passing_failure_is_tried_again_after_each_wait_until_it_works():
    slept: list[float] = []
    seen: list[tuple[str, float]] = []
    work = Flaky(TimeoutError("a"), TimeoutError("b"))
    out = call_with_retries(work, tries=4, wait=fixed([1, 2, 4]), when=lambda e: isinstance(e, TimeoutError),
                            sleep=slept.append, on_retry=lambda e, d: seen.append((str(e), d)))
    assert out == "done" and work.calls == 3
    assert slept == [1, 2] and seen == [("a", 1), ("b", 2)]


def test_the_last_failure_is_raised_as_it_was_once_the_tries_are_spent():
    slept: list[float] = []
    work = Flaky(*(TimeoutError(str(i)) for i in range(5)))
    with pytest.raises(TimeoutError, match="2"):
        call_with_retries(work, tries=3, wait=exponential(0.5, 30), when=lambda e: True, sleep=slept.append)
    assert work.calls == 3 and slept == [0.5, 1.0]


def test_a_failure_not_worth_another_try_is_raised_at_once():
    work = Flaky(ValueError("bad input"))
    with pytest.raises(ValueError):
        call_with_retries(work, tries=5, wait=fixed([0] * 4), when=lambda e: isinstance(e, TimeoutError),
                          sleep=lambda _: None)
    assert work.calls == 1


def test_exponential_waits_double_up_to_their_cap():
    wait = exponential(0.5, 3.0)
    assert [wait(n, Exception()) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
