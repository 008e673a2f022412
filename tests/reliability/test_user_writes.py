"""db/writes.py: a user's write waits for another writer instead of failing, is tried
again after a pause when the database stays busy, and ends in a plain-words error that
leaves nothing half-written."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from db.models import Project
from db.session import _IMMEDIATE, make_engine
from db.writes import DatabaseBusyError, is_busy, retry_busy, user_write


@pytest.fixture()
def db(tmp_path):
    from sqlalchemy.orm import sessionmaker

    from db.migrate import upgrade_to_head

    url = f"sqlite:///{tmp_path / 'list.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    yield tmp_path / "list.db", sessionmaker(bind=engine, expire_on_commit=False)
    engine.dispose()


def _hold_write_lock(path, seconds: float) -> threading.Thread:
    """Another process-like writer: holds SQLite's write lock for `seconds`."""
    ready = threading.Event()

    def hold():
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        ready.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    t = threading.Thread(target=hold)
    t.start()
    ready.wait()
    return t


@user_write
def _add_project(session, name: str) -> Project:
    project = Project(name=name, description="")
    session.add(project)
    session.flush()
    return project


@user_write
def _add_two(session, first: str, second: str) -> None:
    _add_project(session, first)  # nested: joins this transaction
    _add_project(session, second)


def _names(sessions) -> list[str]:
    with sessions() as s:
        return list(s.scalars(select(Project.name).order_by(Project.id)))


def test_a_write_waits_for_another_writer_instead_of_failing(db):
    path, sessions = db
    holder = _hold_write_lock(path, 1.5)
    t0 = time.monotonic()
    with sessions() as s:
        _add_project(s, "waited")
    holder.join()
    assert time.monotonic() - t0 >= 1.0
    assert _names(sessions) == ["waited"]


def test_read_then_write_in_one_session_survives_a_write_in_between(db):
    """The failure users saw: a session read (snapshot), another process wrote, then the
    session's write could not upgrade its snapshot ("database is locked" at once)."""
    path, sessions = db
    with sessions() as s:
        s.scalar(select(func.count()).select_from(Project))  # opens a read transaction
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("INSERT INTO projects (name, description, created_at, updated_at) "
                      "VALUES ('other', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
        other.close()
        _add_project(s, "mine")
    assert _names(sessions) == ["other", "mine"]


def test_nested_writes_are_one_transaction(db):
    _, sessions = db
    with sessions() as s, pytest.raises(IntegrityError):
        _add_two(s, "a", "a")  # the second violates the unique name: both roll back
    assert _names(sessions) == []
    with sessions() as s:
        _add_two(s, "a", "b")
    assert _names(sessions) == ["a", "b"]


def _busy_connection(path):
    """A driver connection that does not wait at all for the lock (busy timeout 0)."""
    engine = make_engine(f"sqlite:///{path}")

    def begin():
        with engine.connect() as conn:
            conn.connection.driver_connection.execute("PRAGMA busy_timeout=0")
            with conn.execution_options(**{_IMMEDIATE: True}).begin():  # BEGIN IMMEDIATE
                return "done"

    return engine, begin


def test_retry_busy_tries_again_after_a_pause_until_the_lock_is_free(db):
    path, _ = db
    engine, begin = _busy_connection(path)
    holder = _hold_write_lock(path, 0.6)
    assert retry_busy(begin, "test") == "done"  # failed at first, then waited and worked
    holder.join()
    engine.dispose()


def test_retry_busy_gives_up_with_a_message_for_the_user(db, monkeypatch):
    import db.writes as writes

    path, _ = db
    monkeypatch.setattr(writes, "RETRY_DELAYS_S", (0.05, 0.05))
    engine, begin = _busy_connection(path)
    holder = _hold_write_lock(path, 1.5)
    with pytest.raises(DatabaseBusyError, match="not saved.*try again"):
        retry_busy(begin, "test")
    holder.join()
    engine.dispose()


def test_real_errors_are_not_retried(db):


    _, sessions = db
    calls = []

    @user_write
    def duplicate(session):
        calls.append(1)
        session.add(Project(name="x", description=""))
        session.add(Project(name="x", description=""))
        session.flush()

    with sessions() as s, pytest.raises(IntegrityError) as caught:
        duplicate(s)
    assert len(calls) == 1 and not is_busy(caught.value)
