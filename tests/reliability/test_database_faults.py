"""Database faults get a message that says what to do, never a traceback, and nothing
stored is touched: a 0-byte file, a file that is not a database, a damaged database, a
read-only data folder; in the checker, the worker and the app."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from db.health import DatabaseUnusable, check_sqlite_file, explain, open_database
from db.settings import safe_url
from tests.conftest import ROOT


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _healthy_db(path: Path) -> None:
    open_database(_url(path))


def _damaged_db(path: Path) -> None:
    """A real database whose table pages were overwritten: the header is intact."""
    _healthy_db(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")  # fold the WAL into the file first
    conn.execute("CREATE TABLE filler (x TEXT)")
    conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 500,)] * 400)
    conn.commit()
    conn.close()
    size = path.stat().st_size
    with path.open("r+b") as f:  # scribble over pages in the middle (not page 1)
        for offset in range(4096 * 3, size - 4096, 4096 * 4):
            f.seek(offset)
            f.write(os.urandom(2048))


def test_zero_byte_file_is_refused_not_started_empty(tmp_path):
    db = tmp_path / "list.db"
    db.write_bytes(b"")
    with pytest.raises(DatabaseUnusable, match="empty \\(0 bytes\\).*Restore it from a backup"):
        open_database(_url(db))
    assert db.stat().st_size == 0  # not turned into a new, empty database


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    db = tmp_path / "list.db"
    db.write_text("id,text\n1,hello\n")
    with pytest.raises(DatabaseUnusable, match="is not a SQLite database"):
        open_database(_url(db))
    assert db.read_text() == "id,text\n1,hello\n"


def test_a_damaged_database_is_caught_by_the_integrity_check(tmp_path):
    db = tmp_path / "list.db"
    _damaged_db(db)
    before = db.read_bytes()
    with pytest.raises(DatabaseUnusable, match="is damaged"):
        check_sqlite_file(db)
    assert db.read_bytes() == before


def test_a_healthy_database_passes_and_a_folder_is_refused(tmp_path):
    db = tmp_path / "list.db"
    _healthy_db(db)
    check_sqlite_file(db)
    with pytest.raises(DatabaseUnusable, match="is a folder"):
        check_sqlite_file(tmp_path)


def test_explain_maps_driver_errors_and_masks_passwords():
    from sqlalchemy.exc import OperationalError

    def err(text):
        return OperationalError("SELECT 1", {}, sqlite3.OperationalError(text))

    assert "read-only" in explain(err("attempt to write a readonly database"))
    assert "disk is full" in explain(err("database or disk is full"))
    assert "damaged" in explain(err("database disk image is malformed"))
    assert explain(err("no such table: x")) is None
    assert explain(ValueError("x")) is None
    assert "s3cret" not in safe_url("postgresql+psycopg://list:s3cret@db:5432/list")


def _read_only_command(folder: Path, *command: str) -> list[str]:
    """`command` run with `folder` mounted read-only (a private mount namespace, so nothing
    leaks). Root ignores file permissions, so chmod alone cannot make a folder read-only."""
    import shlex
    import shutil

    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-rm", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs `unshare -rm` (user and mount namespaces) for a read-only mount")
    d = shlex.quote(str(folder))
    return ["unshare", "-rm", "sh", "-c",
            f"mount --bind {d} {d} && mount -o remount,bind,ro {d} && exec "
            + " ".join(shlex.quote(c) for c in command)]


def test_worker_on_a_read_only_data_dir_says_so_and_exits(tmp_path):
    _healthy_db(tmp_path / "list.db")
    before = (tmp_path / "list.db").read_bytes()
    proc = subprocess.run(_read_only_command(tmp_path, sys.executable, "-m", "worker", "--once"),
                          cwd=ROOT, env=_child_env(tmp_path), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "read-only" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert (tmp_path / "list.db").read_bytes() == before


def _child_env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIST_")}
    env.update(LIST_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), LIST_DEVICE="cpu")
    return env


@pytest.mark.parametrize("fault", ["zero_bytes", "not_a_database", "damaged"])
def test_worker_refuses_a_broken_database_with_a_message(tmp_path, fault):
    db = tmp_path / "list.db"
    {"zero_bytes": lambda: db.write_bytes(b""),
     "not_a_database": lambda: db.write_bytes(os.urandom(5000)),
     "damaged": lambda: _damaged_db(db)}[fault]()
    before = db.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "worker", "--once"], cwd=ROOT,
                          env=_child_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "cannot start" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert db.read_bytes() == before


def test_app_shows_a_message_instead_of_a_traceback(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from db.settings import get_settings

    (tmp_path / "list.db").write_bytes(b"")
    monkeypatch.setenv("LIST_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("LIST_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=120).run()
    finally:
        get_settings.cache_clear()
    assert not at.exception, at.exception
    shown = [e.value.replace("\\", "") for e in at.error]  # ui.error escapes Markdown
    assert any("empty (0 bytes)" in text for text in shown), shown
    assert (tmp_path / "list.db").stat().st_size == 0
