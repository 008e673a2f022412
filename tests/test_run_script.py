"""Issue 2's "done when": `scripts/run` brings up the app and the worker (with a heartbeat in
the database) and Ctrl-C (SIGINT to the process group) stops both cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request

import pytest
from sqlalchemy.orm import Session

from db import queries
from db.session import make_engine
from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by its parent) counts as gone
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] != "Z"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as r:
            return r.status == 200 and r.read().strip() == b"ok"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_run_script_starts_app_and_worker_and_stops_both(tmp_path, tiny_bert_dir, sig):
    port = _free_port()
    data_dir = tmp_path / "data"
    env = dict(
        os.environ, LIST_DATA_DIR=str(data_dir), LIST_PORT=str(port),
        LIST_MODEL=str(tiny_bert_dir), LIST_DEVICE="cpu", LIST_HEARTBEAT_SECONDS="1",
        LIST_STALE_SECONDS="10",
    )
    env.pop("LIST_DATABASE_URL", None)
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(["bash", "scripts/run"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    pgid = proc.pid
    try:
        deadline = time.monotonic() + 90
        while not _healthy(port):
            assert proc.poll() is None, f"scripts/run exited early:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"no health after 90 s:\n{log_path.read_text()}"
            time.sleep(0.5)
        out = log_path.read_text()
        assert f"http://localhost:{port}" in out
        worker_pid = int(re.search(r"worker started \(pid (\d+)\)", out).group(1))
        assert _alive(worker_pid)

        engine = make_engine(f"sqlite:///{data_dir / 'list.db'}")
        try:
            deadline = time.monotonic() + 30
            while True:  # a heartbeat written after registration proves the thread runs
                with Session(engine) as s:
                    fresh = [w for w in queries.live_workers(s, stale_seconds=10)
                             if w.pid == worker_pid and w.heartbeat_at > w.started_at]
                if fresh:
                    break
                assert time.monotonic() < deadline, f"no worker heartbeat:\n{log_path.read_text()}"
                time.sleep(0.5)

            os.killpg(pgid, sig)
            rc = proc.wait(timeout=60)
            # scripts/run traps INT and TERM as `exit 130`
            assert rc in (0, 130, 128 + sig, -sig), f"rc {rc}:\n{log_path.read_text()}"
            deadline = time.monotonic() + 15
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _alive(worker_pid), "worker outlived the run script"
            assert not _group_alive(pgid), "a process of the run script is still running"
            assert "worker" in log_path.read_text() and "stopped after" in log_path.read_text()
            with Session(engine) as s:
                (w,) = [w for w in queries.list_workers(s) if w.pid == worker_pid]
                assert w.stopped_at is not None  # unregistered: a clean exit, not a kill
        finally:
            engine.dispose()
    finally:
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=10)
