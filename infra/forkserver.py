"""A warm fork server for flow-run processes: Prefect, the flows, pandas and Great Expectations are
imported once, and every flow run (and every resume of a suspended one) starts as a fork of that
warm interpreter instead of a fresh ``python -m prefect.engine`` that imports them all again.

Why: a flow-run process spends ~5 s of CPU importing before it does any work, and a dossier whose
agencies answer asynchronously starts one process per wave of steps. On two cores that start-up,
not the work, bounded the production stack (``bench/province_day.py``).

How it fits the stock process worker (nothing of Prefect is patched):

- the work pool's deployments run the command ``python -m infra.forkclient`` instead of
  ``python -m prefect.engine`` (``infra.prod.work_pool_deployments``);
- the client (stdlib only, ~30 ms) connects to this server's Unix socket, hands over its stdin,
  stdout and stderr, environment, working directory and arguments, and waits;
- the server forks; the child takes the client's descriptors, environment and directory, refreshes
  Prefect's settings from that environment, and runs ``prefect.engine`` as ``__main__``;
- the client relays signals to the child (the worker's SIGTERM on cancellation) and exits with the
  child's exit status, so that the worker sees exactly what it would have seen;
- a client that dies (a SIGKILLed worker) closes its socket: the server kills its child, as the
  kernel would have killed a process group, and Prefect's zombie detection takes it from there;
- with no server (``LIENTHONG_FORKSERVER_SOCKET`` unset or nothing listening) the client execs
  ``python -m prefect.engine`` itself: the fork server is an optimisation, never a dependency.

The server is single-threaded (forking a process with threads is unsafe): a selector over the
listening socket, the clients' sockets and a self-pipe woken by SIGCHLD.

    python -m infra.forkserver --socket /run/lienthong/forkserver.sock [--preload mod,mod]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# What a flow run of this project imports: the deployments' modules and their heavy dependencies.
DEFAULT_PRELOAD = (
    "prefect.flow_engine",
    "prefect.task_engine",
    "flows.procedure",
    "flows.digitize_backlog",
    "flows.deadline_sweep",
    "flows.portal_sync",
    "flows.vault_sweep",
    "great_expectations",
    "great_expectations.expectations",
    "boto3",
    "botocore.client",
)
MAX_REQUEST = 4 << 20  # an environment, arguments and a directory: far less than this
HEADER = struct.Struct("!I")


class ProtocolError(Exception):
    """A client sent something that is not a request."""


@dataclass(frozen=True)
class Request:
    """What a client hands over: run ``python -m <module> <args>`` in ``cwd`` with ``env``."""

    module: str
    args: list[str]
    env: dict[str, str]
    cwd: str

    @classmethod
    def parse(cls, raw: bytes) -> Request:
        try:
            data = json.loads(raw)
            req = cls(str(data["module"]), [str(a) for a in data["args"]],
                      {str(k): str(v) for k, v in data["env"].items()}, str(data["cwd"]))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ProtocolError(f"not a fork request: {exc}") from exc
        if not req.module.replace(".", "").replace("_", "").isalnum():
            raise ProtocolError(f"not a module name: {req.module!r}")
        return req


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ProtocolError("connection closed mid-message")
        buf += chunk
    return bytes(buf)


def read_request(conn: socket.socket) -> tuple[Request, list[int]]:
    """The request and the three descriptors (stdin, stdout, stderr) that came with its header."""
    head, fds, _flags, _addr = socket.recv_fds(conn, HEADER.size, 3)
    try:
        if len(head) < HEADER.size:
            head += recv_exact(conn, HEADER.size - len(head))
        (size,) = HEADER.unpack(head)
        if size > MAX_REQUEST:
            raise ProtocolError(f"request of {size} bytes")
        if len(fds) != 3:
            raise ProtocolError(f"{len(fds)} descriptors, expected 3")
        return Request.parse(recv_exact(conn, size)), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def preload(modules: Sequence[str]) -> list[str]:
    """Import ``modules``; a missing optional one is skipped (and named), not fatal."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _child(req: Request, fds: list[int], keep_closed: list[int]) -> None:
    """In the forked child: become the client's process and run the module as ``__main__``.
    Never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        for fd in keep_closed:
            with contextlib.suppress(OSError):
                os.close(fd)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        # Python's own stdio objects were built on descriptors 0-2, which now are the client's.
        os.chdir(req.cwd)
        os.environ.clear()
        os.environ.update(req.env)
        sys.argv = [req.module, *req.args]
        if sys.path:  # `python -m` puts the working directory first
            sys.path[0] = req.cwd
        _refresh_after_fork()
        import runpy
        import warnings

        # The module is usually imported already (``prefect`` imports ``prefect.engine``): running
        # it as ``__main__`` is what ``python -m`` would do, so runpy's warning about that is noise.
        warnings.filterwarnings("ignore", message=".*found in sys.modules after import of package",
                                category=RuntimeWarning)

        runpy.run_module(req.module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException:
        with contextlib.suppress(BaseException):
            sys.excepthook(*sys.exc_info())
        code = 1
    finally:
        code = _interpreter_exit(code)
        os._exit(code)


def _exit_code(value: object) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value & 0xFF
    with contextlib.suppress(Exception):
        print(value, file=sys.stderr)
    return 1


def _interpreter_exit(code: int) -> int:
    """What a normal interpreter does on its way out: join non-daemon threads, run atexit
    handlers, flush the standard streams."""
    import atexit

    # An exit path: nothing is left to report a failure to.
    with contextlib.suppress(BaseException):
        threading._shutdown()  # type: ignore[attr-defined]  # joins non-daemon threads
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    return code


def _refresh_after_fork() -> None:
    """State a fresh interpreter would have built from this environment, rebuilt in the child."""
    import random

    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "prefect.context" in sys.modules:
        import prefect.context
        import prefect.logging.configuration

        prefect.context.refresh_global_settings_context()
        prefect.logging.configuration.PROCESS_LOGGING_CONFIG = {}
        prefect.logging.configuration.setup_logging()
    if "lienthong.settings" in sys.modules:
        sys.modules["lienthong.settings"].reset_settings()


class Server:
    """Accepts fork requests on ``path``; one child per connection, reaped on SIGCHLD."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.children: dict[int, socket.socket] = {}  # pid -> the client's connection
        self.by_conn: dict[socket.socket, int] = {}
        self.stopping = False
        self.started = 0

    def serve(self, ready: callable | None = None) -> int:  # type: ignore[valid-type]
        if threading.active_count() != 1:
            names = [t.name for t in threading.enumerate()]
            raise RuntimeError(f"a fork server must not run threads before forking; found {names}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o600)
        listener.listen(128)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        sel = selectors.DefaultSelector()
        sel.register(listener, selectors.EVENT_READ, "accept")
        sel.register(wake_r, selectors.EVENT_READ, "wake")
        # Objects built so far are never freed: keep the collector from touching (and so copying)
        # their pages in every child.
        gc.collect()
        gc.freeze()
        print(f"forkserver: listening on {self.path} (pid {os.getpid()})", flush=True)
        if ready is not None:
            ready()
        try:
            while not self.stopping or self.children:
                for key, _ in sel.select(timeout=1.0):
                    if key.data == "accept":
                        self._accept(listener, sel, [listener.fileno(), wake_r, wake_w])
                    elif key.data == "wake":
                        with contextlib.suppress(BlockingIOError):
                            while os.read(wake_r, 512):
                                pass
                    else:
                        self._client_readable(key.fileobj, sel)  # type: ignore[arg-type]
                self._reap(sel)
                if self.stopping and listener.fileno() >= 0:
                    sel.unregister(listener)
                    listener.close()
                    for pid in list(self.children):
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGTERM)
        finally:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        print(f"forkserver: stopped after {self.started} runs", flush=True)
        return 0

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def _accept(self, listener: socket.socket, sel: selectors.BaseSelector, own_fds: list[int]) -> None:
        conn, _ = listener.accept()
        conn.settimeout(10)
        try:
            req, fds = read_request(conn)
        except (ProtocolError, OSError) as exc:
            print(f"forkserver: refused a request: {exc}", file=sys.stderr, flush=True)
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"error": str(exc)}).encode() + b"\n")
            conn.close()
            return
        others = [c.fileno() for c in self.by_conn]
        pid = os.fork()
        if pid == 0:
            sel.close()
            _child(req, fds, [*own_fds, *others, conn.fileno()])
        for fd in fds:
            os.close(fd)
        self.started += 1
        print(f"forkserver: started {req.module} {' '.join(req.args)} as pid {pid}", flush=True)
        self.children[pid] = conn
        self.by_conn[conn] = pid
        conn.setblocking(True)
        try:
            conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        except OSError:  # the client is already gone: so goes its run
            self._orphaned(conn, sel, registered=False)
            return
        sel.register(conn, selectors.EVENT_READ, "client")

    def _client_readable(self, conn: socket.socket, sel: selectors.BaseSelector) -> None:
        try:
            data = conn.recv(64)
        except OSError:
            data = b""
        if not data:  # the client died before its child: kill the child, as its group would have been
            self._orphaned(conn, sel, registered=True)

    def _orphaned(self, conn: socket.socket, sel: selectors.BaseSelector, *, registered: bool) -> None:
        pid = self.by_conn.pop(conn, None)
        if registered:
            sel.unregister(conn)
        conn.close()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self.children[pid] = None  # type: ignore[assignment]  # still to be reaped

    def _reap(self, sel: selectors.BaseSelector) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.children.clear()
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            print(f"forkserver: pid {pid} exited with {os.waitstatus_to_exitcode(status)}", flush=True)
            if conn is None:
                continue
            self.by_conn.pop(conn, None)
            with contextlib.suppress(KeyError, ValueError):
                sel.unregister(conn)
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
            conn.close()


def usable_socket_path(preferred: Path) -> Path:
    """``preferred``, or a short stand-in under the temporary directory when it is longer than a
    Unix socket address may be (108 bytes on Linux; test directories easily exceed it)."""
    preferred = preferred.resolve()
    if len(os.fsencode(preferred)) < 100:
        return preferred
    import hashlib
    import tempfile

    digest = hashlib.sha1(os.fsencode(preferred)).hexdigest()[:16]  # noqa: S324  # a name, not a secret
    return Path(tempfile.gettempdir()) / f"lienthong-fs-{digest}.sock"


def default_socket() -> Path:
    return Path(os.environ.get("LIENTHONG_FORKSERVER_SOCKET") or Path("var") / "run" / "forkserver.sock")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--socket", type=Path, default=None, help="Unix socket (LIENTHONG_FORKSERVER_SOCKET)")
    ap.add_argument("--preload", default=os.environ.get("LIENTHONG_FORKSERVER_PRELOAD", ",".join(DEFAULT_PRELOAD)),
                    help="modules imported once, before any fork (comma-separated)")
    args = ap.parse_args(argv)
    path = usable_socket_path(args.socket or default_socket())
    t0 = time.perf_counter()
    modules = [m for m in args.preload.split(",") if m.strip()]
    missing = preload([m.strip() for m in modules])
    print(f"forkserver: {len(modules) - len(missing)} modules preloaded in {time.perf_counter() - t0:.1f} s"
          + (f" (not found: {', '.join(missing)})" if missing else ""), flush=True)
    return Server(path).serve()


if __name__ == "__main__":
    sys.exit(main())
