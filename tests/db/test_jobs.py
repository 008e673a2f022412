"""The queue's state machine on a real SQLite file."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from db import jobs
from db.models import (
    CANCELLED,
    CANCELLING,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Artifact,
    RoundMetric,
    Run,
    utcnow,
)
from db.progress import add_artifact, record_metrics
from db.session import get_session


@pytest.fixture()
def worker_id(session):
    return jobs.register_worker(session, device="cpu").id


def test_retry_policy_is_a_pure_function():
    assert jobs.status_after_failure(1, 3) == QUEUED
    assert jobs.status_after_failure(2, 3) == QUEUED
    assert jobs.status_after_failure(3, 3) == FAILED
    assert jobs.status_after_failure(1, 1) == FAILED


def test_claim_takes_the_oldest_queued_run_once(session, project, worker_id):
    first = jobs.enqueue(session, project.id, {"n": 1})
    second = jobs.enqueue(session, project.id, {"n": 2})
    assert first.status == QUEUED and first.max_attempts == 3
    got = jobs.claim(session, worker_id, device="cpu")
    assert (got.id, got.status, got.attempts, got.worker_id) == (first.id, RUNNING, 1, worker_id)
    assert jobs.claim(session, worker_id).id == second.id
    assert jobs.claim(session, worker_id) is None


def test_threads_racing_for_runs_each_get_distinct_ones(session, project, worker_id):
    runs = [jobs.enqueue(session, project.id, {}).id for _ in range(5)]
    got, errors = [], []
    barrier = threading.Barrier(8)

    def racer():
        try:
            with get_session() as s:
                barrier.wait()
                while (run := jobs.claim(s, worker_id)) is not None:
                    got.append(run.id)
        except Exception as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=racer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(got) == runs


def test_cancel_queued_and_running(session, project, worker_id):
    queued = jobs.enqueue(session, project.id, {})
    assert jobs.request_cancel(session, queued.id) == CANCELLED
    assert jobs.claim(session, worker_id) is None  # a cancelled run is never claimed

    running = jobs.enqueue(session, project.id, {})
    jobs.claim(session, worker_id)
    assert jobs.request_cancel(session, running.id) == CANCELLING
    assert jobs.run_status(session, running.id) == CANCELLING
    assert jobs.finish(session, running.id, worker_id=worker_id, status=CANCELLED)
    assert jobs.request_cancel(session, running.id) == CANCELLED  # finished: no change


def test_retry_delay_grows_and_is_bounded():
    assert [jobs.retry_delay(a, 30).total_seconds() for a in (1, 2, 3)] == [30, 60, 120]
    assert jobs.retry_delay(50, 30) == jobs.MAX_RETRY_DELAY


def test_fail_retries_until_max_attempts_and_keeps_the_error(session, project, worker_id):
    run = jobs.enqueue(session, project.id, {}, max_attempts=2)
    jobs.claim(session, worker_id)
    assert jobs.fail(session, run.id, "ValueError: x\nTraceback...", worker_id=worker_id) == QUEUED
    session.refresh(run)
    wait = (run.not_before - run.queued_at).total_seconds()
    assert wait == pytest.approx(30.0)  # LIST_RETRY_DELAY_SECONDS after the 1st failure
    assert jobs.claim(session, worker_id) is None  # backing off
    session.query(Run).filter_by(id=run.id).update({"not_before": utcnow() - timedelta(seconds=1)})
    session.commit()
    assert jobs.claim(session, worker_id).attempts == 2
    assert jobs.fail(session, run.id, "ValueError: y", worker_id=worker_id) == FAILED
    session.refresh(run)
    assert run.status == FAILED and run.finished_at is not None
    assert run.error == "attempt 2 of 2: ValueError: y"


def test_fail_of_a_cancelling_run_ends_cancelled(session, project, worker_id):
    run = jobs.enqueue(session, project.id, {})
    jobs.claim(session, worker_id)
    jobs.request_cancel(session, run.id)
    assert jobs.fail(session, run.id, "boom", worker_id=worker_id) == CANCELLED


def test_release_requeues_without_counting_the_attempt(session, project, worker_id):
    run = jobs.enqueue(session, project.id, {})
    jobs.claim(session, worker_id)
    assert jobs.release(session, run.id, worker_id=worker_id) == QUEUED
    session.refresh(run)
    assert (run.status, run.attempts, run.worker_id) == (QUEUED, 0, None)


def test_a_worker_that_lost_its_run_cannot_overwrite_it(session, project, worker_id):
    run = jobs.enqueue(session, project.id, {})
    jobs.claim(session, worker_id)
    other = jobs.register_worker(session, device="cpu").id
    assert not jobs.finish(session, run.id, worker_id=other)
    assert jobs.fail(session, run.id, "x", worker_id=other) is None
    assert jobs.finish(session, run.id, worker_id=worker_id)
    assert jobs.run_status(session, run.id) == SUCCEEDED


def test_requeue_stale_runs(session, project, worker_id):
    run = jobs.enqueue(session, project.id, {}, max_attempts=2)
    cancelling = jobs.enqueue(session, project.id, {})
    jobs.claim(session, worker_id)
    jobs.claim(session, worker_id)
    jobs.request_cancel(session, cancelling.id)
    assert jobs.requeue_stale(session, stale_seconds=60) == []  # fresh heartbeats
    later = utcnow() + timedelta(seconds=120)
    assert sorted(jobs.requeue_stale(session, stale_seconds=60, now=later)) == [
        run.id, cancelling.id]
    session.refresh(run)
    session.refresh(cancelling)
    assert (run.status, run.worker_id, cancelling.status) == (QUEUED, None, CANCELLED)
    assert "stopped sending heartbeats" in run.error
    jobs.claim(session, worker_id)  # attempt 2 of 2
    assert jobs.requeue_stale(session, stale_seconds=60, now=later + timedelta(hours=1)) == [run.id]
    assert jobs.run_status(session, run.id) == FAILED


def test_heartbeat_keeps_held_runs_fresh(session, project, worker_id):
    run = jobs.enqueue(session, project.id, {})
    jobs.claim(session, worker_id)
    session.query(Run).filter_by(id=run.id).update({"heartbeat_at": utcnow() - timedelta(hours=1)})
    session.commit()
    jobs.heartbeat(session, worker_id)
    assert jobs.requeue_stale(session, stale_seconds=60) == []


def test_retry_starts_over_and_resume_needs_a_checkpoint(session, project, worker_id, db_settings):
    run = jobs.enqueue(session, project.id, {}, max_attempts=1)
    jobs.claim(session, worker_id)
    with pytest.raises(jobs.JobError, match="only failed or cancelled"):
        jobs.retry(session, run.id)
    record_metrics(session, run.id, 0, {"accuracy": 0.5})
    jobs.fail(session, run.id, "boom", worker_id=worker_id)
    with pytest.raises(jobs.JobError, match="no round checkpoint"):
        jobs.resume(session, run.id)

    jobs.retry(session, run.id)
    session.refresh(run)
    assert (run.status, run.attempts, run.error) == (QUEUED, 0, None)
    assert session.query(RoundMetric).filter_by(run_id=run.id).count() == 0

    jobs.claim(session, worker_id)
    ckpt = jobs.run_dir(run.id) / "checkpoints" / "round-0"
    ckpt.mkdir(parents=True)
    add_artifact(session, run.id, "checkpoint", str(ckpt), sha256="0" * 64, bytes=1, round=0)
    jobs.request_cancel(session, run.id)
    jobs.finish(session, run.id, worker_id=worker_id, status=CANCELLED)
    jobs.resume(session, run.id)
    assert jobs.run_status(session, run.id) == QUEUED
    assert session.query(Artifact).filter_by(run_id=run.id).count() == 1  # kept for resuming


def test_old_silent_workers_that_ran_nothing_are_pruned(session, project):
    from db.models import Worker

    idle = jobs.register_worker(session, device="cpu").id
    busy = jobs.register_worker(session, device="cpu").id
    jobs.enqueue(session, project.id, {})
    assert jobs.claim(session, busy).worker_id == busy
    recent = jobs.register_worker(session, device="cpu").id
    long_ago = utcnow() - jobs.WORKER_RETENTION - timedelta(hours=1)
    session.query(Worker).filter(Worker.id.in_([idle, busy])).update(
        {Worker.heartbeat_at: long_ago})
    session.commit()
    assert jobs.prune_workers(session) == 1  # idle only: busy is named by a run
    session.rollback()
    assert {w.id for w in session.query(Worker)} == {busy, recent}
    jobs.register_worker(session, device="cpu")  # registering prunes too (nothing left to)
    assert session.get(Worker, busy) is not None


def test_artifacts_are_unique_per_run_kind_round_and_64_bit(session, project, worker_id):
    from sqlalchemy.exc import IntegrityError

    run = jobs.enqueue(session, project.id, {})
    three_gib = 3 * 1024**3
    for i in range(3):  # the model (round NULL) written three times: one row, the last
        add_artifact(session, run.id, "model", f"m{i}", sha256=str(i) * 64, bytes=three_gib + i)
        add_artifact(session, run.id, "checkpoint", f"c{i}", sha256="0" * 64, bytes=1, round=1)
    session.rollback()
    rows = session.query(Artifact).filter_by(run_id=run.id).order_by(Artifact.kind).all()
    assert [(a.kind, a.round, a.stored_path, a.bytes) for a in rows] == [
        ("checkpoint", 1, "c2", 1), ("model", None, "m2", three_gib + 2)]
    session.add(Artifact(run_id=run.id, kind="model", round=None, path="dup", sha256="", bytes=0))
    with pytest.raises(IntegrityError):  # the key itself refuses a second row
        session.commit()
    session.rollback()


def test_retry_and_resume_change_only_a_finished_run(session, project, worker_id):
    run = jobs.enqueue(session, project.id, {}, max_attempts=1)
    jobs.claim(session, worker_id)
    jobs.fail(session, run.id, "boom", worker_id=worker_id)
    assert jobs.retry(session, run.id).status == QUEUED and run.not_before is None
    with pytest.raises(jobs.JobError, match="is queued"):  # a second click changes nothing
        jobs.retry(session, run.id)
    assert jobs.claim(session, worker_id).attempts == 1


def test_heartbeats_use_the_database_clock(session, project, worker_id, monkeypatch, database_url):
    """A worker whose own clock is an hour behind must not make its runs look dead."""
    if database_url is None:
        pytest.skip("SQLite runs on this machine: its clock is the database's clock")
    run = jobs.enqueue(session, project.id, {})
    jobs.claim(session, worker_id)
    behind = utcnow() - timedelta(hours=1)
    monkeypatch.setattr("db.jobs.utcnow", lambda: behind)
    monkeypatch.setattr("db.models.utcnow", lambda: behind)
    jobs.heartbeat(session, worker_id)
    assert jobs.requeue_stale(session, stale_seconds=60) == []
    session.refresh(run)
    assert abs((run.heartbeat_at - jobs.db_now(session)).total_seconds()) < 60
