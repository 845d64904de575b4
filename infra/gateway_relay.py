"""The relay's Prefect side: start a dossier's deployment run, read a run's state, resume it.

Kept apart from ``lienthong.gateway.relay`` because the core package never imports Prefect.

One API client serves a whole relay pass, its starts and its resumes, and deployment ids are
remembered by name, so starting a dossier's run (named at creation) is one request
(``create_flow_run_from_deployment``, keyed on the dossier's UID exactly as
:func:`flows.procedure.start_run` keys it, so whichever starts first, the other gets the same run).
``run_deployment`` builds a client and looks the deployment up on every call: four times slower,
which the fault test's backlog of 850 dossiers made plain. An unreachable API (a transport error, a
5xx or 429) is raised as ``OrchestratorUnavailable`` so that the relay pauses instead of charging
every pending row an attempt. Inside a pass the client does not retry: the relay's own back-off
does. A Prefect server on SQLite answers 503 now and then while its own services write ("database
is locked"); the client's retry would sleep 2 s on each, which was half the relay's time in a
backlog of 200 dossiers; the relay's first pause is a quarter of a second.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from lienthong.gateway.relay import OrchestratorUnavailable, Relay, RelayReport, RunView

FLOW_NAME = "procedure"  # flows.procedure.procedure; each catalog procedure is a deployment of it


def run_key(uid: str) -> str:
    """The idempotency key of a dossier's run; ``flows.procedure.start_run`` uses it too."""
    return f"dossier-{uid}"


def run_name(procedure_id: str, dossier_code: str) -> str:
    """The name of a dossier's run in the UI, given when the run is created (a name the flow gives
    itself costs a PATCH in every execution of the run)."""
    return f"{procedure_id} · {dossier_code}"


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    """Turn "the API cannot serve now" into OrchestratorUnavailable; other errors pass through."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    try:
        yield
    except httpx.TransportError as exc:
        raise OrchestratorUnavailable(f"{type(exc).__name__}: {exc}") from exc
    except (PrefectHTTPStatusError, httpx.HTTPStatusError) as exc:
        if exc.response.status_code >= 500 or exc.response.status_code == 429:
            raise OrchestratorUnavailable(f"HTTP {exc.response.status_code}") from exc
        raise


class PrefectOrchestrator:
    def __init__(self) -> None:
        self._client: Any = None  # SyncPrefectClient during a pass
        self._deployments: dict[str, UUID] = {}  # procedure id -> deployment id

    @contextlib.contextmanager
    def pass_scope(self) -> Iterator[None]:
        """One client for the pass, without retries of its own: the relay backs off itself (the
        client's default, five retries with growing sleeps, would stall it a minute on a dead API)."""
        from prefect import get_client
        from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

        with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 0}), get_client(sync_client=True) as client:
            self._client = client
            try:
                yield
            finally:
                self._client = None

    @contextlib.contextmanager
    def _api(self) -> Iterator[Any]:
        if self._client is not None:
            with _reachable():
                yield self._client
            return
        with self.pass_scope(), _reachable():
            yield self._client

    def start(self, dossier_code: str) -> str:
        from prefect.exceptions import PrefectHTTPStatusError

        from lienthong.db import session_scope
        from lienthong.db.store import get_row

        with session_scope() as s:
            row = get_row(s, dossier_code)
            procedure_id, uid = row.procedure_id, row.uid
        with self._api() as client:
            for fresh in (False, True):
                if fresh or procedure_id not in self._deployments:
                    self._deployments[procedure_id] = client.read_deployment_by_name(
                        f"{FLOW_NAME}/{procedure_id}"
                    ).id
                try:
                    run = client.create_flow_run_from_deployment(
                        self._deployments[procedure_id],
                        parameters={"dossier_code": dossier_code},
                        idempotency_key=run_key(uid),
                        name=run_name(procedure_id, dossier_code),
                    )
                    break
                except PrefectHTTPStatusError as exc:  # 404: the deployment was re-created
                    self._deployments.pop(procedure_id, None)
                    if fresh or exc.response.status_code != 404:
                        raise
        with session_scope() as s:
            get_row(s, dossier_code, for_update=True).flow_run_id = str(run.id)
        return str(run.id)

    def view(self, flow_run_id: str) -> RunView:
        with self._api() as client:
            state = client.read_flow_run(UUID(flow_run_id)).state
        if state is None:
            return RunView("PENDING", None, False)
        key = state.state_details.pause_key if state.is_paused() else None
        return RunView(state.type.value, key, state.is_final())

    def resume(self, flow_run_id: str, run_input: dict[str, Any]) -> None:
        """Resume through the pass's client: ``prefect.flow_runs.resume_flow_run`` builds a client
        of its own and reads the run again, which the relay has just done (``view``)."""
        from prefect.client.schemas.objects import StateType
        from prefect.client.schemas.responses import SetStateStatus
        from prefect.exceptions import FlowPauseTimeout

        with self._api() as client:
            response = client.resume_flow_run(UUID(flow_run_id), run_input=run_input)
        if response.status == SetStateStatus.REJECT:
            if response.state is not None and response.state.type == StateType.FAILED:
                raise FlowPauseTimeout("Flow run can no longer be resumed.")
            raise RuntimeError(f"Cannot resume this run: {response.details.reason}")


def relay() -> Relay:
    import logging

    # One line per API request at INFO (httpx's default) would drown the relay's own log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return Relay(PrefectOrchestrator())


def relay_once() -> RelayReport:
    return relay().run_once()
