"""The embedded local stack: a Prefect server on SQLite under ./var, the agency simulator, the
deployments served, the webhook gateway and its relay. Used by ``make demo`` / ``lienthong demo``
and ``make up`` (``make down`` stops it); the processes are :class:`infra.processes.Process`.

Each process logs to ``var/logs/<name>.log`` and records its pid in ``var/run/<name>.pid`` so that
``make down`` can stop what an earlier command left running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from infra import processes
from infra.processes import Process, Stack, python
from lienthong.settings import get_settings

__all__ = ["Process", "Stack", "agency_simulator", "deployments_server", "gateway", "local_agency_secrets",
           "prefect_env", "prefect_server", "relay", "stop_recorded", "stop_recorded_named", "up"]

PREFECT_PORT = int(os.environ.get("LIENTHONG_PREFECT_PORT", "4200"))


def prefect_env(var_dir: Path | None = None, port: int = PREFECT_PORT) -> dict[str, str]:
    """Environment of a local Prefect server (UI on) whose database and home live under ./var/prefect."""
    home = (var_dir or get_settings().var_dir) / "prefect"
    return processes.prefect_server_env(home, port, f"sqlite+aiosqlite:///{home / 'prefect.db'}", ui=True)


def _logs() -> Path:
    return get_settings().var_dir / "logs"


def _run() -> Path:
    return get_settings().var_dir / "run"


def local_process(name: str, argv: list[str], env: Mapping[str, str], health: str) -> Process:
    """A process of this checkout's stack: logs under var/logs, pid under var/run."""
    return Process(name, argv, env, health=health, log_dir=_logs(), run_dir=_run())


def prefect_server(env: Mapping[str, str]) -> Process:
    return processes.prefect_server(env, log_dir=_logs(), run_dir=_run())


def agency_simulator(env: Mapping[str, str], port: int = 8710) -> Process:
    return local_process("agency-sim", python("-m", "lienthong.cli", "agency-sim", "--port", str(port)),
                         env, f"http://127.0.0.1:{port}/healthz")


def deployments_server(env: Mapping[str, str], health_port: int = 8711) -> Process:
    return local_process("serve", python("-m", "infra.deployments"),
                         {**env, "LIENTHONG_SERVE_HEALTH_PORT": str(health_port)},
                         f"http://127.0.0.1:{health_port}/health")


def gateway(env: Mapping[str, str], port: int = 8720) -> Process:
    return local_process("gateway", python("-m", "lienthong.cli", "gateway", "--port", str(port)),
                         env, f"http://127.0.0.1:{port}/healthz")


def relay_argv(health_port: int, *relay_args: str) -> list[str]:
    """The inbox relay has no HTTP side; a tiny health endpoint tells a stack it is looping."""
    code = ("import threading,http.server,sys\n"
            "class H(http.server.BaseHTTPRequestHandler):\n"
            " def do_GET(s): s.send_response(200); s.end_headers()\n"
            " def log_message(s,*a): pass\n"
            f"srv=http.server.HTTPServer(('127.0.0.1',{health_port}),H)\n"
            "threading.Thread(target=srv.serve_forever,daemon=True).start()\n"
            f"from infra.cli import main; sys.exit(main({['relay', *relay_args]!r}))")
    return python("-c", code)


def relay(env: Mapping[str, str], health_port: int = 8721) -> Process:
    return local_process("relay", relay_argv(health_port), env, f"http://127.0.0.1:{health_port}/health")


def stop_recorded() -> None:
    """Stop every process an earlier command recorded under var/run (``make down``)."""
    for name in processes.stop_recorded(_run()):
        print(f"stopped {name}")


def stop_recorded_named(*names: str) -> None:
    processes.stop_recorded(_run(), names)


def run_prefect_server_foreground() -> int:
    """``make ui``: the local Prefect server in the foreground of the terminal."""
    env = prefect_env()
    print(f"Prefect UI: http://127.0.0.1:{env['PREFECT_SERVER_API_PORT']}  (Ctrl-C to stop)")
    return subprocess.call(prefect_server(env).argv, env={**os.environ, **env})


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
        state = "already running" if process.reused else "started"
        print(f"{process.name:<16} {state:<16} {process.health_url}  log: {process.log_path}")
    print(f"Prefect UI: http://127.0.0.1:{env['PREFECT_SERVER_API_PORT']}")
    print(f"Webhook gateway: http://127.0.0.1:8720/docs  (agency secrets: {get_settings().var_dir}/secrets/)")
    return 0


if __name__ == "__main__":
    sys.exit(up() if sys.argv[1:] == ["up"] else (stop_recorded() or 0))
