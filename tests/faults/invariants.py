"""The invariants every fault test ends with, checked by one function against the real database,
the Prefect API and the vault's object store:

1. every accepted submission (idempotency key answered 202) has exactly one dossier, and the
   gateway's inbox holds it once;
2. every such dossier is in a terminal state (refused, withdrawn, stopped, delivered) or waits for
   someone (status 5, the citizen's supplement; or its run suspended on an agency, an approval or
   a review);
3. no dossier has more than one flow run (re-runs after a crash are the same run);
4. every published result has its objects and verifies (hashes, seal, hash chain: ``vault verify``);
5. no result is published twice (one first version per dossier, step and result code).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select

TERMINAL = {3, 7, 8, 10}
WAITING = {5}


@dataclass
class InvariantReport:
    dossiers: int = 0
    terminal: int = 0
    waiting: int = 0
    results: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = (f"{self.dossiers} dossiers ({self.terminal} terminal, {self.waiting} waiting), "
                f"{self.results} vault results")
        return head + ("" if self.ok else "\n  " + "\n  ".join(self.problems[:40]))


def flow_runs_by_dossier(prefect_api: str | None = None) -> dict[str, list[tuple[str, str]]]:
    """Every procedure flow run of the Prefect API, grouped by its ``dossier_code`` parameter:
    code -> [(run id, state type)]."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    out: dict[str, list[tuple[str, str]]] = {}
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["procedure"])),
                                         limit=200, offset=offset)
            for run in runs:
                code = (run.parameters or {}).get("dossier_code")
                if code:
                    out.setdefault(code, []).append((str(run.id), run.state.type.value if run.state else "?"))
            if len(runs) < 200:
                return out
            offset += 200


def check_invariants(accepted: Iterable[str], *, require_settled: bool = True,
                     check_flow_runs: bool = True) -> InvariantReport:
    """Check the invariants over the dossiers ``accepted`` (codes answered 202) on the database and
    vault the settings name and the Prefect API of ``PREFECT_API_URL``."""
    from lienthong.db import session_scope
    from lienthong.db.models import DossierRow, InboxRow
    from lienthong.vault.index import VaultResult
    from lienthong.vault.seal import Keyring
    from lienthong.vault.store import open_store
    from lienthong.vault.verify import verify_vault

    codes = sorted(set(accepted))
    report = InvariantReport(dossiers=len(codes))
    runs = flow_runs_by_dossier() if check_flow_runs else {}
    with session_scope() as s:
        rows = {r.code: r for r in s.execute(select(DossierRow).where(DossierRow.code.in_(codes))).scalars()}
        inbox = Counter(s.execute(select(InboxRow.dossier_code).where(
            InboxRow.kind == "dossier", InboxRow.dossier_code.in_(codes))).scalars())
        dup_keys = s.execute(select(InboxRow.source, InboxRow.idempotency_key, func.count())
                             .group_by(InboxRow.source, InboxRow.idempotency_key)
                             .having(func.count() > 1)).all()
        for code in codes:
            row = rows.get(code)
            if row is None:
                report.problems.append(f"{code}: accepted but no dossier row (lost)")
                continue
            if inbox[code] != 1:
                report.problems.append(f"{code}: {inbox[code]} inbox rows of kind dossier (want 1)")
            mine = runs.get(code, [])
            if check_flow_runs and len(mine) > 1:
                report.problems.append(f"{code}: {len(mine)} flow runs {mine}")
            if row.status in TERMINAL:
                report.terminal += 1
            elif row.status in WAITING or any(state == "PAUSED" for _, state in mine):
                report.waiting += 1
            elif require_settled:
                report.problems.append(f"{code}: status {row.status}, runs {mine}: neither terminal nor waiting")
        report.problems += [f"inbox key {src}/{key} stored {n} times" for src, key, n in dup_keys]
        dup_results = s.execute(
            select(VaultResult.source_dossier_code, VaultResult.source_step, VaultResult.result_code, func.count())
            .where(VaultResult.version == 1)
            .group_by(VaultResult.source_dossier_code, VaultResult.source_step, VaultResult.result_code)
            .having(func.count() > 1)).all()
        report.problems += [f"{c} step {st} result {rc} published {n} times" for c, st, rc, n in dup_results]
        report.results = s.scalar(select(func.count()).select_from(VaultResult)) or 0
    verified = verify_vault(store=open_store(), keyring=Keyring())
    report.problems += [f"vault: {p}" for p in verified.problems]
    return report
