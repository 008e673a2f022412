"""A worker survives its PostgreSQL server restarting under it: it keeps its run, waits with
a growing pause, heartbeats again and finishes the run, without counting an attempt. The
server is this test's own throwaway cluster (restarting the shared one would disturb
other tests); its URL carries a password, which must never reach the worker's log."""

from __future__ import annotations

import os
import signal
import time

import pytest

from db import jobs
from db.models import RUNNING, SUCCEEDED, Run
from tests.pg import PASSWORD, start_cluster
from tests.worker.conftest import WorkerProc, wait_for
from tests.worker.helpers import sentiment_project, train_config

pytestmark = pytest.mark.slow


@pytest.fixture()
def own_cluster():
    try:
        cluster = start_cluster()
    except FileNotFoundError as exc:
        if os.environ.get("LIST_TEST_POSTGRES", "auto") == "require":
            raise
        pytest.skip(str(exc))
    yield cluster
    cluster.destroy()


def test_worker_keeps_its_run_through_a_postgresql_restart(own_cluster, tmp_path, monkeypatch,
                                                           tiny_bert_dir):
    from db.migrate import upgrade_to_head
    from db.session import get_session
    from db.settings import get_settings

    url = own_cluster.create_database()
    env = dict(os.environ, LIST_DATA_DIR=str(tmp_path / "data"), LIST_DATABASE_URL=url,
               LIST_MODEL=str(tiny_bert_dir), LIST_DEVICE="cpu", LIST_HEARTBEAT_SECONDS="0.5",
               LIST_STALE_SECONDS="60", LIST_WORKER_POLL_SECONDS="0.2", OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    for key in ("LIST_DATA_DIR", "LIST_DATABASE_URL"):
        monkeypatch.setenv(key, env[key])
    get_settings.cache_clear()
    upgrade_to_head(url)
    with get_session(url) as s:
        project = sentiment_project(s, n_unlabelled=16)
        config = train_config(str(tiny_bert_dir), rounds=2, teacher_steps=10,
                              unlabeled_steps=120, labeled_steps=20)
        run_id = jobs.enqueue(s, project.id, config).id

    def state():
        with get_session(url) as s:
            run = s.get(Run, run_id)
            return run.status, run.progress or 0.0, run.attempts

    worker = WorkerProc(env, tmp_path / "worker.log", "--max-runs", "1")
    try:
        wait_for(lambda: state()[0] == RUNNING and state()[1] > 0.05, 180,
                 what="the run training")
        own_cluster.stop("fast")  # every connection dies, like a server restart
        time.sleep(3.0)  # down for a while: the worker's writes and heartbeats fail meanwhile
        own_cluster.start()
        assert worker.alive(), worker.log()
        wait_for(lambda: state()[0] == SUCCEEDED, 300, interval=1.0, what="the run to succeed")
        assert worker.wait(60) == 0, worker.log()
    finally:
        worker.kill()
        get_settings.cache_clear()
    status, progress, attempts = state()
    assert (status, progress, attempts) == (SUCCEEDED, 1.0, 1)  # kept: no attempt lost
    log = worker.log()
    assert "database unreachable" in log or "heartbeat failed" in log, log
    assert "heartbeat written again" in log or "reachable again" in log, log
    assert f"run {run_id} failed" not in log, log
    assert PASSWORD not in log  # the URL is logged with its password masked
    assert "postgresql+psycopg://postgres:***@127.0.0.1" in log


def test_a_worker_started_before_its_database_waits_for_it(own_cluster, tmp_path):
    """A worker whose server is down at start waits and retries instead of exiting."""
    url = own_cluster.create_database()
    own_cluster.stop("fast")
    env = dict(os.environ, LIST_DATA_DIR=str(tmp_path / "data"), LIST_DATABASE_URL=url,
               LIST_WORKER_POLL_SECONDS="0.2", PYTHONUNBUFFERED="1")
    worker = WorkerProc(env, tmp_path / "worker.log")
    try:
        wait_for(lambda: "not reachable yet" in worker.log(), 120, what="the worker waiting")
        own_cluster.start()
        wait_for(lambda: "started (device" in worker.log(), 120, what="the worker starting")
        worker.signal(signal.SIGTERM)
        assert worker.wait(60) == 0, worker.log()
    finally:
        worker.kill()
    assert PASSWORD not in worker.log()
