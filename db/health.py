"""Is the database usable? Clear answers instead of tracebacks.

`open_database(url)` is what the app and the worker call at start: it checks the database
(for SQLite: the file is a real, undamaged SQLite database in a writable place) and brings
the schema to head. Anything wrong raises `DatabaseUnusable` with a message that says what
happened and what to do; nothing is created, emptied or overwritten on the way.
`explain(exc)` turns a database error met later (the disk filled up, the directory became
read-only) into the same kind of message, or None when it is not such a fault.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from db.settings import safe_url

SQLITE_HEADER = b"SQLite format 3\x00"


class DatabaseUnusable(RuntimeError):
    """The database cannot be used as it is; the message says what to do."""


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def check_sqlite_file(path: Path) -> None:
    """Raise `DatabaseUnusable` unless `path` is (or can become) a healthy SQLite database."""
    if path.is_dir():
        raise DatabaseUnusable(f"The database path {path} is a folder, not a file. "
                               "Point LIST_DATABASE_URL (or LIST_DATA_DIR) at a file.")
    if not path.exists():
        folder = _existing_parent(path)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise DatabaseUnusable(
                f"Cannot create the database {path}: the folder {folder} is read-only. "
                "Make it writable, or set LIST_DATA_DIR to a writable folder.")
        return
    size = path.stat().st_size
    if size == 0:
        raise DatabaseUnusable(
            f"The database file {path} is empty (0 bytes): it was probably cut short (a full "
            "disk or an interrupted copy). Restore it from a backup; or, to start with no "
            "projects, delete the file.")
    with path.open("rb") as f:
        header = f.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise DatabaseUnusable(
            f"The file {path} is not a SQLite database (it is {size:,} bytes of something "
            "else). Point LIST_DATABASE_URL at the right file, or move this one away to start "
            "with a new, empty database.")
    if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        raise DatabaseUnusable(
            f"The database {path} is read-only (the file or its folder {path.parent} cannot be "
            "written; SQLite also writes -wal and -shm files next to it). Make both writable.")
    problem = _quick_check(path)
    if problem:
        raise DatabaseUnusable(
            f"The database {path} is damaged ({problem}). Restore it from a backup; the "
            "sqlite3 command's `.recover` can often save the data from a damaged file.")


def _existing_parent(path: Path) -> Path:
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    return folder


def _quick_check(path: Path) -> str | None:
    """SQLite's own integrity check (read-only); None when the file is fine."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            rows = conn.execute("PRAGMA quick_check(3)").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    result = "; ".join(str(r[0]) for r in rows)
    return None if result == "ok" else result


def explain(exc: BaseException) -> str | None:
    """A message for a database fault met while working, or None if `exc` is not one."""
    if not isinstance(exc, DBAPIError):
        return None
    text = str(exc.orig if exc.orig is not None else exc).lower()
    if "readonly" in text or "read-only" in text:
        return ("The database cannot be written (its file or folder became read-only). "
                "Make the data folder writable again; nothing was saved by this action.")
    if "disk is full" in text or "no space left" in text:
        return "The disk is full: free some space; nothing was saved by this action."
    if "malformed" in text or "not a database" in text:
        return ("The database file is damaged. Restore it from a backup; the sqlite3 "
                "command's `.recover` can often save the data from a damaged file.")
    if "unable to open database file" in text:
        return ("The database file cannot be opened (was it moved or deleted, or its folder "
                "made unreadable?). Check LIST_DATA_DIR / LIST_DATABASE_URL.")
    if "could not connect" in text or "connection refused" in text or "server closed" in text:
        return "The database server cannot be reached right now. Try again in a moment."
    return None


def open_database(url: str) -> str | None:
    """Check the database at `url` and bring its schema to head; returns the revision.
    Raises `DatabaseUnusable` with a message for a person when it cannot be used."""
    from db.migrate import upgrade_to_head

    path = sqlite_path(url)
    if path is not None:
        check_sqlite_file(path)
    try:
        return upgrade_to_head(url)
    except DBAPIError as exc:
        message = explain(exc) or f"The database {safe_url(url)} cannot be used: {exc.orig}"
        raise DatabaseUnusable(message) from exc
