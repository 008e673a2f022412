"""One engine and session factory per process, and the write-transaction helper.

SQLite notes (the default deployment):
- Every connection runs in WAL mode with a busy timeout and foreign keys on, so readers
  never block the writer and the writer never blocks readers.
- pysqlite's own transaction handling is switched off; the "begin" hook below emits
  `BEGIN` itself. A transaction that first reads and then writes must take the write lock
  up front (`BEGIN IMMEDIATE`), otherwise SQLite answers "database is locked" at once
  (without waiting for the busy timeout) when another connection wrote in between.
  `begin_write(session)` does that; the queue (db/jobs.py) and the worker use it for every
  write, and app code that reads-then-writes should too.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from db.settings import get_settings

SQLITE_BUSY_TIMEOUT_MS = 30_000
_IMMEDIATE = "list_sqlite_immediate"  # execution option read by the "begin" hook


def is_sqlite(bind) -> bool:
    return bind.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, a busy timeout and foreign keys on every connection."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    db_path = url.split("///", 1)[-1]
    if db_path and db_path != ":memory:":
        Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # pysqlite: no implicit BEGIN; the hook below does it
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _enable_wal(cur)
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _enable_wal(cur, attempts: int = 200) -> None:
    """WAL is a property of the database file (set once, then persistent). Switching to it
    needs an exclusive lock and does not wait on the busy timeout, so two processes opening
    a brand-new file at the same time retry here instead of failing."""
    for _ in range(attempts):
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            time.sleep(0.05)
    raise sqlite3.OperationalError("could not switch the SQLite database to WAL mode (locked)")


def begin_write(session: Session) -> None:
    """Start the session's next transaction holding the write lock (SQLite `BEGIN IMMEDIATE`;
    a plain transaction elsewhere). A transaction already open in the session is committed
    first, so call this at the start of a unit of work that writes."""
    if session.in_transaction():
        session.commit()
    bind = session.get_bind()
    if is_sqlite(bind):
        session.connection(execution_options={_IMMEDIATE: True})
    else:
        session.connection()


@contextmanager
def write_transaction(session: Session) -> Iterator[Session]:
    """`with write_transaction(session): ...` = one short write transaction: begins with the
    write lock, commits at the end, rolls back on an exception."""
    begin_write(session)
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    session.commit()


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for `url` (default: the settings' database URL)."""
    return _engine_for(url or get_settings().database_url)


@lru_cache(maxsize=4)
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    return _factory_for(url or get_settings().database_url)


@lru_cache(maxsize=4)
def _factory_for(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=_engine_for(url), expire_on_commit=False)


def get_session(url: str | None = None) -> Session:
    """A new session on the process-wide engine (caller closes it, e.g. `with get_session()`)."""
    return session_factory(url)()
