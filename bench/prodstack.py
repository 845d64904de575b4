"""The production topology as processes on localhost, for the province-day benchmark and the
fault suite (tests/faults): every part can be started, killed (SIGKILL of its process group, as a
host dies) and restarted on the same port.

    PostgreSQL        the machine's server (scratch databases), or a cluster of our own (``OwnPostgres``)
                      that a fault test may restart without disturbing anyone else
    Prefect API       ``prefect server start`` on PostgreSQL, services in the same process
    worker            every deployment served (``python -m infra.deployments``), automations applied;
                      flow runs are its child processes, so killing it kills them as a dead host would
    agency simulator  ``lienthong agency-sim`` in realistic mode on a shared simulated clock
    S3 vault          moto's standalone server behind a TCP proxy: stopping the proxy takes the
                      endpoint away while the objects stay (moto keeps them in memory only)
    gateway, relay    ``lienthong gateway`` and ``lienthong relay``

Nothing here is a fake of ours except the agencies (the bundled simulator).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


class Service:
    """One process of the stack (its own process group), with a health URL."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], health_url: str | None,
                 log_dir: Path) -> None:
        self.name, self.argv, self.env, self.health_url = name, argv, dict(env), health_url
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None and self.popen.poll() is None else None

    def start(self, timeout: float = 120.0) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        log.write(f"\n--- start {datetime.now().isoformat()} ---\n".encode())
        log.flush()
        self.popen = subprocess.Popen(self.argv, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True, cwd=REPO)
        self.starts += 1
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 120.0) -> None:
        if self.health_url is None:
            return
        deadline = time.time() + timeout
        while not healthy(self.health_url):
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}: see {self.log_path}")
            if time.time() > deadline:
                raise RuntimeError(f"{self.name} not healthy after {timeout:.0f}s: see {self.log_path}")
            time.sleep(0.3)

    def kill(self) -> None:
        """SIGKILL the whole process group: the host died (no clean-up, no goodbye)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill()

    def restart(self, timeout: float = 120.0) -> Service:
        self.stop()
        return self.start(timeout)


class OwnPostgres:
    """A PostgreSQL cluster of our own (initdb under a temporary directory, its own port), so that
    a test may stop and restart it without touching the machine's server. Its directory is made
    directly under the system's temporary directory: as root, the cluster runs as ``postgres``,
    which must be able to reach it (pytest's tmp_path is private to root)."""

    def __init__(self, root: Path | None = None, port: int | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="lienthong-pg-"))
        self.data = self.root / "data"
        self.port = port or free_port()
        self.bin = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))[-1]).parent
        self._as_postgres = os.geteuid() == 0  # initdb refuses to run as root

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        cmd = [str(self.bin / argv[0]), *argv[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/", check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-800:]}")

    def init(self) -> OwnPostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.root}'\nfsync = off\nmax_connections = 300\n"
                       "shared_buffers = 64MB\n")
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def create_database(admin_url: str, prefix: str) -> tuple[str, str]:
    """A new database; returns (its name, its psycopg URL)."""
    name = f"{prefix}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_database(admin_url: str, name: str) -> None:
    with contextlib.suppress(psycopg.Error), psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def point_at_stack(env: Mapping[str, str], scope: contextlib.ExitStack) -> None:
    """Point this process at a started stack: its environment (and the settings read from it, reset
    here) and Prefect's settings, which hold until ``scope`` closes. Prefect reads the environment
    once, when first imported: an API URL put in ``os.environ`` later is not seen, and a client then
    starts an ephemeral server of its own, in a subprocess, on the database the environment names,
    which outlives the stack (the fault tests did, unnoticed, until this)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE, temporary_settings

    from lienthong.db import dispose_engines
    from lienthong.settings import reset_settings
    from lienthong.vault.settings import reset_vault_settings

    os.environ.update(env)
    scope.enter_context(temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"],
                                            PREFECT_SERVER_ALLOW_EPHEMERAL_MODE: False}))
    reset_settings()
    reset_vault_settings()
    dispose_engines()


@dataclass
class StackConfig:
    pg_admin: str = os.environ.get("LIENTHONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
    # Simulated office seconds per real second (3600: an office hour passes in a real second).
    speed: float = 3600.0
    clock_start: datetime = datetime.fromisoformat("2026-03-10T07:30:00+07:00")
    serve_limit: int = 8
    sim: dict[str, str] = field(default_factory=lambda: {"LIENTHONG_SIM_MODE": "realistic",
                                                          "LIENTHONG_SIM_REFUSAL_RATE": "0.02",
                                                          "LIENTHONG_SIM_LATE_SHARE": "0.10"})
    heartbeat_seconds: int = 30  # Prefect refuses less than 30 s
    extra_env: dict[str, str] = field(default_factory=dict)


class ProdStack:
    """Start every part, expose each as a :class:`Service`; ``close()`` stops them in reverse."""

    def __init__(self, config: StackConfig | None = None, var_dir: Path | None = None) -> None:
        self.config = config or StackConfig()
        self.var_dir = var_dir or Path(tempfile.mkdtemp(prefix="lienthong-prod-"))
        self.log_dir = self.var_dir / "logs"
        self.services: dict[str, Service] = {}
        self._dbs: list[str] = []
        self._prefect = contextlib.ExitStack()
        self.env: dict[str, str] = {}
        self.secrets = {a: [secrets.token_hex(24)] for a in ("DVCQG", "UBND_XA", "CONG_AN_XA", "BHXH",
                                                            "VPDKDD", "THUE")}

    # --- the parts ------------------------------------------------------------------------------

    def _service(self, name: str, argv: list[str], health: str | None, env: Mapping[str, str] | None = None) -> Service:
        svc = Service(name, argv, {**self.env, **(env or {})}, health, self.log_dir)
        self.services[name] = svc
        return svc

    def start(self) -> ProdStack:
        from lienthong.clock import SimulatedClock

        cfg = self.config
        db_name, db_url = create_database(cfg.pg_admin, "lienthong_prod")
        pf_name, pf_url = create_database(cfg.pg_admin, "lienthong_prefect")
        self._dbs = [db_name, pf_name]
        self.db_url = db_url.replace("postgresql://", "postgresql+psycopg://")
        ports = {k: free_port() for k in ("prefect", "sim", "serve", "gateway", "relay", "moto", "s3")}
        self.ports = ports
        self.prefect_api = f"http://127.0.0.1:{ports['prefect']}/api"
        self.gateway_url = f"http://127.0.0.1:{ports['gateway']}"
        self.sim_url = f"http://127.0.0.1:{ports['sim']}"
        self.s3_url = f"http://127.0.0.1:{ports['s3']}"
        # Simulated time is paused (for every process sharing the clock) until ``run_clock()``.
        pause_file = self.var_dir / "run" / "clock.json"
        pause_file.parent.mkdir(parents=True, exist_ok=True)
        now = time.time()
        pause_file.write_text(json.dumps({"total": 0.0, "since": now}))
        self.clock = SimulatedClock(cfg.clock_start, now, cfg.speed, working_hours=True, pause_file=pause_file)
        home = self.var_dir / "prefect"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "LIENTHONG_DATABASE_URL": self.db_url,
            "LIENTHONG_VAR_DIR": str(self.var_dir),
            "LIENTHONG_AGENCY_API_URL": self.sim_url,
            "LIENTHONG_AGENCY_POLL_SECONDS": "0.25",
            "LIENTHONG_AGENCY_SECRETS": json.dumps(self.secrets),
            "LIENTHONG_SERVE_LIMIT": str(cfg.serve_limit),
            "LIENTHONG_VAULT_BACKEND": "s3",
            "LIENTHONG_VAULT_S3_ENDPOINT_URL": self.s3_url,
            "LIENTHONG_VAULT_S3_BUCKET": "lienthong-vault",
            "LIENTHONG_VAULT_S3_CREATE_BUCKET": "true",
            "LIENTHONG_VAULT_S3_ACCESS_KEY_ID": "testing",
            "LIENTHONG_VAULT_S3_SECRET_ACCESS_KEY": "testing",
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "LIENTHONG_GATEWAY_RATE_PER_SECOND": "1000", "LIENTHONG_GATEWAY_RATE_BURST": "1000",
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.prefect_api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_DATABASE_CONNECTION_URL": pf_url.replace("postgresql://", "postgresql+asyncpg://"),
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
            "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(cfg.heartbeat_seconds),
            "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "1",
            **cfg.sim,
            **cfg.extra_env,
        }
        self.env["LIENTHONG_CLOCK"] = self.clock.spec()
        self._apply_env()
        from lienthong.db.migrate import upgrade

        upgrade(self.db_url)
        self._prepare_keys()
        self._service("moto", [PY, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(ports["moto"])],
                      f"http://127.0.0.1:{ports['moto']}/moto-api/").start()
        self._service("s3-endpoint", [PY, "-m", "bench.tcp_proxy", str(ports["s3"]), str(ports["moto"])],
                      f"{self.s3_url}/moto-api/").start()
        self._service("prefect-server", [PY, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                         "--port", str(ports["prefect"])],
                      f"{self.prefect_api}/health").start(timeout=180)
        self._service("agency-sim", [PY, "-m", "lienthong.cli", "agency-sim", "--port", str(ports["sim"])],
                      f"{self.sim_url}/healthz").start()
        self._service("worker", [PY, "-m", "infra.deployments"],
                      f"http://127.0.0.1:{ports['serve']}/health",
                      {"LIENTHONG_SERVE_HEALTH_PORT": str(ports["serve"])}).start(timeout=240)
        self._service("gateway", [PY, "-m", "lienthong.cli", "gateway", "--port", str(ports["gateway"]),
                                  "--log-level", "warning"], f"{self.gateway_url}/healthz").start()
        relay_code = ("import threading,http.server,sys\n"
                      "class H(http.server.BaseHTTPRequestHandler):\n"
                      " def do_GET(s): s.send_response(200); s.end_headers()\n"
                      " def log_message(s,*a): pass\n"
                      f"srv=http.server.HTTPServer(('127.0.0.1',{ports['relay']}),H)\n"
                      "threading.Thread(target=srv.serve_forever,daemon=True).start()\n"
                      "from infra.cli import main; sys.exit(main(['relay', '--idle', '0.5']))")
        self._service("relay", [PY, "-c", relay_code], f"http://127.0.0.1:{ports['relay']}/health").start()
        return self

    def run_clock(self, running: bool = True) -> None:
        """Let simulated time run (or stop it again) in every process of the stack at once."""
        self.clock.set_paused(not running)

    def _apply_env(self) -> None:
        point_at_stack(self.env, self._prefect)

    def _prepare_keys(self) -> None:
        """Every issuing agency's signing key made once, before any flow run races to make it."""
        from lienthong.catalog import get_catalog
        from lienthong.vault.seal import Keyring

        keyring = Keyring()
        for agency in get_catalog().agencies:
            keyring.key_id(agency, create=True)

    def close(self) -> None:
        for svc in reversed(list(self.services.values())):
            svc.stop()
        self._prefect.close()
        from lienthong.db import dispose_engines

        dispose_engines()
        for name in self._dbs:
            drop_database(self.config.pg_admin, name)

    # --- measurements ---------------------------------------------------------------------------

    def rss_by_service(self) -> dict[str, int]:
        """Resident memory (bytes) of each service's process; for the worker also its flow runs
        (its child processes): all together, and the largest one."""
        import psutil

        out: dict[str, int] = {}
        for name, svc in self.services.items():
            if svc.pid is None:
                continue
            try:
                proc = psutil.Process(svc.pid)
                children = proc.children(recursive=True)
                own = proc.memory_info().rss
                kids = []
                for child in children:
                    with contextlib.suppress(psutil.Error):
                        kids.append(child.memory_info().rss)
            except psutil.Error:
                continue
            if name == "worker":
                out["worker"], out["worker+runs"] = own, own + sum(kids)
                if kids:
                    out["flow run"] = max(kids)
            else:
                out[name] = own + sum(kids)
        return out


@contextlib.contextmanager
def prod_stack(config: StackConfig | None = None) -> Iterator[ProdStack]:
    stack = ProdStack(config)
    try:
        yield stack.start()
    finally:
        stack.close()


# --- the same, on infra/prod.py (``make up-prod``'s topology) -----------------------------------


class ProdTopology:
    """``infra.prod.start_prod`` on scratch databases and ports of its own, with the bench's clock
    (paused until ``run_clock``), asynchronous agencies calling the gateway back, and the same
    measuring helpers as :class:`ProdStack`."""

    def __init__(self, *, speed: float, callback_delay: float, workers: int = 2, gateways: int = 2,
                 api_replicas: int = 2, pg_admin: str | None = None, extra_env: Mapping[str, str] | None = None,
                 var_dir: Path | None = None, pool_limit: int | None = 4) -> None:
        self.speed, self.callback_delay, self.pool_limit = speed, callback_delay, pool_limit
        self.workers, self.gateways, self.api_replicas = workers, gateways, api_replicas
        self.pg_admin = pg_admin or StackConfig().pg_admin
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
        self.clock = SimulatedClock(StackConfig().clock_start, now, self.speed, working_hours=True,
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


def free_port_range(span: int) -> int:
    """A base port with ``span`` consecutive free ports (infra/prod.py uses fixed offsets)."""
    import random
    import socket

    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(20000, 60000 - span)
        try:
            for port in range(base, base + span):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port range")


@contextlib.contextmanager
def prod_topology(**kw: Any) -> Iterator[ProdTopology]:
    topo = ProdTopology(**kw)
    try:
        yield topo.start()
    finally:
        topo.close()
