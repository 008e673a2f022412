"""Real worker subprocesses against a real SQLite file and a real PostgreSQL database (see
`both_engines` in tests/conftest.py), with the tiny random model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, both_engines


def pytest_generate_tests(metafunc):
    both_engines(metafunc)


class WorkerProc:
    """A `python -m worker` subprocess whose log goes to a file (read it with `.log()`)."""

    def __init__(self, env: dict, log_path: Path, *args: str):
        self.log_path = log_path
        self._fh = open(log_path, "w")  # noqa: SIM115 (closed in wait/kill)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker", *args], cwd=ROOT, env=env,
            stdout=self._fh, stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker {self.pid} still running:\n{self.log()[-3000:]}") from None
        finally:
            self._fh.close()

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self._fh.close()


@pytest.fixture()
def worker_env(data_env, monkeypatch):
    """Environment of the worker subprocesses (and, via monkeypatch, of this process)."""
    values = {
        "LIST_HEARTBEAT_SECONDS": "0.5",
        "LIST_STALE_SECONDS": "3",
        "LIST_WORKER_POLL_SECONDS": "0.2",
        "LIST_RETRY_DELAY_SECONDS": "0.5",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    from db.settings import get_settings

    get_settings.cache_clear()
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               PYTHONUNBUFFERED="1")
    return env


@pytest.fixture()
def session(worker_env):
    from db.migrate import upgrade_to_head
    from db.session import get_session

    upgrade_to_head()
    with get_session() as s:
        yield s


@pytest.fixture()
def start_worker(worker_env, tmp_path):
    procs: list[WorkerProc] = []

    def start(*args: str, env: dict | None = None) -> WorkerProc:
        proc = WorkerProc(env or worker_env, tmp_path / f"worker-{len(procs)}.log", *args)
        procs.append(proc)
        return proc

    yield start
    for p in procs:
        p.kill()


def fresh(session):
    """End the session's read transaction so the next query sees other processes' commits
    (an open SQLite transaction keeps reading its snapshot)."""
    session.rollback()
    session.expire_all()
    return session


def wait_for(predicate, timeout: float = 60, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
