"""A worker of the process work pool with its warm fork server beside it (``infra/forkserver.py``).

    python -m infra.worker [--no-forkserver] [--socket PATH] -- <prefect worker start arguments>

Starts the fork server, waits until it listens, then ``prefect worker start`` with
``LIENTHONG_FORKSERVER_SOCKET`` in its environment, so that the flow-run command of the pool's
deployments (``python -m infra.forkclient``) forks warm runs. Both share this process group:
stopping or killing the group stops the worker, the fork server and every run, as it would a
stock worker and its run processes. When the fork server cannot start, the worker starts anyway
and runs start cold (the client falls back to ``python -m prefect.engine``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

READY_TIMEOUT = 180.0  # a cold import of everything on a busy machine


def _wait_listening(sock: Path, server: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        if sock.exists():
            return True
        time.sleep(0.1)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-forkserver", action="store_true",
                    default=os.environ.get("LIENTHONG_FORKSERVER", "1").lower() in ("0", "false", "no", "off"),
                    help="start runs cold (LIENTHONG_FORKSERVER=0)")
    ap.add_argument("--socket", type=Path, default=None,
                    help="the fork server's socket (default: var/run/forkserver-<pid>.sock)")
    ap.add_argument("worker_args", nargs=argparse.REMAINDER, help="arguments of `prefect worker start`")
    args = ap.parse_args(argv)
    worker_args = [a for a in args.worker_args if a != "--"]
    env = dict(os.environ)
    server: subprocess.Popen[bytes] | None = None
    if not args.no_forkserver:
        from infra.forkserver import usable_socket_path
        from lienthong.settings import get_settings

        sock = usable_socket_path(args.socket or get_settings().var_dir / "run" / f"forkserver-{os.getpid()}.sock")
        with contextlib.suppress(FileNotFoundError):  # a killed server's socket: not a sign of life
            sock.unlink()
        server = subprocess.Popen([sys.executable, "-m", "infra.forkserver", "--socket", str(sock)])
        if _wait_listening(sock, server, READY_TIMEOUT):
            env["LIENTHONG_FORKSERVER_SOCKET"] = str(sock)
        else:
            print(f"worker: the fork server did not start (exit {server.poll()}); runs start cold",
                  file=sys.stderr, flush=True)
            env.pop("LIENTHONG_FORKSERVER_SOCKET", None)
    worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", *worker_args], env=env)

    def forward(signum: int, _frame: object) -> None:
        for proc in (worker, server):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    code = worker.wait()
    if server is not None and server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
