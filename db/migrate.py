"""Schema migrations, configured in code: `upgrade_to_head()` is what the app, the worker and
`python -m db upgrade` call at start. Safe to call from several processes at once: the
upgrade runs inside one write transaction (SQLite `BEGIN IMMEDIATE`, PostgreSQL an advisory
lock), so a second caller waits and then finds the schema already at head."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from db.session import _IMMEDIATE, is_sqlite, make_engine
from db.settings import get_settings

log = logging.getLogger(__name__)

DB_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = DB_DIR / "migrations"
_PG_LOCK_KEY = 0x4C695354  # "LiST": pg_advisory_xact_lock key serialising upgrades


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config for `url` (default: the settings' database URL), without logging
    set-up (the caller's logging stays as it is)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().database_url).replace("%", "%%"))
    cfg.attributes["configure_logging"] = False
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade_to_head(url: str | None = None) -> str | None:
    """Bring the database at `url` (default: settings) to the newest schema; returns the
    revision. Idempotent and quick when already at head."""
    url = url or get_settings().database_url
    head = head_revision()
    engine = make_engine(url)
    try:
        if current_revision(engine) == head:
            return head
        cfg = alembic_config(url)
        with engine.connect() as conn:
            if is_sqlite(engine):
                conn = conn.execution_options(**{_IMMEDIATE: True})
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
                before = MigrationContext.configure(conn).get_current_revision()
                if before != head:
                    log.info("migrating database from %s to %s", before or "empty", head)
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
        return head
    finally:
        engine.dispose()
