"""The whole procedure pipeline for one dossier in one process, without Prefect.

The same core functions the procedure flow calls, in the same order, with nothing around them: no
retries, no parallel branches, no suspend (an invalid dossier stops at its request for supplement).
It is the anchor the benchmarks divide by, so the ratio is what orchestration costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lienthong import supplement
from lienthong.agencies import AgencyClient
from lienthong.db import session_scope
from lienthong.digitize.components import digitize_dossier
from lienthong.dossier import Status
from lienthong.forms import render_form
from lienthong.quality.dossiers import validate_stored_dossier
from lienthong.routing import Routing, StepOutcome
from lienthong.vault import reuse
from lienthong.vault.drafts import step_drafts
from lienthong.vault.publish import publish
from lienthong.vault.seal import Keyring
from lienthong.vault.settings import get_vault_settings
from lienthong.vault.store import open_store


@dataclass
class PipelineResult:
    dossier_code: str
    status: Status
    outcomes: list[StepOutcome] = field(default_factory=list)
    published: list[str] = field(default_factory=list)


class Pipeline:
    def __init__(self, client: AgencyClient, *, poll_seconds: float = 0.0) -> None:
        self.routing = Routing(client=client, poll_seconds=poll_seconds)
        settings = get_vault_settings()
        self.store, self.keyring = open_store(settings), Keyring(settings)

    def run(self, dossier_code: str) -> PipelineResult:
        render_form(dossier_code, "01")
        reuse.reuse_components(dossier_code, store=self.store, keyring=self.keyring)
        digitize_dossier(dossier_code)
        checked = validate_stored_dossier(dossier_code)
        lines = [*checked["lines_vi"], *supplement.component_problems(dossier_code)]
        if lines:
            supplement.request_supplement(dossier_code, lines, 1)
            render_form(dossier_code, "02")
            return PipelineResult(dossier_code, self.routing.status(dossier_code))
        self.routing.begin(dossier_code)
        plan = self.routing.plan(dossier_code)
        outcomes = [self.routing.run_step(dossier_code, s.id) for s in plan.steps]
        published: list[str] = []
        for spec, outcome in zip(plan.steps, outcomes, strict=True):
            if spec.results and outcome.state == "done":
                with session_scope() as s:
                    drafts = step_drafts(s, dossier_code, spec.id)
                for draft in drafts:
                    published.append(str(publish(draft, store=self.store, keyring=self.keyring).address))
        status = self.routing.finish(dossier_code, outcomes)
        render_form(dossier_code, "03" if status == Status.STOPPED else "05")
        return PipelineResult(dossier_code, status, outcomes, published)
