"""The embedded local stack as processes: a Prefect server on SQLite under ./var, the agency
simulator, and the deployments served. Used by ``make demo`` / ``lienthong demo`` and ``make up``.

Each process logs to ``var/logs/<name>.log`` and records its pid in ``var/run/<name>.pid`` so that
``make down`` can stop what an earlier command left running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx

from lienthong.settings import get_settings

PREFECT_PORT = int(os.environ.get("LIENTHONG_PREFECT_PORT", "4200"))


def prefect_env(var_dir: Path | None = None, port: int = PREFECT_PORT) -> dict[str, str]:
    """Environment of a local Prefect server whose database and home live under ./var/prefect."""
    home = (var_dir or get_settings().var_dir) / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    api = f"http://127.0.0.1:{port}/api"
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_UI_API_URL": api,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(home / "storage"),
    }


def healthy(url: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Something accepts TCP connections on ``host:port`` (a health check for non-HTTP services)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Process:
    """A background process with a log, a pid file and a health check: an HTTP URL answering 200,
    or ``check`` (a callable) for services without HTTP. ``name`` may contain a ``/`` to keep a
    stack's files in a subdirectory of var/logs and var/run."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], health_url: str,
                 check: Callable[[], bool] | None = None) -> None:
        self.name, self.argv, self.env, self.health_url = name, argv, dict(env), health_url
        self.check = check
        self.popen: subprocess.Popen[bytes] | None = None
        var = get_settings().var_dir
        self.log_path = var / "logs" / f"{name}.log"
        self.pid_path = var / "run" / f"{name}.pid"

    def healthy(self) -> bool:
        return self.check() if self.check is not None else healthy(self.health_url)

    def start(self, timeout: float = 90.0) -> None:
        if self.healthy():
            if _alive(self.pid_path):
                return  # started by this checkout (`make up`, `--keep-running`): reuse it
            raise RuntimeError(
                f"{self.name}: {self.health_url} already answers, but not from a process this checkout "
                "started; stop it (`make down` where it was started) or wait for it to exit")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.pid_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(self.argv, env={**os.environ, **self.env}, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        self.pid_path.write_text(str(self.popen.pid))
        deadline = time.time() + timeout
        while not self.healthy():
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}: see {self.log_path}")
            if time.time() > deadline:
                raise RuntimeError(f"{self.name} not healthy after {timeout:.0f}s: see {self.log_path}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
            self.popen.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)


class Stack:
    """Start processes in order; stop them in reverse (only those this stack started)."""

    def __init__(self) -> None:
        self.processes: list[Process] = []

    def start(self, process: Process, timeout: float = 90.0) -> Process:
        process.start(timeout)
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for p in reversed(self.processes):
            p.stop()


def prefect_server(env: Mapping[str, str]) -> Process:
    port = env["PREFECT_SERVER_API_PORT"]
    return Process("prefect-server",
                   [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                    "--port", port],
                   env, f"http://127.0.0.1:{port}/api/health")


@contextlib.contextmanager
def prefect_server_on_postgres(admin_url: str, name: str = "prefect-pg") -> Iterator[str]:
    """A real ``prefect server start`` on a scratch PostgreSQL database, as in production; yields
    its API URL and drops the database afterwards. Tests and benchmarks use it: a SQLite server
    locks under concurrent runs ("database is locked", prefect-notes.md §4), and a write it loses
    can leave a suspended run without its input schema, so that it can never be resumed.

    ``admin_url`` is a libpq URL of a role that may create databases."""
    import socket
    import tempfile
    import uuid

    import psycopg

    db = f"lienthong_prefect_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    home = tempfile.mkdtemp(prefix="prefect-home-")
    env = {"PREFECT_HOME": home,
           "PREFECT_API_DATABASE_CONNECTION_URL": f"{base}/{db}",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_UI_ENABLED": "false",
           "PREFECT_SERVER_API_HOST": "127.0.0.1", "PREFECT_SERVER_API_PORT": str(port)}
    server = Process(f"{name}-{port}",
                     [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                      "--port", str(port)], env, f"http://127.0.0.1:{port}/api/health")
    try:
        server.start(timeout=120)
        yield f"http://127.0.0.1:{port}/api"
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def agency_simulator(env: Mapping[str, str], port: int = 8710) -> Process:
    return Process("agency-sim",
                   [sys.executable, "-m", "lienthong.cli", "agency-sim", "--port", str(port)],
                   env, f"http://127.0.0.1:{port}/healthz")


def deployments_server(env: Mapping[str, str], health_port: int = 8711) -> Process:
    return Process("serve", [sys.executable, "-m", "infra.deployments"],
                   {**env, "LIENTHONG_SERVE_HEALTH_PORT": str(health_port)},
                   f"http://127.0.0.1:{health_port}/health")


def _alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return not _exited(pid)


def _exited(pid: int) -> bool:
    """A process that has exited but not been reaped (a zombie) is not alive: reap it when it is
    this process's child, else read its state."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _terminate(pid_file: Path, timeout: float = 20.0) -> bool:
    """SIGTERM the recorded process group and wait until it is gone (SIGKILL after ``timeout``)."""
    try:
        pid = int(pid_file.read_text())
        os.killpg(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.time() + timeout
    while _alive(pid_file) and time.time() < deadline:
        time.sleep(0.2)
    if _alive(pid_file):
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def stop_recorded() -> None:
    """Stop every process an earlier command recorded under var/run (``make down``)."""
    run = get_settings().var_dir / "run"
    for pid_file in sorted(run.glob("*.pid")) if run.exists() else []:
        if _terminate(pid_file):
            print(f"stopped {pid_file.stem}")


def stop_recorded_named(*names: str) -> None:
    run = get_settings().var_dir / "run"
    for name in names:
        _terminate(run / f"{name}.pid")


def run_prefect_server_foreground() -> int:
    env = prefect_env()
    print(f"Prefect UI: http://127.0.0.1:{env['PREFECT_SERVER_API_PORT']}  (Ctrl-C to stop)")
    return subprocess.call([sys.executable, "-m", "prefect", "server", "start", "--host",
                            "127.0.0.1", "--port", env["PREFECT_SERVER_API_PORT"]],
                           env={**os.environ, **env})


def gateway(env: Mapping[str, str], port: int = 8720) -> Process:
    return Process("gateway", [sys.executable, "-m", "lienthong.cli", "gateway", "--port", str(port)],
                   env, f"http://127.0.0.1:{port}/healthz")


def relay(env: Mapping[str, str], health_port: int = 8721) -> Process:
    """The inbox relay has no HTTP side; a tiny health endpoint tells the stack it is looping."""
    code = ("import threading,http.server,sys\n"
            "class H(http.server.BaseHTTPRequestHandler):\n"
            " def do_GET(s): s.send_response(200); s.end_headers()\n"
            " def log_message(s,*a): pass\n"
            f"srv=http.server.HTTPServer(('127.0.0.1',{health_port}),H)\n"
            "threading.Thread(target=srv.serve_forever,daemon=True).start()\n"
            "from infra.cli import main; sys.exit(main(['relay']))")
    return Process("relay", [sys.executable, "-c", code], env, f"http://127.0.0.1:{health_port}/health")


def local_agency_secrets() -> str:
    """``LIENTHONG_AGENCY_SECRETS`` for a local stack: the environment's, else secrets generated
    once per checkout under var/secrets (never committed) so that signed webhooks can be tried."""
    if os.environ.get("LIENTHONG_AGENCY_SECRETS"):
        return os.environ["LIENTHONG_AGENCY_SECRETS"]
    import json
    import secrets

    from lienthong.catalog import get_catalog

    path = get_settings().var_dir / "secrets" / "agency-secrets.json"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({code: [secrets.token_hex(32)] for code in get_catalog().agencies}))
        path.chmod(0o600)
    return path.read_text()


def up() -> int:
    """``make up``: the Prefect server, every deployment served, the agency simulator, the webhook
    gateway and its inbox relay, left running in the background (``make down`` stops them)."""
    env = {**prefect_env(), "LIENTHONG_SIM_MODE": os.environ.get("LIENTHONG_SIM_MODE", "realistic"),
           "LIENTHONG_AGENCY_SECRETS": local_agency_secrets(),
           # Operators steer this stack from the UI: catalog approvals wait for a person's decision.
           "LIENTHONG_APPROVAL_POLICY": os.environ.get("LIENTHONG_APPROVAL_POLICY", "operator")}
    os.environ.update(env)
    for make in (prefect_server, agency_simulator, deployments_server, gateway, relay):
        process = make(env)
        process.start(timeout=150)
        state = "started" if process.popen else "already running"
        print(f"{process.name:<16} {state:<16} {process.health_url}  log: {process.log_path}")
    print(f"Prefect UI: http://127.0.0.1:{env['PREFECT_SERVER_API_PORT']}")
    print(f"Webhook gateway: http://127.0.0.1:8720/docs  (agency secrets: {get_settings().var_dir}/secrets/)")
    return 0


if __name__ == "__main__":
    import sys as _sys

    _sys.exit(up() if _sys.argv[1:] == ["up"] else (stop_recorded() or 0))
