"""Run the Alembic migrations programmatically (``lienthong db upgrade`` and the test fixtures)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from lienthong.db import get_engine

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
