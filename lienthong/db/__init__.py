"""Storage: SQLAlchemy 2 engine and sessions; SQLite under ./var by default, PostgreSQL by URL."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_engines: dict[str, Engine] = {}
_lock = threading.Lock()
log = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds between attempts while the database is unreachable: a PostgreSQL restart or fail-over
# refuses or cuts connections for a while. Work that touches the database outlasts ~90 s of it.
OUTAGE_DELAYS: tuple[float, ...] = (1, 2, 4, 8, 15, 30, 30)


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # pool_pre_ping: a pooled connection the server dropped (restart, fail-over, idle timeout) is
    # found and replaced at checkout, instead of failing the statement it was handed out for.
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def get_engine(url: str | None = None) -> Engine:
    from lienthong.settings import get_settings

    url = url or get_settings().db_url
    with _lock:
        if url not in _engines:
            _engines[url] = _create(url)
        return _engines[url]


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    factory = sessionmaker(get_engine(url), expire_on_commit=False)
    with factory() as session, session.begin():
        yield session


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def is_outage(exc: BaseException) -> bool:
    """The database was unreachable or cut the connection (worth another try), as opposed to a bad
    statement or a violated constraint (which another try repeats)."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def outlast_outage(work: Callable[[], T], delays: Sequence[float] = OUTAGE_DELAYS) -> T:
    """``work()``, tried again after each delay while the database is unreachable. Only for work
    that is whole in one transaction (a read, or a ``session_scope`` that rolled back)."""
    from lienthong.retry import call_with_retries, fixed

    def said(exc: BaseException, delay: float) -> None:
        log.warning("database unreachable (%s); trying again in %s s", type(exc).__name__, delay)

    return call_with_retries(
        work, tries=len(delays) + 1, wait=fixed(delays), when=is_outage, sleep=time.sleep, on_retry=said
    )
