"""User writes that survive a busy database.

A user's action (a label, a prompt, a new project) is one short write transaction that
takes the write lock first (`BEGIN IMMEDIATE` on SQLite, see db/session.py), so it waits
for a training worker's write instead of failing half-way. If the database stays busy
past the driver's own wait, the whole action is rolled back and run again after a growing
pause; after the last try the user gets `DatabaseBusyError`, whose message is meant for a
person, and nothing was written.

    @user_write
    def set_label(session, ...): ...   # no session.commit() inside: the decorator commits

A decorated function called from inside another one joins the outer transaction.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from db.session import begin_write

log = logging.getLogger(__name__)

# Pauses between tries. SQLite already waits up to its busy timeout inside each try, so a
# few tries spread over a few seconds cover a worker's longest write with room to spare.
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0)
_DEPTH = "list_user_write_depth"  # session.info key: nesting level of user_write calls

P = ParamSpec("P")
R = TypeVar("R")


class DatabaseBusyError(RuntimeError):
    """The database stayed busy; nothing was saved. The message is meant for the user."""

    def __init__(self, detail: str = ""):
        super().__init__(
            "The database is busy (a training run or another user is writing to it) and your "
            "change was not saved. Nothing was lost: please try again in a moment."
        )
        self.detail = detail


# PostgreSQL SQLSTATEs that mean "run the transaction again": serialization failure,
# deadlock detected, lock not available.
_RETRY_SQLSTATES = {"40001", "40P01", "55P03"}


def is_busy(exc: BaseException) -> bool:
    """Whether `exc` means "another writer was in the way; the same transaction may work
    if tried again" (as opposed to a real error)."""
    if isinstance(exc, DBAPIError):
        code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        if code in _RETRY_SQLSTATES:
            return True
    if isinstance(exc, OperationalError):
        text = str(exc.orig if exc.orig is not None else exc).lower()
        return "database is locked" in text or "database is busy" in text or "database table is locked" in text
    return False


def user_write(fn: Callable[P, R]) -> Callable[P, R]:
    """Run `fn(session, ...)` as one write transaction, retried while the database is busy."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        session = args[0] if args else kwargs["session"]
        assert isinstance(session, Session), f"{fn.__name__}: the first argument must be a Session"
        if session.info.get(_DEPTH, 0):
            return _nested(session, fn, args, kwargs)
        return retry_busy(lambda: _once(session, fn, args, kwargs), fn.__name__)

    return wrapper


def retry_busy(call: Callable[[], R], what: str = "write") -> R:
    """`call()`, run again after a growing pause while it fails because the database is
    busy; `DatabaseBusyError` after the last try. `call` must roll back its own work on
    failure (the queue's functions in db/jobs.py and `user_write` do)."""
    for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
        try:
            return call()
        except DBAPIError as exc:
            if not is_busy(exc):
                raise
            if delay is None:
                log.warning("%s: database still busy after %d tries", what, attempt + 1)
                raise DatabaseBusyError(str(exc)) from exc
            log.info("%s: database busy, trying again in %.1f s", what, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _once(session: Session, fn, args, kwargs):
    session.info[_DEPTH] = 1
    try:
        begin_write(session)
        result = fn(*args, **kwargs)
        session.commit()
        return result
    except BaseException:
        session.rollback()
        raise
    finally:
        session.info[_DEPTH] = 0


def _nested(session: Session, fn, args, kwargs):
    session.info[_DEPTH] += 1
    try:
        return fn(*args, **kwargs)
    finally:
        session.info[_DEPTH] -= 1
