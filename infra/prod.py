"""The production topology as processes on this machine: ``make up-prod`` / ``make down-prod``.

The same parts as ``infra/docker-compose.yml``, on localhost:

- the machine's PostgreSQL, with a ``prefect`` and a ``lienthong`` database (created when missing);
- Redis (its own ``redis-server``), the Prefect API's message broker, cache, ordering and leases;
- the Prefect API as replicas started with ``--no-services`` and one background-services process;
- a process work pool, every deployment of ``infra.deployments`` registered to it, two workers;
- two webhook gateways and the relay; nginx in front of the gateways and of the API replicas;
- an S3 endpoint as the vault (moto's server: MinIO cannot be downloaded here);
- the agency simulator and the national-portal simulator.

Every process logs to ``var/logs/prod/<name>.log`` and records its pid in ``var/run/prod/<name>.pid``
(a subdirectory, so ``make down`` of the embedded stack leaves this one alone). Ports are
``LIENTHONG_PROD_PORT_BASE`` (8800) plus a fixed offset each (:data:`OFFSETS`).

Load and fault tests drive it from Python::

    handle = start_prod(ProdConfig(port_base=21000))
    handle.urls["gateway"]           # the reverse proxy in front of the gateways
    handle.kill("worker-1")          # SIGKILL one process (its whole process group)
    handle.restart("worker-1")       # start it again and wait until it is healthy
    handle.stop()                    # everything this topology recorded
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra import processes
from infra.local import local_agency_secrets, relay_argv
from infra.processes import Process, Stack, healthy, prefect_tuning, python, read_pid, run_once, tcp_open
from lienthong.settings import REPO_ROOT, get_settings

SUBDIR = "prod"
FLOW_RUN_COMMAND = f"{sys.executable} -m infra.forkclient"
NGINX_TEMPLATE = REPO_ROOT / "infra" / "nginx" / "local.conf.in"
NGINX_PROXY_RULES = REPO_ROOT / "infra" / "nginx" / "proxy.inc"

# Port of each part: LIENTHONG_PROD_PORT_BASE + offset. Replicas take consecutive offsets.
OFFSETS = {
    "prefect": 0,  # nginx in front of the Prefect API replicas (UI and API)
    "prefect-api": 1,  # replicas: 8801, 8802, ...
    "gateway": 10,  # nginx in front of the gateways (what agencies and the portal call)
    "gateway-replica": 11,  # replicas: 8811, 8812, ...
    "relay": 19,  # the relay's health endpoint
    "agency-sim": 20,
    "portal-sim": 21,
    "s3": 22,
    "redis": 30,
    "worker": 40,  # workers' health endpoints: 8840, 8841, ...
}
MAX_REPLICAS = 8


@dataclass(frozen=True)
class ProdConfig:
    port_base: int = 8800
    # The machine's PostgreSQL (an admin connection that may create databases).
    pg_admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    prefect_db: str = "prefect"
    lienthong_db: str = "lienthong"
    # One replica on a host of two cores or fewer: a second costs its own memory and CPU in every
    # poll loop and buys nothing there (bench/province_day.py measures it).
    api_replicas: int = field(default_factory=lambda: 1 if (os.cpu_count() or 1) <= 2 else 2)
    gateways: int = 2
    workers: int = 2
    pool: str = "lienthong"
    # Flow runs the pool runs at once over all workers: each is a process of ~350 MB that imports GX
    # and may OCR (24 at once starved 2 cores and the API's database pool); a suspended run holds no slot.
    pool_limit: int = 4
    s3_bucket: str = "lienthong-vault"
    # Extra environment for every process (e.g. LIENTHONG_CLOCK, LIENTHONG_SIM_*), applied last.
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ProdConfig:
        """``LIENTHONG_PROD_*``: PORT_BASE, PG_ADMIN_URL, PREFECT_DB, DB, API_REPLICAS, GATEWAYS,
        WORKERS, POOL, POOL_LIMIT."""
        d = cls()

        def get(name: str, default: Any) -> Any:
            return type(default)(environ.get(f"LIENTHONG_PROD_{name}", default))

        return cls(
            port_base=get("PORT_BASE", d.port_base),
            pg_admin_url=get("PG_ADMIN_URL", d.pg_admin_url),
            prefect_db=get("PREFECT_DB", d.prefect_db),
            lienthong_db=get("DB", d.lienthong_db),
            api_replicas=get("API_REPLICAS", d.api_replicas),
            gateways=get("GATEWAYS", d.gateways),
            workers=get("WORKERS", d.workers),
            pool=get("POOL", d.pool),
            pool_limit=get("POOL_LIMIT", d.pool_limit),
        )

    def __post_init__(self) -> None:
        for name in ("api_replicas", "gateways", "workers"):
            if not 1 <= getattr(self, name) <= MAX_REPLICAS:
                raise ValueError(f"{name} must be between 1 and {MAX_REPLICAS}")

    def port(self, part: str, replica: int = 1) -> int:
        return self.port_base + OFFSETS[part] + replica - 1

    def url(self, part: str, replica: int = 1) -> str:
        return f"http://127.0.0.1:{self.port(part, replica)}"

    def database_url(self, name: str, driver: str) -> str:
        base = self.pg_admin_url.rsplit("/", 1)[0].split("://", 1)[1]
        return f"postgresql+{driver}://{base}/{name}"

    @property
    def prefect_api_url(self) -> str:
        return f"{self.url('prefect')}/api"

    @property
    def urls(self) -> dict[str, str]:
        return {
            "prefect-ui": self.url("prefect"),
            "prefect-api": self.prefect_api_url,
            "gateway": self.url("gateway"),
            "agency-sim": self.url("agency-sim"),
            "portal-sim": self.url("portal-sim"),
            "s3": self.url("s3"),
            "redis": f"redis://127.0.0.1:{self.port('redis')}/0",
            "lienthong-db": self.database_url(self.lienthong_db, "psycopg"),
            "prefect-db": self.database_url(self.prefect_db, "asyncpg"),
        }


def prod_dir() -> Path:
    return get_settings().var_dir / SUBDIR


def prod_env(cfg: ProdConfig) -> dict[str, str]:
    """The one environment every process of the topology gets (the compose file's ``x-env``)."""
    home = prod_dir() / "prefect"
    redis_port = str(cfg.port("redis"))
    env = {
        # Prefect: clients talk to the API through the proxy; the server keeps its state in PostgreSQL
        # and passes events, caches, ordering, leases and its task queue (docket) through Redis.
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": cfg.prefect_api_url,
        "PREFECT_UI_API_URL": cfg.prefect_api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": cfg.database_url(cfg.prefect_db, "asyncpg"),
        # One schema step (migrations, block types) before the replicas: replicas starting together
        # on a fresh database would otherwise race on both (duplicate key on block_type).
        "PREFECT_API_DATABASE_MIGRATE_ON_START": "false",
        "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
        "PREFECT_MESSAGING_BROKER": "prefect_redis.messaging",
        "PREFECT_MESSAGING_CACHE": "prefect_redis.messaging",
        "PREFECT_SERVER_EVENTS_CAUSAL_ORDERING": "prefect_redis.ordering",
        "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect_redis.lease_storage",
        "PREFECT_REDIS_MESSAGING_HOST": "127.0.0.1",
        "PREFECT_REDIS_MESSAGING_PORT": redis_port,
        "PREFECT_REDIS_MESSAGING_DB": "0",
        "PREFECT_SERVER_DOCKET_URL": f"redis://127.0.0.1:{redis_port}/1",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),  # shared by the workers of this host
        **prefect_tuning(home, cfg.prefect_api_url),
        # Liên Thông
        "LIENTHONG_DATABASE_URL": cfg.database_url(cfg.lienthong_db, "psycopg"),
        "LIENTHONG_AGENCY_API_URL": cfg.url("agency-sim"),
        "LIENTHONG_PORTAL_URL": cfg.url("portal-sim"),
        "LIENTHONG_GATEWAY_PUBLIC_URL": cfg.url("gateway"),
        # The gateway replicas share each agency's rate limit there (Prefect uses databases 0-1).
        "LIENTHONG_GATEWAY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/2",
        # Asynchronous agencies call back through the proxy; approvals wait for an officer.
        "LIENTHONG_CALLBACK_BASE_URL": cfg.url("gateway"),
        "LIENTHONG_APPROVAL_POLICY": os.environ.get("LIENTHONG_APPROVAL_POLICY", "operator"),
        "LIENTHONG_AGENCY_SECRETS": local_agency_secrets(),
        "LIENTHONG_VAULT_BACKEND": "s3",
        "LIENTHONG_VAULT_S3_ENDPOINT_URL": cfg.url("s3"),
        "LIENTHONG_VAULT_S3_BUCKET": cfg.s3_bucket,
        "LIENTHONG_VAULT_S3_ACCESS_KEY_ID": "lienthong-local",
        "LIENTHONG_VAULT_S3_SECRET_ACCESS_KEY": "lienthong-local-secret",
        "LIENTHONG_VAULT_S3_CREATE_BUCKET": "true",
        "LIENTHONG_SIM_MODE": os.environ.get("LIENTHONG_SIM_MODE", "realistic"),
    }
    return {**env, **cfg.env}


# --- the processes -----------------------------------------------------------------------------


_py = python


def _process(name: str, argv: list[str], env: Mapping[str, str], health: str | Callable[[], bool] | None,
             ) -> Process:
    """A process of this topology: logs under var/logs/prod, pid under var/run/prod."""
    var = get_settings().var_dir
    return Process(name, argv, env, health=health, log_dir=var / "logs" / SUBDIR, run_dir=var / "run" / SUBDIR)


def _redis_ping(port: int) -> Callable[[], bool]:
    def check() -> bool:
        if not tcp_open("127.0.0.1", port):
            return False
        import redis

        try:
            return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    return check


def _running_for(pid_path: Path, seconds: float) -> Callable[[], bool]:
    """Health of a process without any endpoint: alive, and for a few seconds already."""

    def check() -> bool:
        pid = read_pid(pid_path)
        try:
            return (pid is not None and processes.pid_alive(pid)
                    and time.time() - pid_path.stat().st_mtime >= seconds)
        except OSError:
            return False

    return check


def redis(cfg: ProdConfig, env: Mapping[str, str]) -> Process:
    port = cfg.port("redis")
    data = prod_dir() / "redis"
    data.mkdir(parents=True, exist_ok=True)
    return _process("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(port),
                              "--dir", str(data), "--save", "", "--appendonly", "yes"],
                    env, _redis_ping(port))


def s3(cfg: ProdConfig, env: Mapping[str, str]) -> Process:
    port = cfg.port("s3")
    return _process("s3", _py("-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)), env,
                    f"http://127.0.0.1:{port}/moto-api/")


def prefect_api(cfg: ProdConfig, env: Mapping[str, str], replica: int) -> Process:
    port = cfg.port("prefect-api", replica)
    static = prod_dir() / "prefect" / f"ui-{replica}"  # each replica prepares its own UI copy
    server = processes.prefect_server(
        {**env, "PREFECT_SERVER_API_PORT": str(port), "PREFECT_UI_STATIC_DIRECTORY": str(static)},
        name=f"prefect-api-{replica}", log_dir=get_settings().var_dir / "logs" / SUBDIR,
        run_dir=get_settings().var_dir / "run" / SUBDIR, extra_args=["--no-services"])
    return server


def prefect_services(cfg: ProdConfig, env: Mapping[str, str]) -> Process:
    p = _process("prefect-services", _py("-m", "prefect", "server", "services", "start"), env, None)
    assert p.pid_path is not None
    p.health = _running_for(p.pid_path, 3.0)
    return p


def agency_sim(cfg: ProdConfig, env: Mapping[str, str]) -> Process:
    port = cfg.port("agency-sim")
    return _process("agency-sim", _py("-m", "lienthong.cli", "agency-sim", "--port", str(port)), env,
                    f"http://127.0.0.1:{port}/healthz")


def portal_sim(cfg: ProdConfig, env: Mapping[str, str]) -> Process:
    port = cfg.port("portal-sim")
    return _process("portal-sim", _py("-m", "lienthong.cli", "portal-sim", "--port", str(port)), env,
                    f"http://127.0.0.1:{port}/_sim/stats")


def gateway(cfg: ProdConfig, env: Mapping[str, str], replica: int) -> Process:
    port = cfg.port("gateway-replica", replica)
    return _process(f"gateway-{replica}",
                    _py("-m", "lienthong.cli", "gateway", "--port", str(port), "--log-level", "warning"), env,
                    f"http://127.0.0.1:{port}/healthz")


def render_nginx(cfg: ProdConfig) -> Path:
    """nginx.conf of this topology under var/prod/nginx, from infra/nginx/local.conf.in."""
    root = prod_dir() / "nginx"
    (root / "tmp").mkdir(parents=True, exist_ok=True)
    logs = get_settings().var_dir / "logs" / SUBDIR
    logs.mkdir(parents=True, exist_ok=True)

    def servers(part: str, count: int) -> str:
        return "\n".join(f"        server 127.0.0.1:{cfg.port(part, i)} max_fails=1 fail_timeout=3s;"
                         for i in range(1, count + 1))

    values = {
        "USER": "user root root;" if os.geteuid() == 0 else "",  # root: workers keep write access to tmp
        "PID": str(root / "nginx.pid"),
        "ERROR_LOG": str(logs / "nginx-error.log"),
        "TMP": str(root / "tmp"),
        "PROXY_RULES": str(NGINX_PROXY_RULES),
        "GATEWAY_SERVERS": servers("gateway-replica", cfg.gateways),
        "PREFECT_SERVERS": servers("prefect-api", cfg.api_replicas),
        "GATEWAY_PORT": str(cfg.port("gateway")),
        "PREFECT_PORT": str(cfg.port("prefect")),
        # Off unless asked for: a path logs each Prefect API call (time, method, path, status, duration).
        "PREFECT_ACCESS_LOG": _access_log(cfg),
    }
    text = NGINX_TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    conf = root / "nginx.conf"
    conf.write_text(text)
    return conf


def _access_log(cfg: ProdConfig) -> str:
    path = cfg.env.get("LIENTHONG_PROD_PREFECT_ACCESS_LOG") or os.environ.get("LIENTHONG_PROD_PREFECT_ACCESS_LOG")
    return f"{path} routes" if path else "off"


def nginx(cfg: ProdConfig, env: Mapping[str, str]) -> Process:
    conf = render_nginx(cfg)
    gateway_health = f"{cfg.url('gateway')}/healthz"

    def check() -> bool:  # both sides of the proxy answer
        return healthy(gateway_health) and healthy(f"{cfg.prefect_api_url}/health")

    return _process("nginx", ["nginx", "-e", "stderr", "-p", str(conf.parent), "-c", str(conf),
                              "-g", "daemon off;"], env, check)


def worker(cfg: ProdConfig, env: Mapping[str, str], replica: int) -> Process:
    port = cfg.port("worker", replica)
    return _process(f"worker-{replica}",
                    _py("-m", "infra.worker", "--socket", str(prod_dir() / "run" / f"forkserver-{replica}.sock"),
                        "--", "--pool", cfg.pool, "--type", "process",
                        "--name", f"{cfg.pool}-worker-{replica}", "--with-healthcheck"),
                    {**env, "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
                     "PREFECT_WORKER_WEBSERVER_PORT": str(port)},
                    f"http://127.0.0.1:{port}/health")


def relay(cfg: ProdConfig, env: Mapping[str, str]) -> Process:
    port = cfg.port("relay")
    return _process("relay", relay_argv(port), env, f"http://127.0.0.1:{port}/health")


# --- one-shot steps ----------------------------------------------------------------------------


def ensure_databases(cfg: ProdConfig) -> list[str]:
    """Create the Prefect and Liên Thông databases when missing; returns those created."""
    import psycopg
    from psycopg import sql

    created = []
    try:
        conn = psycopg.connect(cfg.pg_admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise RuntimeError(f"PostgreSQL is not reachable at {cfg.pg_admin_url} (`make services` starts "
                           f"the machine's): {exc}") from exc
    with conn:
        for name in (cfg.prefect_db, cfg.lienthong_db):
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # a concurrent up-prod
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    created.append(name)
    return created


def _one_shot(name: str, argv: list[str], env: Mapping[str, str], timeout: float = 300) -> None:
    run_once(name, argv, env, get_settings().var_dir / "logs" / SUBDIR, timeout)


def prefect_schema() -> None:
    """The Prefect database's migrations and block types (``python -m infra.prod prefect-schema``):
    what each API replica would otherwise do on start, done once."""
    import asyncio

    async def run() -> None:
        from prefect.server.database import provide_database_interface
        from prefect.server.models.block_registration import run_block_auto_registration

        db = provide_database_interface()
        await db.run_migrations_upgrade()
        async with await db.session() as session:
            await run_block_auto_registration(session=session)
            await session.commit()

    asyncio.run(run())


def migrate(cfg: ProdConfig, env: Mapping[str, str]) -> None:
    """Both schemas, before any replica starts (replicas never migrate concurrently)."""
    _one_shot("lienthong-migrate", _py("-m", "lienthong.cli", "db", "upgrade"), env)
    _one_shot("prefect-schema", _py("-m", "infra.prod", "prefect-schema"), env)


def work_pool_deployments(pool: str) -> list[Any]:
    """The deployments of ``infra.deployments`` (same flows, names, tags, schedules as ``serve``),
    bound to a process work pool: procedures on queue ``procedures``, batch flows on ``batch``.
    Entrypoints become module paths, so a worker imports the installed package (no code copy)."""
    from prefect.deployments.runner import EntrypointType

    from infra.deployments import batch_deployments, procedure_deployments

    out = []
    for queue, deployments in (("procedures", procedure_deployments()), ("batch", batch_deployments())):
        for d in deployments:
            path, _, fn = d.entrypoint.partition(":")
            if not path.endswith(".py"):
                raise ValueError(f"unexpected entrypoint {d.entrypoint!r}")
            d.entrypoint = f"{path[:-3].replace('/', '.')}.{fn}"
            d._entrypoint_type = EntrypointType.MODULE_PATH
            d._path = None
            d.work_pool_name, d.work_queue_name = pool, queue
            # Runs start as forks of the worker's warm fork server (infra/forkserver.py), or cold
            # when it is not there: the same engine either way.
            d.job_variables = {**(d.job_variables or {}), "command": FLOW_RUN_COMMAND}
            out.append(d)
    return out


def register(pool: str, limit: int | None = ProdConfig.pool_limit) -> list[str]:
    """Create the process work pool when missing, with ``limit`` flow runs at once, register every
    deployment to it, apply the automations (``python -m infra.prod register``, PREFECT_API_URL set)."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists

    from infra.automations import apply_automations

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process", concurrency_limit=limit))
        except ObjectAlreadyExists:
            client.update_work_pool(pool, WorkPoolUpdate(concurrency_limit=limit))
    names = []
    for d in work_pool_deployments(pool):
        d.apply()
        names.append(f"{d.flow_name}/{d.name}")
    apply_automations()
    return names


# --- the topology ------------------------------------------------------------------------------


class ProdHandle(Stack):
    """A running topology: its URLs and its processes (:class:`infra.processes.Process`) by short
    name, e.g. ``handle["worker-1"].kill()``; the methods below name a process by its short name."""

    def __init__(self, config: ProdConfig, env: dict[str, str]) -> None:
        super().__init__()
        self.config, self.env = config, env
        self.started: list[str] = []  # short names started now (the others were reused)

    @property
    def urls(self) -> dict[str, str]:
        return self.config.urls

    def pid(self, name: str) -> int | None:
        return self.processes[name].pid

    def alive(self, name: str) -> bool:
        return self.processes[name].alive

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process group of ``name`` (SIGKILL by default: a crash, not a stop)."""
        if sig == signal.SIGKILL:
            if not self.processes[name].alive:
                raise RuntimeError(f"{name}: not running")
            self.processes[name].kill()
        else:
            self.processes[name].signal(sig)

    def stop_one(self, name: str) -> None:
        """Stop ``name`` gracefully (SIGTERM, then SIGKILL after 20 s)."""
        self.processes[name].stop()

    def restart(self, name: str, timeout: float = 180.0) -> None:
        """Stop ``name`` if it still runs, start it again, wait until it is healthy."""
        self.processes[name].restart(timeout=timeout)

    def stop(self) -> None:
        """Every process of this topology, those an earlier ``up-prod`` started included."""
        super().stop()
        stop_prod()


def _start_all(handle: ProdHandle, makers: dict[str, Callable[[], Process]], timeout: float) -> list[str]:
    """Start independent processes side by side; returns the short names of those started now."""
    procs = {name: make() for name, make in makers.items()}
    handle.start(*procs.values(), timeout=timeout)
    started = [name for name, p in procs.items() if not p.reused]
    handle.started += started
    return started


def start_prod(cfg: ProdConfig | None = None, *, timeout: float = 240.0,
               echo: Callable[[str], None] = lambda _: None) -> ProdHandle:
    """Start (or reuse) every part of the topology; idempotent. Raises when one does not start."""
    cfg = cfg or ProdConfig.from_env()
    env = prod_env(cfg)
    (prod_dir() / "prefect").mkdir(parents=True, exist_ok=True)
    handle = ProdHandle(cfg, env)

    def stage(label: str, makers: dict[str, Callable[[], Process]]) -> None:
        started = _start_all(handle, makers, timeout)
        echo(f"{label:<24} " + ", ".join(n if n in started else f"{n} (reused)" for n in makers))

    def replicas(prefix: str, count: int, make: Callable[[ProdConfig, Mapping[str, str], int], Process],
                 ) -> dict[str, Callable[[], Process]]:
        return {f"{prefix}-{i}": (lambda i=i: make(cfg, env, i)) for i in range(1, count + 1)}  # type: ignore[misc]

    created = ensure_databases(cfg)
    echo(f"{'postgresql':<24} {cfg.database_url(cfg.lienthong_db, 'psycopg')}, {cfg.prefect_db}"
         + (f" (created {', '.join(created)})" if created else ""))
    stage("redis, s3, simulators", {"redis": lambda: redis(cfg, env), "s3": lambda: s3(cfg, env),
                                    "agency-sim": lambda: agency_sim(cfg, env),
                                    "portal-sim": lambda: portal_sim(cfg, env)})
    apis = replicas("prefect-api", cfg.api_replicas, prefect_api)
    if not all(make().is_healthy() for make in apis.values()):
        migrate(cfg, env)
    stage("prefect api replicas", apis)
    stage("prefect services", {"prefect-services": lambda: prefect_services(cfg, env)})
    stage("gateways", replicas("gateway", cfg.gateways, gateway))
    stage("reverse proxy", {"nginx": lambda: nginx(cfg, env)})
    _one_shot("register", _py("-m", "infra.prod", "register", "--pool", cfg.pool, "--limit", str(cfg.pool_limit)),
              env)
    echo(f"{'deployments':<24} registered to work pool {cfg.pool!r}")
    stage("workers, relay", {**replicas("worker", cfg.workers, worker), "relay": lambda: relay(cfg, env)})
    _write_state(handle)
    return handle


def _write_state(handle: ProdHandle) -> None:
    state = {"config": {k: v for k, v in handle.config.__dict__.items() if k != "env"},
             "urls": handle.urls,
             "processes": {k: {"name": p.name, "pid_file": str(p.pid_path), "log": str(p.log_path),
                               "health": p.health_url} for k, p in handle.processes.items()}}
    (prod_dir() / "state.json").write_text(json.dumps(state, indent=1))


def stop_prod() -> list[str]:
    """Stop every process recorded under var/run/prod (and nothing else), newest parts first."""
    run = get_settings().var_dir / "run" / SUBDIR
    if not run.exists():
        return []
    order = ["relay", "worker", "nginx", "gateway", "prefect-services", "prefect-api", "portal-sim",
             "agency-sim", "s3", "redis"]
    return processes.stop_recorded(run, order=order)


def point_at_stack(env: Mapping[str, str], scope: contextlib.ExitStack) -> None:
    """Point this process at a started stack: its environment (and the settings read from it, reset
    here) and Prefect's settings, which hold until ``scope`` closes. Prefect reads the environment
    once, when first imported: an API URL put in ``os.environ`` later is not seen, and a client then
    starts an ephemeral server of its own, in a subprocess, on the database the environment names,
    which outlives the stack (the fault tests did, unnoticed, until this)."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE, temporary_settings

    from lienthong.db import dispose_engines
    from lienthong.settings import reset_settings

    os.environ.update(env)
    scope.enter_context(temporary_settings({PREFECT_API_URL: env["PREFECT_API_URL"],
                                            PREFECT_SERVER_ALLOW_EPHEMERAL_MODE: False}))
    reset_settings()
    reset_settings()
    dispose_engines()


def up(echo: Callable[[str], None] = print) -> int:
    cfg = ProdConfig.from_env()
    handle = start_prod(cfg, echo=echo)
    echo("")
    width = max(map(len, handle.urls))
    for name, url in handle.urls.items():
        echo(f"  {name:<{width}}  {url}")
    echo(f"\nlogs: {get_settings().var_dir / 'logs' / SUBDIR}   pids: {get_settings().var_dir / 'run' / SUBDIR}")
    echo(f"agency secrets: {get_settings().var_dir / 'secrets'}/   stop: make down-prod")
    return 0


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m infra.prod", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start (or reuse) the topology and print its URLs")
    sub.add_parser("down", help="stop every process of the topology")
    sub.add_parser("status", help="which processes run")
    sub.add_parser("prefect-schema", help="migrate the Prefect database and register block types")
    r = sub.add_parser("register", help="register the deployments to the work pool (PREFECT_API_URL)")
    r.add_argument("--pool", default=ProdConfig.from_env().pool)
    r.add_argument("--limit", type=int, default=ProdConfig.from_env().pool_limit,
                   help="flow runs the pool runs at once (0: no limit)")
    args = parser.parse_args(argv)
    if args.command == "up":
        return up()
    if args.command == "down":
        for name in stop_prod():
            print(f"stopped {name}")
        return 0
    if args.command == "prefect-schema":
        prefect_schema()
        return 0
    if args.command == "register":
        names = register(args.pool, args.limit or None)
        print(f"{len(names)} deployments on work pool {args.pool!r}")
        return 0
    run = get_settings().var_dir / "run" / SUBDIR
    for pid_file in sorted(run.glob("*.pid")) if run.exists() else []:
        pid = read_pid(pid_file)
        print(f"{pid_file.stem:<20} {'running' if pid and processes.pid_alive(pid) else 'dead'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

