"""The relay's Prefect side: start a dossier's deployment run, read a run's state, resume it.

Kept apart from ``lienthong.gateway.relay`` because the core package never imports Prefect.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from lienthong.gateway.relay import Relay, RelayReport, RunView


class PrefectOrchestrator:
    def start(self, dossier_code: str) -> str:
        from flows.procedure import start_run

        return start_run(dossier_code)

    def view(self, flow_run_id: str) -> RunView:
        from prefect import get_client

        with get_client(sync_client=True) as client:
            state = client.read_flow_run(UUID(flow_run_id)).state
        if state is None:
            return RunView("PENDING", None, False)
        key = state.state_details.pause_key if state.is_paused() else None
        return RunView(state.type.value, key, state.is_final())

    def resume(self, flow_run_id: str, run_input: dict[str, Any]) -> None:
        from prefect.flow_runs import resume_flow_run

        resume_flow_run(UUID(flow_run_id), run_input=run_input)


def relay() -> Relay:
    return Relay(PrefectOrchestrator())


def relay_once() -> RelayReport:
    return relay().run_once()
