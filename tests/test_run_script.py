"""`scripts/run` brings up the app and the worker (with a heartbeat in the database); Ctrl-C
(SIGINT to the process group) and a signal to the script's own PID (`kill PID`, a process
manager) both stop the two cleanly. `scripts/setup_env.sh` does not reinstall for a runtime
start after a dev install."""

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
@pytest.mark.parametrize("sig,to_group", [(signal.SIGINT, True), (signal.SIGTERM, True),
                                          (signal.SIGTERM, False), (signal.SIGINT, False)],
                         ids=["SIGINT-group", "SIGTERM-group", "SIGTERM-pid", "SIGINT-pid"])
def test_run_script_starts_app_and_worker_and_stops_both(tmp_path, tiny_bert_dir, sig,
                                                         to_group):
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
        app_pid = int(re.search(r"app started \(pid (\d+)\)", out).group(1))
        assert _alive(worker_pid) and _alive(app_pid)

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

            if to_group:
                os.killpg(pgid, sig)
            else:  # the script alone: it must forward the signal to the app and the worker
                os.kill(proc.pid, sig)
            rc = proc.wait(timeout=60)
            # scripts/run exits 130 on INT and 143 on TERM
            assert rc in (0, 130, 128 + sig, -sig), f"rc {rc}:\n{log_path.read_text()}"
            deadline = time.monotonic() + 15
            while _group_alive(pgid) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _alive(worker_pid), "worker outlived the run script"
            assert not _alive(app_pid), "the app outlived the run script"
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


def test_a_dev_install_satisfies_a_runtime_start(tmp_path):
    """One stamp per set of requirement files; the runtime check accepts a dev install (the
    stub python records every call: a satisfied check makes none)."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    calls = tmp_path / "calls"
    stub = venv / "bin" / "python"
    stub.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    stub.chmod(0o755)
    env = dict(os.environ, LIST_VENV=str(venv))

    def setup(*args):
        calls.unlink(missing_ok=True)
        out = subprocess.run(["bash", "scripts/setup_env.sh", *args], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return calls.read_text() if calls.exists() else ""

    assert "pip install" in setup("--dev")  # nothing stamped: installs, writes both stamps
    assert (venv / ".setup-stamp").is_file() and (venv / ".setup-stamp-dev").is_file()
    assert setup() == "" and setup("--dev") == ""  # both satisfied: no pip at all
    (venv / ".setup-stamp-dev").unlink()
    assert setup() == ""  # the runtime stamp alone satisfies a runtime start
    assert "requirements-dev.txt" in setup("--dev")  # ... but not a dev one
