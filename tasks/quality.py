"""Prefect tasks around ``lienthong.quality``: validate a stored dossier, apply a supplement.

The procedure flow calls ``validate_dossier`` before routing; on ``ok=False`` it moves the dossier
to status 5 (clock stopped) with ``lines_vi`` as the request for supplement (Form 02) and suspends
with ``wait_for_input=SupplementInput``; on resume it calls ``apply_supplement`` and validates again
(``round`` 2: a second round of failures is reported as such).
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from pydantic import Field

from lienthong.quality import dossiers
from tasks.retry import retrying


class SupplementInput(RunInput):
    """What the citizen supplies after a request for supplement (typed input of a suspended run).

    Either a full corrected ``payload``, or ``fields`` corrected by dotted path
    (``{"child.sex": "female", "applicant.citizen_id": "079203001234"}``); ``components`` adds or
    replaces components by code (``{"code": "GCS", "name": "...", "file": "..."}``).
    """

    fields: dict[str, Any] = Field(default_factory=dict)
    payload: dict[str, Any] | None = None
    components: list[dict[str, Any]] = Field(default_factory=list)
    note: str | None = None

    def apply_to(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The corrected payload (not stored); :func:`apply_supplement` stores it."""
        return dossiers.merge_supplement(payload, fields=self.fields, new_payload=self.payload,
                                         components=self.components)


@task(name="validate-dossier", cache_policy=NO_CACHE, **retrying(others=2),
      task_run_name="validate-dossier · {dossier_code}")
def validate_dossier(dossier_code: str) -> dict[str, Any]:
    """``{"ok", "lines_vi", "flags", "round", ...}``; never changes the dossier's status."""
    return dossiers.validate_stored_dossier(dossier_code)


@task(name="apply-supplement", cache_policy=NO_CACHE, **retrying(others=2),
      task_run_name="apply-supplement · {dossier_code}")
def apply_supplement(dossier_code: str, supplement: SupplementInput) -> dict[str, Any]:
    """Store the supplemented payload; returns it (the flow then validates again)."""
    return dossiers.apply_supplement(dossier_code, fields=supplement.fields,
                                     new_payload=supplement.payload,
                                     components=supplement.components)
