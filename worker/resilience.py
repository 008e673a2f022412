"""Surviving faults: the database going away for a while, and errors that retrying cannot fix.

- `with_database(call, ...)`: run a database call again after a growing pause while the
  server cannot be reached (a PostgreSQL restart, a network cut, SQLite busy past its
  timeout). The worker keeps its run meanwhile; heartbeats resume when the server is back.
- `classify_failure(exc)`: is a task's error permanent (retrying gives the same result: the
  run fails at once with a message that says what to fix) or transient (retried later,
  after a growing delay, see `db.jobs.retry_delay`)?
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")
FIRST_DELAY_S, MAX_DELAY_S = 0.5, 10.0
SHUTDOWN_GRACE_S = 30.0  # on shutdown, give up on an unreachable database after this long


def database_unreachable(exc: BaseException) -> bool:
    """A lost connection or a server that is down or busy: the same call may work later
    (as opposed to an error in what was asked, e.g. a constraint violation)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    if type(exc.orig).__module__.startswith("psycopg"):
        return True  # psycopg's OperationalError: connection refused/lost, server shutting down
    text = str(exc.orig).lower()  # SQLite: only "busy" is temporary; the rest needs a person
    return "database is locked" in text or "database is busy" in text


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def with_database(call: Callable[[], T], *, shutdown: threading.Event, what: str) -> T:
    """`call()`, tried again with a growing pause (0.5 s doubling to 10 s) while the database
    is unreachable. Re-raises only errors of another kind, or when the worker was asked to
    shut down and the database stayed unreachable for SHUTDOWN_GRACE_S."""
    delay, down_since, give_up_at = FIRST_DELAY_S, None, None
    while True:
        try:
            result = call()
        except DBAPIError as exc:
            if not database_unreachable(exc):
                raise
            now = time.monotonic()
            if down_since is None:
                down_since = now
                log.warning("%s: database unreachable (%s); trying again with back-off",
                            what, _first_line(exc))
            if shutdown.is_set():
                give_up_at = give_up_at or now + SHUTDOWN_GRACE_S
                if now >= give_up_at:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        if down_since is not None:
            log.info("%s: database reachable again after %.1f s", what,
                     time.monotonic() - down_since)
        return result


# --- permanent or transient ----------------------------------------------------------------

_PERMANENT_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}


def classify_failure(exc: BaseException) -> tuple[bool, str | None]:
    """(permanent, advice). Permanent: the run's configuration cannot work, its model cannot
    be loaded, or its files cannot be written (permissions, a read-only disk); retrying
    would fail the same way, so the run fails at once and `advice` says what to fix.
    Anything else (a lost database, out of memory, a crash) is transient."""
    from list_engine import ModelLoadError
    from worker.data import RunConfigError

    for e in _chain(exc):
        if isinstance(e, RunConfigError):
            return True, None
        if isinstance(e, ModelLoadError):
            return True, "The model cannot be loaded: fix the model name or path, then retry."
        if isinstance(e, OSError) and e.errno in _PERMANENT_ERRNOS:
            where = f" ({e.filename})" if e.filename else ""
            return True, (f"A file could not be written{where}: the data folder is read-only or "
                          "not writable by the worker. Fix its permissions, then retry.")
    return False, None


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
