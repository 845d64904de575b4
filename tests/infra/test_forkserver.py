"""The warm fork server (infra/forkserver.py) and its client: a run forked from the server behaves,
for the worker that watches the client, like the process the client stands in for: same output
streams, environment, directory, exit status, signals; and nothing outlives a killed client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = ["-m", "tests.infra.forkprobe"]


def _env(sock: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "LIENTHONG_FORKSERVER_SOCKET": str(sock), **extra}


def _wait_for(predicate, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still "exists" until reaped; the fork server reaps its children at once (and the
    # process may be gone between the two looks).
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(") ")[-1][:1] != "Z"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    sock = tmp_path / "run" / "fs.sock"
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "infra.forkserver", "--socket", str(sock),
                             "--preload", "tests.infra.forkpreload,no_such_module_here"],
                            env=_env(sock), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for(lambda: sock.exists() or proc.poll() is not None)
        assert proc.poll() is None, (tmp_path / "server.log").read_text()
        yield proc, sock
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        log.close()


def _client(sock: Path, *args: str, cwd: Path = ROOT, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "infra.forkclient", *PROBE, *args], env=_env(sock, **env),
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_forked_run_has_the_clients_streams_environment_directory_and_exit_status(
        server: tuple[subprocess.Popen[bytes], Path], tmp_path: Path) -> None:
    proc, sock = server
    client = _client(sock, "report", "7", cwd=tmp_path, FORKPROBE="from the worker")
    out, err = client.communicate(timeout=60)
    assert client.returncode == 7, err
    seen = json.loads(out)
    assert seen["ppid"] == proc.pid  # a child of the warm server, not a fresh interpreter
    assert seen["preloaded"] and seen["marker"] == f"loaded in {proc.pid}"
    assert seen["probe"] == "from the worker"
    assert seen["cwd"] == str(tmp_path)
    assert seen["argv"] == ["report", "7"]
    assert "to stderr" in err


def test_an_exception_in_the_run_prints_its_traceback_and_exits_1(
        server: tuple[subprocess.Popen[bytes], Path]) -> None:
    _, sock = server
    client = _client(sock, "raise")
    _, err = client.communicate(timeout=60)
    assert client.returncode == 1
    assert "RuntimeError: probe failed on purpose" in err


def test_sigterm_to_the_client_reaches_the_run(server: tuple[subprocess.Popen[bytes], Path]) -> None:
    _, sock = server
    client = _client(sock, "wait")
    assert client.stdout is not None
    json.loads(client.stdout.readline())  # the run is up and has its handler
    client.send_signal(signal.SIGTERM)
    out, _ = client.communicate(timeout=60)
    assert "got signal 15" in out
    assert client.returncode == 143


def test_a_run_killed_by_a_signal_kills_the_client_with_the_same_signal(
        server: tuple[subprocess.Popen[bytes], Path]) -> None:
    _, sock = server
    client = _client(sock, "sleep")
    assert client.stdout is not None
    pid = json.loads(client.stdout.readline())["pid"]
    os.kill(pid, signal.SIGKILL)
    client.communicate(timeout=60)
    assert client.returncode == -signal.SIGKILL


def test_a_killed_client_takes_its_run_with_it(server: tuple[subprocess.Popen[bytes], Path]) -> None:
    """A SIGKILLed worker kills its flow-run processes' group; the forked run is not in that group,
    so the server kills it when the client's connection drops."""
    proc, sock = server
    client = _client(sock, "sleep")
    assert client.stdout is not None
    pid = json.loads(client.stdout.readline())["pid"]
    client.kill()
    client.wait(timeout=30)
    _wait_for(lambda: not _alive(pid))
    assert proc.poll() is None  # the server carries on


def test_runs_at_once_are_independent(server: tuple[subprocess.Popen[bytes], Path]) -> None:
    _, sock = server

    def one(i: int) -> tuple[int, dict[str, object]]:
        client = _client(sock, "report", str(i), FORKPROBE=f"run {i}")
        out, _ = client.communicate(timeout=60)
        return client.returncode, json.loads(out)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, range(12)))
    assert [code for code, _ in results] == list(range(12))
    assert [seen["probe"] for _, seen in results] == [f"run {i}" for i in range(12)]
    assert len({seen["pid"] for _, seen in results}) == 12


def test_a_malformed_request_is_refused_and_the_server_carries_on(
        server: tuple[subprocess.Popen[bytes], Path]) -> None:
    import socket
    import struct

    proc, sock = server
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        body = b"not json"
        socket.send_fds(s, [struct.pack("!I", len(body))], [0, 1, 2])
        s.sendall(body)
        answer = json.loads(s.makefile().readline())
    assert "error" in answer
    client = _client(sock, "report", "0")
    client.communicate(timeout=60)
    assert client.returncode == 0 and proc.poll() is None


def test_without_a_server_the_client_runs_the_module_itself(tmp_path: Path) -> None:
    client = _client(tmp_path / "nobody-listens.sock", "report", "5")
    out, err = client.communicate(timeout=60)
    assert client.returncode == 5
    seen = json.loads(out)
    assert seen["ppid"] == os.getpid() and not seen["preloaded"]
    assert "starting the run directly" in err


def test_the_server_stops_on_sigterm_and_removes_its_socket(
        server: tuple[subprocess.Popen[bytes], Path]) -> None:
    proc, sock = server
    client = _client(sock, "wait")
    assert client.stdout is not None
    json.loads(client.stdout.readline())
    proc.send_signal(signal.SIGTERM)  # runs in progress are asked to stop, and are waited for
    assert proc.wait(timeout=30) == 0
    assert not sock.exists()
    client.communicate(timeout=30)
    assert client.returncode == 143
