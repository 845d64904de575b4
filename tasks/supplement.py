"""Tasks of intake: supplement requests and returns around ``lienthong.supplement``."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from lienthong import supplement
from tasks.retry import retrying


@task(name="component-problems", cache_policy=NO_CACHE, **retrying())
def component_problems(dossier_code: str) -> list[str]:
    return supplement.component_problems(dossier_code)


@task(name="request-supplement", cache_policy=NO_CACHE, **retrying(others=2),
      task_run_name="request-supplement · {dossier_code} · round {round_no}")
def request_supplement(dossier_code: str, lines: list[str], round_no: int) -> str:
    return supplement.request_supplement(dossier_code, lines, round_no)


@task(name="supplement-received", cache_policy=NO_CACHE, **retrying(others=2),
      task_run_name="supplement-received · {dossier_code} · round {round_no}")
def supplement_received(dossier_code: str, round_no: int) -> int:
    return int(supplement.supplement_received(dossier_code, round_no))
