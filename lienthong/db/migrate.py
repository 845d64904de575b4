"""Run the Alembic migrations programmatically (``lienthong db upgrade`` and the test fixtures)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.exc import OperationalError, ProgrammingError

from lienthong.db import get_engine
from lienthong.errors import ExitCode, LienThongError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", (url or str(get_engine().url)).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "heads") -> None:
    """Bring the schema to the newest revision of every branch (features add their own heads)."""
    engine = get_engine(url)
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current(url: str | None = None) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads())


# One line, both languages: what an operator reads when a command finds the schema behind.
OUTDATED = ("Lược đồ cơ sở dữ liệu chưa được cập nhật, hãy chạy `lienthong db upgrade` / "
            "the database schema is out of date: run `lienthong db upgrade`")


class SchemaNotCurrent(LienThongError):
    """The database lacks migrations and this command will not apply them by itself."""

    code = "schema_not_current"
    exit_code = ExitCode.CONFIG


def schema_heads() -> set[str]:
    """The newest revision of every branch of the migrations shipped with this code."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def ensure_schema(url: str | None = None) -> str:
    """Make sure the schema is current before a command touches the database.

    A database that has no schema yet (a fresh install) and a local SQLite file are brought up to
    date here: ``lienthong import-history`` on a new machine just works. A server database that
    already has an older schema is not migrated behind its operator's back: the command stops
    with one line saying what to run. Returns what was done: ``current``, ``created`` or
    ``upgraded``."""
    engine = get_engine(url)
    try:
        have = current(url)
    except OperationalError as exc:  # unreachable: the command's own error handling says so
        raise SchemaNotCurrent(
            f"cannot reach the database to check its schema ({type(exc.orig).__name__})",
            message_vi="Không kết nối được cơ sở dữ liệu để kiểm tra lược đồ.",
        ) from exc
    want = schema_heads()
    if have >= want:
        return "current"
    if not have or engine.dialect.name == "sqlite":
        upgrade(url)
        return "created" if not have else "upgraded"
    raise SchemaNotCurrent(OUTDATED, message_vi=OUTDATED)


def is_missing_schema(exc: BaseException) -> bool:
    """A statement failed because a table or column of the schema is missing (migrations not run)."""
    text = str(getattr(exc, "orig", exc)).lower()
    return isinstance(exc, OperationalError | ProgrammingError) and any(
        marker in text for marker in ("no such table", "no such column", "does not exist")
    )
