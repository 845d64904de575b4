"""What a run of the stack costs, by part: CPU (core-seconds, from psutil), Prefect REST calls by
route (from the proxy's access log) and Prefect events (counted in the Prefect database).

CPU of a part is the CPU of its processes and of every descendant they reaped: a process's own
user + system time plus its ``children_*`` times, which the kernel adds up for each child waited
for (recursively). Summing that over the processes alive at a moment counts each finished flow-run
process once, in the worker (or fork server) that reaped it. PostgreSQL's backends are children of
the machine's server, shared with others: they are sampled while alive (every ``every`` seconds),
each by the database its command line names, and a backend's CPU after its last sample is lost
(the report says how many backends were seen, to bound it).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

# Part of the stack each process of infra/prod.py belongs to, by the start of its short name.
PARTS = (
    ("prefect-api", "Prefect API"),
    ("prefect-services", "Prefect services"),
    ("worker", "workers and their flow runs"),
    ("gateway", "gateway"),
    ("relay", "relay"),
    ("agency-sim", "simulators"),
    ("portal-sim", "simulators"),
    ("s3", "S3 endpoint (moto)"),
    ("redis", "Redis"),
    ("nginx", "reverse proxy (nginx)"),
)


def part_of(name: str) -> str:
    return next((part for prefix, part in PARTS if name.startswith(prefix)), name)


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and of every descendant alive or reaped (see the module doc)."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def own_cpu() -> float:
    """This process's CPU, with the children it reaped (tesseract, for the anchor)."""
    t = psutil.Process().cpu_times()
    return t.user + t.system + t.children_user + t.children_system


# "postgres: [15/main: ]<user> <database> <client> <activity>", padded with empty arguments.
_BACKEND = re.compile(r"^postgres: (?:\S+: )?\S+ (\S+) \S+\(")


class BackendSampler(threading.Thread):
    """CPU of the PostgreSQL backends serving the named databases, by database. ``mark()`` starts
    a window (what each live backend had used so far is subtracted); ``window()`` returns the CPU
    used since, by database."""

    def __init__(self, databases: Iterable[str], every: float = 0.5) -> None:
        super().__init__(daemon=True, name="pg-backend-sampler")
        self.databases, self.every = set(databases), every
        self.last: dict[tuple[int, float], tuple[str, float]] = {}  # (pid, started) -> (db, cpu)
        self.base: dict[tuple[int, float], float] = {}
        self.seen_in_window: set[tuple[int, float]] = set()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.spent = 0.0  # this thread's own CPU: the anchor, measured in this process, subtracts it

    def sample(self) -> None:
        for p in psutil.process_iter(["cmdline", "create_time", "cpu_times"]):
            cmd = p.info["cmdline"] or []
            m = _BACKEND.match(cmd[0]) if cmd else None
            if m is None or m.group(1) not in self.databases or p.info["cpu_times"] is None:
                continue
            t = p.info["cpu_times"]
            key = (p.pid, p.info["create_time"])
            with self.lock:
                self.last[key] = (m.group(1), t.user + t.system)
                self.seen_in_window.add(key)

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.thread_time()
            with contextlib.suppress(psutil.Error):
                self.sample()
            self.spent += time.thread_time() - t
            self.stop.wait(self.every)

    def mark(self) -> None:
        self.sample()
        with self.lock:
            self.base = {k: cpu for k, (_db, cpu) in self.last.items()}
            self.seen_in_window = {k for k, (db, _cpu) in self.last.items() if db in self.databases}

    def window(self) -> tuple[dict[str, float], int]:
        """CPU by database since ``mark()``, and how many backends were seen in the window."""
        self.sample()
        out: dict[str, float] = dict.fromkeys(self.databases, 0.0)
        with self.lock:
            for key in self.seen_in_window:
                db, cpu = self.last[key]
                if db in out:
                    out[db] += cpu - self.base.get(key, 0.0)
            return out, len(self.seen_in_window)


@dataclass
class CpuWindow:
    """CPU of each named process tree between ``start()`` and ``stop()``. ``pids`` is called at
    both ends (a restarted process would have a new pid)."""

    pids: Callable[[], Mapping[str, int | None]]
    at_start: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        return {name: tree_cpu(pid) for name, pid in self.pids().items() if pid is not None}

    def start(self) -> None:
        self.at_start = self._now()

    def stop(self) -> dict[str, float]:
        end = self._now()
        self.used = {name: end[name] - self.at_start.get(name, 0.0) for name in end}
        return self.used


def by_part(used: Mapping[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, cpu in used.items():
        out[part_of(name)] = out.get(part_of(name), 0.0) + cpu
    return out


# --- Prefect REST calls -------------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def route_of(method: str, uri: str) -> str:
    """``POST /api/flow_runs/<uuid>/set_state`` -> ``POST /flow_runs/{id}/set_state``."""
    path = _UUID.sub("{id}", uri.split("?", 1)[0])
    path = path[4:] if path.startswith("/api/") else path
    # Names in paths (deployments by name, variables, blocks) are not routes of their own.
    path = re.sub(r"^/deployments/name/[^/]+/[^/]+$", "/deployments/name/{flow}/{deployment}", path)
    path = re.sub(r"^/(variables|block_documents|artifacts)/name/[^/]+$", r"/\1/name/{name}", path)
    return f"{method} {path}"


def access_log_routes(path: Path, since: float, until: float) -> Counter[str]:
    """Calls by route in the proxy's log (format ``routes`` of infra/nginx/local.conf.in:
    ``$msec $request_method $uri $status $request_time``) whose time is in [since, until]."""
    out: Counter[str] = Counter()
    if not path.exists():
        return out
    with path.open(encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            parts = raw.split()
            if len(parts) < 4:
                continue
            try:
                at = float(parts[0])
            except ValueError:
                continue
            if since <= at <= until:
                out[route_of(parts[1], parts[2])] += 1
    return out


# --- Prefect events -----------------------------------------------------------------------------


def prefect_events(dsn: str) -> Counter[str]:
    """Events stored by the Prefect server (its ``events`` table), by event name."""
    import psycopg

    with psycopg.connect(dsn, connect_timeout=10) as conn:
        rows = conn.execute("SELECT event, count(*) FROM events GROUP BY event").fetchall()
    return Counter({name: int(n) for name, n in rows})


def wait_events_settled(dsn: str, quiet: float = 6.0, timeout: float = 60.0) -> Counter[str]:
    """The event counts once the persister has written what was sent (no change for ``quiet`` s)."""
    deadline, last, since = time.time() + timeout, prefect_events(dsn), time.time()
    while time.time() < deadline:
        time.sleep(1.0)
        now = prefect_events(dsn)
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet:
            break
    return last
