"""Which errors are permanent, which mean "the database is away", and the reconnect loop."""

from __future__ import annotations

import errno
import sqlite3
import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from list_engine import ModelLoadError
from worker.data import RunConfigError
from worker.resilience import classify_failure, database_unreachable, with_database


def _sqlite_error(message: str) -> OperationalError:
    return OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))


def test_permanent_and_transient_failures():
    assert classify_failure(RunConfigError("bad template")) == (True, None)
    permanent, advice = classify_failure(ModelLoadError("no such model 'x'"))
    assert permanent and "fix the model name or path" in advice
    permanent, advice = classify_failure(
        PermissionError(errno.EACCES, "Permission denied", "/data/artifacts/run-1"))
    assert permanent and "/data/artifacts/run-1" in advice and "read-only" in advice
    try:  # a read-only disk, met while saving (the cause is kept in the chain)
        try:
            raise OSError(errno.EROFS, "Read-only file system")
        except OSError as exc:
            raise RuntimeError("saving the checkpoint failed") from exc
    except RuntimeError as exc:
        assert classify_failure(exc)[0]
    assert classify_failure(RuntimeError("CUDA out of memory")) == (False, None)
    assert classify_failure(OSError(errno.ENOSPC, "No space left on device")) == (False, None)


def test_database_unreachable_means_come_back_later():
    assert database_unreachable(_sqlite_error("database is locked"))
    assert not database_unreachable(_sqlite_error("no such table: runs"))
    assert not database_unreachable(_sqlite_error("attempt to write a readonly database"))
    assert not database_unreachable(ValueError("x"))
    pytest.importorskip("psycopg")
    engine = create_engine("postgresql+psycopg://u:pw@127.0.0.1:1/none")  # nothing listens
    with pytest.raises(OperationalError) as info, engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert database_unreachable(info.value)


def test_with_database_waits_out_an_outage_and_not_other_errors(caplog):
    caplog.set_level("INFO", logger="worker.resilience")
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise _sqlite_error("database is locked")
        return "done"

    assert with_database(flaky, shutdown=threading.Event(), what="test") == "done"
    assert len(calls) == 3
    assert "database unreachable" in caplog.text and "reachable again" in caplog.text

    def broken():
        raise _sqlite_error("no such table: runs")

    with pytest.raises(OperationalError, match="no such table"):
        with_database(broken, shutdown=threading.Event(), what="test")
