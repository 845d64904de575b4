"""The production topology of ``make up-prod`` (infra/prod.py) on scratch databases and ports of its
own, for the province-day benchmark (:class:`ProdTopology`).

Processes are started, killed and restarted by infra/processes.py; nothing here is a fake of ours
except the agencies (the bundled simulator).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from infra.processes import PG_ADMIN, drop_database, free_port_range
from infra.prod import point_at_stack

__all__ = ["ProdTopology", "free_port_range", "limit_pool", "point_at_stack", "prod_topology"]


# Simulated office time starts on a Tuesday morning; the bench's clock runs office hours only.
CLOCK_START = datetime.fromisoformat("2026-03-10T07:30:00+07:00")


# --- ``make up-prod``'s topology on scratch databases and ports ---------------------------------


class ProdTopology:
    """``infra.prod.start_prod`` on scratch databases and ports of its own, with the bench's clock
    (paused until ``run_clock``), asynchronous agencies calling the gateway back, and the same
    measuring helpers (resident memory by part)."""

    def __init__(self, *, speed: float, callback_delay: float, workers: int = 2, gateways: int = 2,
                 api_replicas: int = 2, pg_admin: str | None = None, extra_env: Mapping[str, str] | None = None,
                 var_dir: Path | None = None, pool_limit: int | None = 4) -> None:
        self.speed, self.callback_delay, self.pool_limit = speed, callback_delay, pool_limit
        self.workers, self.gateways, self.api_replicas = workers, gateways, api_replicas
        self.pg_admin = pg_admin or PG_ADMIN
        self.extra_env = dict(extra_env or {})
        self.var_dir = var_dir or Path(tempfile.mkdtemp(prefix="lienthong-prod-"))
        self.handle: object | None = None
        self._prefect = contextlib.ExitStack()

    def start(self) -> ProdTopology:
        from infra.prod import ProdConfig, start_prod
        from lienthong.catalog import get_catalog
        from lienthong.clock import SimulatedClock
        from lienthong.settings import reset_settings

        os.environ["LIENTHONG_VAR_DIR"] = str(self.var_dir)
        # Settings read before (the catalog's, say) named another var dir: the topology would record
        # its pids there and close() (after point_at_stack reset them) would stop nothing.
        reset_settings()
        pause_file = self.var_dir / "run" / "clock.json"
        pause_file.parent.mkdir(parents=True, exist_ok=True)
        now = time.time()
        pause_file.write_text(json.dumps({"total": 0.0, "since": now}))
        self.clock = SimulatedClock(CLOCK_START, now, self.speed, working_hours=True,
                                    pause_file=pause_file)
        base = free_port_range(60)
        agencies = [code for code, a in get_catalog().agencies.items() if code != "MOT_CUA"]
        probe = ProdConfig(port_base=base)
        env = {
            "LIENTHONG_CLOCK": self.clock.spec(),
            "LIENTHONG_AGENCY_MODES": json.dumps(dict.fromkeys(agencies, "async")),
            "LIENTHONG_CALLBACK_BASE_URL": probe.url("gateway"),
            "LIENTHONG_APPROVAL_POLICY": "auto",  # unattended load: no officer answers
            "LIENTHONG_SIM_MODE": "realistic",
            "LIENTHONG_SIM_REFUSAL_RATE": "0.02",
            "LIENTHONG_SIM_LATE_SHARE": "0.10",
            "LIENTHONG_SIM_CALLBACK_DELAY_SECONDS": str(self.callback_delay),
            "LIENTHONG_GATEWAY_RATE_PER_SECOND": "1000",
            "LIENTHONG_GATEWAY_RATE_BURST": "1000",
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            **self.extra_env,
        }
        suffix = uuid.uuid4().hex[:6]
        self.cfg = ProdConfig(port_base=base, pg_admin_url=self.pg_admin, prefect_db=f"lienthong_prefect_{suffix}",
                              lienthong_db=f"lienthong_prod_{suffix}", api_replicas=self.api_replicas,
                              gateways=self.gateways, workers=self.workers, env=env)
        self.handle = handle = start_prod(self.cfg, timeout=300)
        point_at_stack(handle.env, self._prefect)
        limit_pool(self.cfg.pool, self.pool_limit)
        self.gateway_url = handle.urls["gateway"]
        self.secrets = json.loads(handle.env["LIENTHONG_AGENCY_SECRETS"])
        self.log_dir = self.var_dir / "logs" / "prod"
        return self

    def run_clock(self, running: bool = True) -> None:
        self.clock.set_paused(not running)

    def rss_by_service(self) -> dict[str, int]:
        import psutil

        out: dict[str, int] = {}
        handle: Any = self.handle
        for name in list(handle.processes):
            pid = handle.pid(name)
            if pid is None:
                continue
            try:
                proc = psutil.Process(pid)
                own = proc.memory_info().rss
                kids = []
                for child in proc.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        kids.append(child.memory_info().rss)
            except psutil.Error:
                continue
            if name.startswith("worker"):
                out[name], out[f"{name}+runs"] = own, own + sum(kids)
                if kids:
                    out["flow run"] = max(out.get("flow run", 0), max(kids))
                # Runs forked from the worker's fork server share its pages: what each costs of its
                # own (USS), and the whole tree counted once (PSS), say more than RSS sums.
                with contextlib.suppress(psutil.Error):
                    tree = [proc, *proc.children(recursive=True)]
                    pss = uss = 0
                    for p in tree:
                        with contextlib.suppress(psutil.Error):
                            full = p.memory_full_info()
                            pss += full.pss
                            if "infra.forkserver" in " ".join(p.parent().cmdline() if p.parent() else []):
                                uss = max(uss, full.uss)
                    out[f"{name}+runs PSS"] = pss
                    if uss:
                        out["forked run, own pages (USS)"] = max(out.get("forked run, own pages (USS)", 0), uss)
            else:
                out[name] = own + sum(kids)
        return out

    def close(self) -> None:
        from lienthong.db import dispose_engines

        handle: Any = self.handle
        if handle is not None:
            handle.stop()
        self._prefect.close()
        dispose_engines()
        for name in (self.cfg.prefect_db, self.cfg.lienthong_db):
            drop_database(self.pg_admin, name)


def limit_pool(pool: str, limit: int | None) -> None:
    """Flow runs the work pool runs at once (over all workers): each is a process of ~350 MB that
    imports GX and may OCR; a suspended run holds no slot. None: no limit (Prefect's default)."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolUpdate

    with get_client(sync_client=True) as client:
        client.update_work_pool(pool, WorkPoolUpdate(concurrency_limit=limit))


@contextlib.contextmanager
def prod_topology(**kw: Any) -> Iterator[ProdTopology]:
    topo = ProdTopology(**kw)
    try:
        yield topo.start()
    finally:
        topo.close()
