"""SQLite connection set-up and the BEGIN IMMEDIATE write transaction."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import text

from db.session import begin_write, write_transaction


def _try_write_lock(path) -> bool:
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as e:
        assert "locked" in str(e)
        return False
    finally:
        conn.close()


@pytest.mark.sqlite_only
def test_pragmas(session):
    assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert session.execute(text("PRAGMA busy_timeout")).scalar() >= 10_000


@pytest.mark.sqlite_only
def test_begin_write_takes_the_lock_and_plain_reads_do_not(session, db_settings):
    path = db_settings.data_dir / "list.db"
    session.execute(text("SELECT count(*) FROM runs")).scalar()  # deferred read transaction
    assert _try_write_lock(path)
    begin_write(session)
    assert not _try_write_lock(path)
    session.commit()
    assert _try_write_lock(path)


def test_write_transaction_rolls_back_on_error(session, project):
    from db.models import Project

    with pytest.raises(RuntimeError), write_transaction(session):
        session.add(Project(name="doomed"))
        raise RuntimeError("boom")
    assert session.query(Project).filter_by(name="doomed").count() == 0
