"""Processes of a stack, started, watched and stopped one way, for ``make up`` (infra/local.py),
``make up-prod`` (infra/prod.py), the benchmarks (bench/prodstack.py) and the tests; with the one way
to start a Prefect server and the one scratch PostgreSQL database helper they all use.

A :class:`Process` is a command run as its own process group (``kill`` reaches its children: a
Prefect server's or a worker's flow runs die with it), with

- a health check: an HTTP URL answering 200, a callable, or none (healthy while alive);
- a log, ``<log_dir>/<name>.log``, appended to across restarts, quoted when the start fails;
- optionally a pid file, ``<run_dir>/<name>.pid``, so that a later command (``make down``) stops
  what an earlier one left running, and a second ``make up`` reuses it instead of starting another.

``kill()`` is a crash (SIGKILL of the group, nothing flushed); ``stop()`` is a shutdown (SIGTERM,
then SIGKILL); ``restart()`` starts the same command again on the same ports.

Why not a library: mirakuru and pytest-xprocess fit tests, but tie a process's life to the Python
process that started it; honcho and supervisord run stacks in the foreground of a supervisor. The
stacks here need all three uses (a ``make up`` that returns and leaves its processes to a later
``make down``, fault tests that SIGKILL and restart one part, benchmarks that read a part's pid),
which this one small module covers.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

PG_ADMIN = os.environ.get("LIENTHONG_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


# --- small checks ---------------------------------------------------------------------------------


def healthy(url: str, timeout: float = 1.0) -> bool:
    """``url`` answers 200."""
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Something accepts TCP connections on ``host:port`` (a health check for non-HTTP services)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """An ASGI app served by uvicorn in a thread of this process, over real HTTP on 127.0.0.1 (the
    tests' and the benchmarks' simulators): ``with LiveServer(app) as server: server.url``."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 15
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def free_port_range(span: int, low: int = 10000, high: int = 19990) -> int:
    """A base port with ``span`` consecutive ports free now (a topology with fixed offsets). The
    default range lies below Linux's ephemeral ports (32768-60999), which ``free_port()`` and every
    outgoing connection take from: a test's client could otherwise take a port of the range before
    the topology's process binds it."""
    rng = random.Random()
    for _ in range(500):
        base = rng.randrange(low, high - span)
        try:
            for port in range(base, base + span):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no {span} consecutive free ports between {low} and {high}")


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie (a child that exited unreaped is reaped here)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text())
    except (OSError, ValueError):
        return None


def terminate(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM the process group of ``pid``, wait until the leader is gone, SIGKILL the group then
    (children that outlived their leader included)."""
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def stop_recorded(run_dir: Path, names: Iterable[str] | None = None,
                  order: Sequence[str] = ()) -> list[str]:
    """Stop the processes recorded under ``run_dir`` (those of ``names``, else all), ranked by the
    first prefix of ``order`` each name starts with; returns the names of those that were running."""
    if names is not None:
        files = [run_dir / f"{n}.pid" for n in names]
    else:
        files = sorted(run_dir.glob("*.pid")) if run_dir.exists() else []

    def rank(p: Path) -> int:
        return next((i for i, prefix in enumerate(order) if p.stem.startswith(prefix)), len(order))

    stopped = []
    for pid_file in sorted(files, key=rank):
        pid = read_pid(pid_file)
        if pid is not None and pid_alive(pid):
            terminate(pid)
            stopped.append(pid_file.stem)
        pid_file.unlink(missing_ok=True)
    return stopped


# --- a process ------------------------------------------------------------------------------------


class Process:
    """One process of a stack. ``health`` is a URL answering 200, a callable, or None (healthy
    while alive). With ``run_dir`` its pid is recorded there, and ``start()`` reuses a healthy
    process recorded by an earlier command instead of starting a second one. ``name`` may contain a
    ``/`` to keep a stack's files in a subdirectory."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None, *,
                 health: str | Callable[[], bool] | None = None, log_dir: Path,
                 run_dir: Path | None = None, cwd: Path | None = None, start_timeout: float = 300.0) -> None:
        self.name, self.argv, self.env = name, list(argv), dict(env or {})
        self.health = health
        self.log_path = log_dir / f"{name}.log"
        self.pid_path = run_dir / f"{name}.pid" if run_dir is not None else None
        self.cwd, self.start_timeout = cwd, start_timeout
        self.popen: subprocess.Popen[bytes] | None = None
        self.reused = False
        self.starts = 0
        self.kills = 0

    @property
    def health_url(self) -> str | None:
        return self.health if isinstance(self.health, str) else None

    # -- state -------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The pid of the running process: the one started here, else the one recorded."""
        if self.popen is not None:
            return self.popen.pid if self.popen.poll() is None else None
        pid = read_pid(self.pid_path) if self.pid_path is not None else None
        return pid if pid is not None and pid_alive(pid) else None

    @property
    def alive(self) -> bool:
        return self.pid is not None

    def is_healthy(self, timeout: float = 2.0) -> bool:
        if self.health is None:
            return self.alive
        if callable(self.health):
            return bool(self.health())
        return healthy(self.health, timeout)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, wait: bool = True, timeout: float | None = None) -> Process:
        if self.popen is not None and self.popen.poll() is None:
            raise RuntimeError(f"{self.name} is already running (pid {self.popen.pid})")
        if self.pid_path is not None and self.health is not None and self.is_healthy():
            if self.pid is not None:
                self.reused = True  # started by an earlier command of this checkout: reuse it
                return self
            raise RuntimeError(
                f"{self.name}: {self.health_url or 'its health check'} already answers, but not from a "
                "process this checkout started; stop it (`make down` where it was started) or wait")
        self.reused = False
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n==== start #{self.starts + 1} at {time.strftime('%H:%M:%S')} ====\n".encode())
            log.flush()
            self.popen = subprocess.Popen(self.argv, env={**os.environ, **self.env}, stdout=log,
                                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                          cwd=self.cwd, start_new_session=True)
        if self.pid_path is not None:
            self.pid_path.parent.mkdir(parents=True, exist_ok=True)
            self.pid_path.write_text(str(self.popen.pid))
        self.starts += 1
        if wait:
            self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while not self.is_healthy():
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode} (log {self.log_path}):\n"
                                   f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not healthy at {self.health_url or 'its check'} after "
                                   f"{timeout or self.start_timeout:.0f} s (log {self.log_path}):\n{self.log_tail()}")
            time.sleep(0.2)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the process group (SIGSTOP/SIGCONT freeze and thaw it)."""
        pid = self.pid
        if pid is None:
            raise RuntimeError(f"{self.name}: not running")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)

    def kill(self) -> None:
        """SIGKILL the process group, as a crash or the OOM killer would, and reap it."""
        pid = self.pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=30)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.kills += 1

    def stop(self, timeout: float = 20.0) -> None:
        """Ask politely (SIGTERM to the group), then SIGKILL the group; forget the pid file."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            if self.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(timeout=timeout)
            else:
                deadline = time.monotonic() + timeout
                while pid_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            if self.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.popen.wait(timeout=30)
        if self.pid_path is not None:
            self.pid_path.unlink(missing_ok=True)

    def restart(self, pause: float = 0.0, wait: bool = True, *, crash: bool = False,
                timeout: float | None = None) -> Process:
        """Stop (``crash``: kill) the process if it runs, start it again after ``pause`` seconds."""
        self.kill() if crash else self.stop()
        if pause:
            time.sleep(pause)
        self.popen = None
        return self.start(wait=wait, timeout=timeout)


class Stack:
    """Processes started in stages (the processes of one stage side by side), stopped in reverse;
    ``stop()`` stops only those this stack started, not those it reused."""

    def __init__(self) -> None:
        self.processes: dict[str, Process] = {}

    def __getitem__(self, name: str) -> Process:
        return self.processes[name]

    def start(self, *processes: Process, timeout: float | None = None) -> list[Process]:
        for p in processes:
            self.processes[p.name] = p
        if len(processes) == 1:
            processes[0].start(timeout=timeout)
        else:
            with ThreadPoolExecutor(max_workers=len(processes)) as pool:
                list(pool.map(lambda p: p.start(timeout=timeout), processes))
        return list(processes)

    def stop(self) -> None:
        for p in reversed(list(self.processes.values())):
            if not p.reused:
                with contextlib.suppress(Exception):
                    p.stop()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_once(name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path, timeout: float = 300) -> None:
    """A one-shot step (a migration, a registration): run to the end, its output to its log."""
    log_path = log_dir / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        done = subprocess.run(list(argv), env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} exited with {done.returncode}: see {log_path}")


def python(*args: str) -> list[str]:
    """argv of this interpreter (the project's venv) running ``args``."""
    return [sys.executable, *args]


# --- a Prefect server -----------------------------------------------------------------------------

# Services a server started only to be talked to (tests, benchmarks) does without: no cron
# deployment there is meant to fire, no run is late, no worker is watched; they would only take CPU.
QUIET_SERVICES = ("SCHEDULER", "LATE_RUNS", "FOREMAN")


def plain_http_ca_file(home: Path) -> str:
    """A CA file of one certificate, for Prefect clients of an API on plain http. Every Prefect
    client builds an SSL context from ``PREFECT_API_SSL_CERT_FILE``, or from the whole certifi
    bundle when it is unset: 47.6 ms of CPU per client, against 1.5 ms for one certificate (issue
    15), and a dossier makes dozens of clients. Plain http never uses the context; an https API
    must not be given this file."""
    import certifi

    path = home / "plain-http-ca.pem"
    if not path.exists():
        bundle = Path(certifi.where()).read_text(encoding="ascii", errors="replace")
        end = "-----END CERTIFICATE-----"
        first = bundle[bundle.index("-----BEGIN CERTIFICATE-----"): bundle.index(end) + len(end)]
        home.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(first + "\n", encoding="ascii")
        tmp.replace(path)  # atomic: processes starting together never read half a file
    return str(path)


def prefect_tuning(home: Path, api_url: str) -> dict[str, str]:
    """Settings of every process of a stack, measured by bench/province_day.py (issue 15): the small
    CA file while the API is plain http, and the task-run recorder writing task runs in batches
    (its default writes each task-run event alone, one transaction each)."""
    env = {
        "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_READ_BATCH_SIZE": "50",
        "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "50",
        "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "1",
    }
    if api_url.startswith("http://"):
        env["PREFECT_API_SSL_CERT_FILE"] = plain_http_ca_file(home)
    return env


def prefect_server_env(home: Path, port: int, database_url: str, *, ui: bool = False,
                       without: Iterable[str] = ()) -> dict[str, str]:
    """The environment of a Prefect server on ``database_url`` (``sqlite+aiosqlite://...`` or
    ``postgresql+asyncpg://...``), its home under ``home``, listening on 127.0.0.1:``port``, and of
    the clients that talk to it. ``without``: services left off (names of
    ``PREFECT_SERVER_SERVICES_<NAME>_ENABLED``, e.g. :data:`QUIET_SERVICES`)."""
    home.mkdir(parents=True, exist_ok=True)
    api = f"http://127.0.0.1:{port}/api"
    env = {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_UI_API_URL": api,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "true" if ui else "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
        **prefect_tuning(home, api),
    }
    for service in without:
        env[f"PREFECT_SERVER_SERVICES_{service.upper()}_ENABLED"] = "false"
    return env


def prefect_server(env: Mapping[str, str], *, name: str = "prefect-server", log_dir: Path,
                   run_dir: Path | None = None, extra_args: Sequence[str] = ()) -> Process:
    """``prefect server start`` with ``env`` (from :func:`prefect_server_env`)."""
    port = env["PREFECT_SERVER_API_PORT"]
    return Process(name, python("-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", port,
                                *extra_args),
                   env, health=f"http://127.0.0.1:{port}/api/health", log_dir=log_dir, run_dir=run_dir)


@contextlib.contextmanager
def prefect_server_on_postgres(admin_url: str = PG_ADMIN, *, name: str = "prefect-pg",
                               env: Mapping[str, str] | None = None, ui: bool = False,
                               without: Iterable[str] = ()) -> Iterator[Process]:
    """A real ``prefect server start`` on a scratch PostgreSQL database, as in production: a SQLite
    server locks under concurrent runs ("database is locked", prefect-notes.md §4), and a write it
    loses can leave a suspended run without its input schema, never to be resumed. Yields the
    running :class:`Process` (its ``env["PREFECT_API_URL"]``); stops it and drops the database
    afterwards. ``env``: more settings of the server."""
    home = Path(tempfile.mkdtemp(prefix="prefect-home-"))
    try:
        with scratch_database(admin_url, "lienthong_prefect", driver="asyncpg", migrate=False) as db:
            port = free_port()
            server_env = {**prefect_server_env(home, port, db, ui=ui, without=without), **(env or {})}
            server = prefect_server(server_env, name=f"{name}-{port}", log_dir=home / "logs")
            try:
                server.start(timeout=300)  # a loaded 2-core machine can take minutes
                yield server
            finally:
                server.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)


# --- PostgreSQL ----------------------------------------------------------------------------------


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


# --- a scratch PostgreSQL database ----------------------------------------------------------------


def database_url(admin_url: str, name: str, driver: str = "psycopg") -> str:
    """The SQLAlchemy URL (``postgresql+<driver>``) of database ``name`` on ``admin_url``'s server."""
    base = admin_url.rsplit("/", 1)[0].split("://", 1)[1]
    return f"postgresql+{driver}://{base}/{name}"


def create_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin_url: str, name: str) -> None:
    """Drop ``name``, connections of killed processes included; a server already gone is fine."""
    import psycopg
    from psycopg import sql

    with contextlib.suppress(psycopg.OperationalError), psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def scratch_database(admin_url: str = PG_ADMIN, prefix: str = "lienthong_scratch", *,
                     driver: str = "psycopg", migrate: bool = True) -> Iterator[str]:
    """A PostgreSQL database of its own on ``admin_url``'s server, migrated to the newest Liên
    Thông schema (``migrate=False``: empty, e.g. for a Prefect server, which migrates its own);
    yields its SQLAlchemy URL with ``driver`` and drops it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    create_database(admin_url, name)
    url = database_url(admin_url, name, driver)
    try:
        if migrate:
            from lienthong.db.migrate import upgrade

            upgrade(url)
        yield url
    finally:
        if migrate:
            from lienthong.db import dispose_engines

            dispose_engines()
        drop_database(admin_url, name)
