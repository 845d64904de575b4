"""When a failed task runs again. Every task that touches the database outlasts an outage of it (a
PostgreSQL restart or fail-over: :data:`lienthong.db.OUTAGE_DELAYS`, ~90 s), whatever else it
retries; without that, a restart of the database fails every run that was at work, and their
dossiers stop half-way until a person re-runs them.

Usage::

    @task(name="finish-dossier", cache_policy=NO_CACHE, **retrying(others=3))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lienthong.db import OUTAGE_DELAYS, is_outage


def failure(state: Any) -> BaseException | None:
    """The exception a failed task state holds (None if it holds none)."""
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - the state's own exception, whatever it is
        return exc
    return None


def retrying(
    others: int = 0,
    *,
    delays: Sequence[float] = OUTAGE_DELAYS,
    when: Callable[[BaseException], bool] | None = None,
    never: tuple[type[BaseException], ...] = (),
) -> dict[str, Any]:
    """Task options: retry while the database is unreachable (one try per delay), and any other
    failure ``others`` times (those ``when`` accepts, if given); never the types in ``never``."""
    if others > len(delays):
        raise ValueError(f"{others} retries need as many delays, got {len(delays)}")

    def condition(task: Any, task_run: Any, state: Any) -> bool:
        exc = failure(state)
        if exc is None or isinstance(exc, never):
            return False
        if is_outage(exc):
            return True
        if (task_run.run_count or 1) > others:
            return False
        return when(exc) if when is not None else True

    return {"retries": len(delays), "retry_delay_seconds": list(delays), "retry_condition_fn": condition}
