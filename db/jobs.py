"""The job queue: a run's life is a small state machine kept in the `runs` table.

    queued --claim--> running --finish--> succeeded
       |                 |  \\--fail--> queued (attempts left) | failed
       |                 |  \\--release (worker shut down)--> queued (attempt not counted)
       |                 \\--request_cancel--> cancelling --worker stops--> cancelled
       \\--request_cancel--> cancelled
    failed | cancelled --retry--> queued (from scratch) ; --resume--> queued (from checkpoint)

Every function takes a session and commits its own short write transaction (SQLite
`BEGIN IMMEDIATE`, see db/session.py), so callers never hold the write lock for long.
Functions that a worker calls on a run it holds take `worker_id`; they change the run only
while that worker still owns it (a run re-queued behind a slow worker's back is not
overwritten by it).
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from db.models import (
    CANCELLED,
    CANCELLING,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Artifact,
    PseudoLabel,
    RoundMetric,
    Run,
    RunStep,
    Worker,
    utcnow,
)
from db.session import write_transaction
from db.settings import get_settings

ACTIVE_STATUSES = (RUNNING, CANCELLING)
RUN_KINDS = ("train", "predict", "embed")
WORKER_RETENTION = timedelta(days=7)  # silent workers that ran nothing are forgotten after


class JobError(ValueError):
    """An action that the run's current state does not allow (message says why)."""


# --- policy (pure) -----------------------------------------------------------------------

def status_after_failure(attempts: int, max_attempts: int, retryable: bool = True) -> str:
    """Retry policy: a run that failed on its `attempts`-th try goes back to the queue while
    tries are left, else stays failed. A non-retryable error (a run configured so that it
    cannot work) fails at once."""
    return QUEUED if retryable and attempts < max_attempts else FAILED


def is_stale(heartbeat_at: datetime | None, now: datetime, stale_seconds: float) -> bool:
    return heartbeat_at is None or heartbeat_at < now - timedelta(seconds=stale_seconds)


# --- app side ----------------------------------------------------------------------------

def enqueue(
    session: Session,
    project_id: int,
    config: dict,
    *,
    kind: str = "train",
    prompt_config_id: int | None = None,
    max_attempts: int | None = None,
) -> Run:
    """Add a run to the queue and return it (committed)."""
    if kind not in RUN_KINDS:
        raise JobError(f"run kind {kind!r} is not one of {RUN_KINDS}")
    now = utcnow()
    with write_transaction(session):
        run = Run(
            project_id=project_id,
            prompt_config_id=prompt_config_id,
            kind=kind,
            config=config,
            status=QUEUED,
            attempts=0,
            max_attempts=max_attempts or get_settings().max_attempts,
            progress=0.0,
            created_at=now,
            queued_at=now,
        )
        session.add(run)
    return run


def request_cancel(session: Session, run_id: int) -> str:
    """Queued -> cancelled at once; running -> cancelling (its worker stops at the next step
    and marks it cancelled). Returns the run's status afterwards (unchanged if finished)."""
    now = utcnow()
    with write_transaction(session):
        done = session.execute(
            update(Run).where(Run.id == run_id, Run.status == QUEUED)
            .values(status=CANCELLED, finished_at=now, phase="cancelled")
        ).rowcount
        if done:
            return CANCELLED
        session.execute(
            update(Run).where(Run.id == run_id, Run.status == RUNNING).values(status=CANCELLING)
        )
        status = session.scalar(select(Run.status).where(Run.id == run_id))
    if status is None:
        raise JobError(f"run {run_id} does not exist")
    return status


def retry(session: Session, run_id: int) -> Run:
    """Re-queue a failed or cancelled run from scratch: its metrics, losses, pseudo-labels and
    artifacts (rows and files) are removed and its attempts start again at 0."""
    with write_transaction(session):
        run = _get_for_action(session, run_id, "retry")
        for model in (RunStep, RoundMetric, PseudoLabel, Artifact):
            session.execute(delete(model).where(model.run_id == run_id))
        _requeue_fields(run)
        run.progress = 0.0
        run.current_round = run.total_rounds = run.step = run.total_steps = None
        run.phase = None
        run.resumed_from_round = None
        run.started_at = None
    shutil.rmtree(run_dir(run_id), ignore_errors=True)
    return run


def resume(session: Session, run_id: int) -> Run:
    """Re-queue a failed or cancelled run so that it continues from its last finished round
    checkpoint (`JobError` when it has none: use `retry`)."""
    with write_transaction(session):
        run = _get_for_action(session, run_id, "resume")
        if run.kind != "train" or latest_checkpoint(session, run_id) is None:
            raise JobError(f"run {run_id} has no round checkpoint to resume from; retry it instead")
        _requeue_fields(run)
    return run


def _get_for_action(session: Session, run_id: int, action: str) -> Run:
    run = session.get(Run, run_id, populate_existing=True)
    if run is None:
        raise JobError(f"run {run_id} does not exist")
    if run.status not in (FAILED, CANCELLED):
        raise JobError(f"run {run_id} is {run.status}: only failed or cancelled runs can {action}")
    return run


def _requeue_fields(run: Run) -> None:
    run.status = QUEUED
    run.attempts = 0
    run.error = None
    run.worker_id = None
    run.finished_at = None
    run.heartbeat_at = None
    run.queued_at = utcnow()


def latest_checkpoint(session: Session, run_id: int) -> Artifact | None:
    """The newest round checkpoint of a run (highest round), or None."""
    return session.scalars(
        select(Artifact)
        .where(Artifact.run_id == run_id, Artifact.kind == "checkpoint")
        .order_by(Artifact.round.desc(), Artifact.id.desc())
        .limit(1)
    ).first()


def run_dir(run_id: int):
    """Where a run's files live: <data_dir>/artifacts/run-{id}/."""
    return get_settings().artifacts_dir / f"run-{run_id}"


# --- worker side -------------------------------------------------------------------------

def register_worker(
    session: Session, *, device: str, host: str | None = None, pid: int | None = None
) -> Worker:
    host = host or socket.gethostname()
    pid = pid if pid is not None else os.getpid()
    now = utcnow()
    with write_transaction(session):
        worker = Worker(
            id=f"{host[:40]}-{pid}-{uuid.uuid4().hex[:8]}",
            host=host, pid=pid, device=device, started_at=now, heartbeat_at=now,
        )
        session.add(worker)
    prune_workers(session, now=now)
    return worker


def prune_workers(session: Session, *, older_than: timedelta = WORKER_RETENTION,
                  now: datetime | None = None) -> int:
    """Delete `workers` rows silent for longer than `older_than` that no run refers to (a
    worker that ran something stays, so a run keeps saying where it ran). Returns how many."""
    cutoff = (now or utcnow()) - older_than
    with write_transaction(session):
        return session.execute(
            delete(Worker).where(Worker.heartbeat_at < cutoff,
                                 Worker.id.not_in(select(Run.worker_id)
                                                  .where(Run.worker_id.is_not(None))))
        ).rowcount


def unregister_worker(session: Session, worker_id: str) -> None:
    with write_transaction(session):
        session.execute(update(Worker).where(Worker.id == worker_id).values(stopped_at=utcnow()))


def heartbeat(session: Session, worker_id: str) -> None:
    """The worker is alive: refresh its heartbeat and that of the runs it holds."""
    now = utcnow()
    with write_transaction(session):
        session.execute(update(Worker).where(Worker.id == worker_id).values(heartbeat_at=now))
        session.execute(
            update(Run)
            .where(Run.worker_id == worker_id, Run.status.in_(ACTIVE_STATUSES))
            .values(heartbeat_at=now)
        )


def claim(session: Session, worker_id: str, *, device: str | None = None) -> Run | None:
    """Atomically take the oldest queued run for `worker_id` (attempts + 1); None when the
    queue is empty or another worker was faster."""
    now = utcnow()
    oldest = (
        select(Run.id).where(Run.status == QUEUED).order_by(Run.queued_at, Run.id).limit(1)
    )
    with write_transaction(session):
        if session.get_bind().dialect.name == "postgresql":
            oldest = oldest.with_for_update(skip_locked=True)
        run_id = session.scalar(oldest)
        if run_id is None:
            return None
        taken = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == QUEUED)
            .values(
                status=RUNNING, worker_id=worker_id, device=device, attempts=Run.attempts + 1,
                started_at=now, heartbeat_at=now, finished_at=None, phase="starting",
            )
        ).rowcount
        if taken != 1:
            return None
    return session.get(Run, run_id, populate_existing=True)


def run_status(session: Session, run_id: int) -> str | None:
    session.rollback()  # end any open read so that the answer is current
    return session.scalar(select(Run.status).where(Run.id == run_id))


def held_status(session: Session, run_id: int, worker_id: str) -> str | None:
    """The status of a run `worker_id` holds (running / cancelling), None if it does not."""
    session.rollback()
    row = session.execute(select(Run.status, Run.worker_id).where(Run.id == run_id)).first()
    session.rollback()
    if row is None or row.worker_id != worker_id or row.status not in ACTIVE_STATUSES:
        return None
    return row.status


def _owned(run_id: int, worker_id: str | None):
    cond = [Run.id == run_id, Run.status.in_(ACTIVE_STATUSES)]
    if worker_id is not None:
        cond.append(Run.worker_id == worker_id)
    return cond


def finish(
    session: Session, run_id: int, *, worker_id: str | None = None, status: str = SUCCEEDED
) -> bool:
    """Mark a held run succeeded (or `status=CANCELLED`). False if the worker lost it."""
    if status not in (SUCCEEDED, CANCELLED):
        raise JobError(f"finish() sets succeeded or cancelled, not {status!r}")
    values = {"status": status, "finished_at": utcnow(), "phase": status}
    if status == SUCCEEDED:
        values.update(progress=1.0, error=None)
    with write_transaction(session):
        return bool(
            session.execute(update(Run).where(*_owned(run_id, worker_id)).values(**values)).rowcount
        )


def fail(
    session: Session,
    run_id: int,
    error: str,
    *,
    worker_id: str | None = None,
    retryable: bool = True,
) -> str | None:
    """Record a failure (message + traceback) and apply the retry policy: back to the queue
    while attempts are left, else failed. A run whose cancel was requested ends cancelled.
    Returns the new status (None if the worker no longer held the run)."""
    now = utcnow()
    with write_transaction(session):
        run = session.scalars(select(Run).where(*_owned(run_id, worker_id))).first()
        if run is None:
            return None
        session.refresh(run)
        if run.status == CANCELLING:
            new = CANCELLED
        else:
            new = status_after_failure(run.attempts, run.max_attempts, retryable)
        run.status = new
        run.error = f"attempt {run.attempts} of {run.max_attempts}: {error}"
        run.phase = "retrying" if new == QUEUED else new
        if new == QUEUED:
            run.worker_id = None
            run.queued_at = now
        else:
            run.finished_at = now
    return new


def release(session: Session, run_id: int, *, worker_id: str | None = None) -> str | None:
    """A worker shutting down hands a held run back: re-queued without counting the attempt
    (it resumes from its last round checkpoint), or cancelled if a cancel was requested."""
    now = utcnow()
    with write_transaction(session):
        run = session.scalars(select(Run).where(*_owned(run_id, worker_id))).first()
        if run is None:
            return None
        session.refresh(run)
        if run.status == CANCELLING:
            run.status, run.finished_at, run.phase = CANCELLED, now, CANCELLED
        else:
            run.status, run.phase = QUEUED, "interrupted"
            run.attempts = max(run.attempts - 1, 0)
            run.worker_id, run.queued_at = None, now
        return run.status


def requeue_stale(
    session: Session, *, stale_seconds: float | None = None, now: datetime | None = None
) -> list[int]:
    """Runs held by a worker whose heartbeat is older than `stale_seconds` (default from the
    settings) go back to the queue (the lost try counts as an attempt; out of attempts ->
    failed; cancel requested -> cancelled). Returns the ids of the runs changed."""
    stale_seconds = stale_seconds or get_settings().stale_seconds
    now = now or utcnow()
    cutoff = now - timedelta(seconds=stale_seconds)
    stale = or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < cutoff)
    # Cheap read first: the common case (nothing stale) takes no write lock.
    session.rollback()
    if session.scalar(select(Run.id).where(Run.status.in_(ACTIVE_STATUSES), stale).limit(1)) is None:
        session.rollback()
        return []
    changed = []
    with write_transaction(session):
        candidates = select(Run).where(Run.status.in_(ACTIVE_STATUSES), stale)
        for run in session.scalars(candidates.execution_options(populate_existing=True)):
            lost = f"worker {run.worker_id} stopped sending heartbeats (last {run.heartbeat_at})"
            if run.status == CANCELLING:
                run.status, run.finished_at, run.phase = CANCELLED, now, CANCELLED
            else:
                new = status_after_failure(run.attempts, run.max_attempts)
                run.status = new
                run.error = f"attempt {run.attempts} of {run.max_attempts}: {lost}"
                if new == QUEUED:
                    run.phase, run.worker_id, run.queued_at = "requeued", None, now
                else:
                    run.phase, run.finished_at = FAILED, now
            changed.append(run.id)
    return changed
