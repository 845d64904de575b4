"""The flow-run command of the work pool: run ``python -m prefect.engine`` as a fork of the warm
fork server (``infra/forkserver.py``), or, when there is none, exec it directly.

Standard library only, and nothing heavy: this process starts for every flow run and resume.
The worker watches this process as it would the engine itself: signals sent to it are relayed to
the forked run, and it exits with the run's status (a run killed by a signal kills this process
with the same signal).

    python -m infra.forkclient [-m MODULE] [ARGS...]      (MODULE defaults to prefect.engine)
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import sys
from typing import BinaryIO

RELAYED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def _exec_directly(module: str, args: list[str]) -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, RELAYED)  # a mask survives exec
    os.execv(sys.executable, [sys.executable, "-m", module, *args])


def _read_line(stream: BinaryIO) -> dict[str, object] | None:
    """The server's next message (one JSON object per line), or None if it closed the socket."""
    line = stream.readline()
    return json.loads(line) if line.endswith(b"\n") else None


def main(argv: list[str]) -> int:
    module, args = "prefect.engine", argv
    if argv[:1] == ["-m"] and len(argv) > 1:
        module, args = argv[1], argv[2:]
    # Held until the run's pid is known: a signal that came earlier would kill this process alone.
    signal.pthread_sigmask(signal.SIG_BLOCK, RELAYED)
    path = os.environ.get("LIENTHONG_FORKSERVER_SOCKET")
    if not path:
        _exec_directly(module, args)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)  # type: ignore[arg-type]
    except OSError as exc:
        print(f"forkclient: no fork server at {path} ({exc.strerror}); starting the run directly",
              file=sys.stderr, flush=True)
        sock.close()
        _exec_directly(module, args)
    body = json.dumps({"module": module, "args": args, "env": dict(os.environ), "cwd": os.getcwd()}).encode()
    header = struct.pack("!I", len(body))
    socket.send_fds(sock, [header], [0, 1, 2])
    sock.sendall(body)
    answers = sock.makefile("rb")
    answer = _read_line(answers)
    if answer is None or "pid" not in answer:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, RELAYED)
        print(f"forkclient: the fork server refused the run: {answer}", file=sys.stderr, flush=True)
        return 1
    pid = int(answer["pid"])  # type: ignore[call-overload]

    def relay(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for sig in RELAYED:
        signal.signal(sig, relay)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, RELAYED)
    result = _read_line(answers)
    if result is None:  # the server died: its child is lost with it
        print("forkclient: the fork server went away during the run", file=sys.stderr, flush=True)
        return 1
    code = int(result["exit"])  # type: ignore[call-overload]
    if code < 0:  # killed by a signal: die of the same one, as the worker expects
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no handler to reset
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
