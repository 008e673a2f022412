"""The job queue: a run's life is a small state machine kept in the `runs` table.

    queued --claim--> running --finish--> succeeded
       |                 |  \\--fail--> queued (attempts left) | failed
       |                 |  \\--release (worker shut down)--> queued (attempt not counted)
       |                 \\--request_cancel--> cancelling --worker stops--> cancelled
       \\--request_cancel--> cancelled
    failed | cancelled --retry--> queued (from scratch) ; --resume--> queued (from checkpoint)

Every function takes a session and commits its own short write transaction (SQLite
`BEGIN IMMEDIATE`, see db/session.py), so callers never hold the write lock for long.

Correct under concurrency on SQLite and PostgreSQL (READ COMMITTED, many workers on many
machines): every state change is a conditional UPDATE that names the state it changes
from (status, holder, attempts) and checks the row count, after reading that state with
`SELECT ... FOR UPDATE` (a no-op on SQLite, whose BEGIN IMMEDIATE already serialises
writers). So a stale writer (a worker that read the run before someone else changed it)
never overwrites another worker's claim. Functions that a worker calls on a run it holds
take `worker_id`; they change the run only while that worker still owns it.
Times that workers compare (heartbeats, staleness) come from the database server's clock
(`db_now`), not from each machine's.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, text, update
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


MAX_RETRY_DELAY = timedelta(minutes=30)


def retry_delay(attempts: int, base_seconds: float) -> timedelta:
    """Back-off before the next try of a run that failed `attempts` times with a transient
    error: base, 2 x base, 4 x base, ... at most MAX_RETRY_DELAY."""
    seconds = base_seconds * 2 ** min(max(attempts - 1, 0), 30)
    return min(timedelta(seconds=seconds), MAX_RETRY_DELAY)


def is_stale(heartbeat_at: datetime | None, now: datetime, stale_seconds: float) -> bool:
    return heartbeat_at is None or heartbeat_at < now - timedelta(seconds=stale_seconds)


# --- the database's clock and conditional updates ----------------------------------------

def db_now(session: Session) -> datetime:
    """Now by the database server's clock (naive UTC). Workers on many machines compare
    heartbeats with it, so one machine's wrong clock cannot make another's run look dead.
    SQLite lives on this machine: its clock is ours."""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(text("SELECT timezone('UTC', statement_timestamp())"))
    return utcnow()


def _worker_is(worker_id: str | None):
    return Run.worker_id.is_(None) if worker_id is None else Run.worker_id == worker_id


def _read_for_update(session: Session, *cond, skip_locked: bool = False):
    """The state of the run(s) matching `cond`, locked until the transaction ends."""
    stmt = select(Run.id, Run.kind, Run.status, Run.worker_id, Run.attempts, Run.max_attempts,
                  Run.heartbeat_at).where(*cond).order_by(Run.id)
    return session.execute(stmt.with_for_update(skip_locked=skip_locked)).all()


def _change(session: Session, row, *also, **values) -> bool:
    """Compare-and-set: update the run only if it is still as `row` read it (status, holder,
    attempts, plus the conditions `also`). False (nothing written) if it changed."""
    return session.execute(
        update(Run)
        .where(Run.id == row.id, Run.status == row.status, _worker_is(row.worker_id),
               Run.attempts == row.attempts, *also)
        .values(**values)
    ).rowcount == 1


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
    with write_transaction(session):
        now = db_now(session)  # queued_at orders the queue: one clock for every machine
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
            user_id=session.info.get("user_id"),  # who started it (the app's signed-in user)
            number=next_number(session, project_id, kind),
        )
        session.add(run)
    return run


def next_number(session: Session, project_id: int, kind: str) -> int:
    """The next run number of this project and kind. Two apps
    enqueueing at the same instant may share a number: it is a label, the id is the key."""
    last = session.scalar(select(func.max(Run.number))
                          .where(Run.project_id == project_id, Run.kind == kind))
    return (last or 0) + 1


def enqueue_sharded_predict(session: Session, project_id: int, config: dict, shards: int,
                            *, max_attempts: int | None = None) -> list[Run]:
    """A predict run over a large corpus as `shards` runs that several workers claim in
    parallel, each over one contiguous slice. The first is the group's leader: when the last
    shard finishes, its worker merges the parts into one CSV, the leader's "predictions"
    artifact. Each shard's config names the group (`shard`: index, count, runs)."""
    if not 1 <= shards <= 1000:
        raise JobError(f"shards must be between 1 and 1000, got {shards!r}")
    with write_transaction(session):
        now = db_now(session)
        number = next_number(session, project_id, "predict")  # the group is one prediction
        runs = [Run(project_id=project_id, kind="predict", config=dict(config), status=QUEUED,
                    attempts=0, max_attempts=max_attempts or get_settings().max_attempts,
                    progress=0.0, created_at=now, queued_at=now, number=number)
                for _ in range(shards)]
        session.add_all(runs)
        session.flush()
        ids = [r.id for r in runs]
        for i, run in enumerate(runs):
            run.config = {**config, "shard": {"index": i, "count": shards, "runs": ids}}
    return runs


def request_cancel(session: Session, run_id: int) -> str:
    """Queued -> cancelled at once; running -> cancelling (its worker stops at the next step
    and marks it cancelled). Returns the run's status afterwards (unchanged if finished)."""
    with write_transaction(session):
        now = db_now(session)
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
        row = _finished_row(session, run_id, "retry")
        _requeue(session, row, progress=0.0, current_round=None, total_rounds=None, step=None,
                 total_steps=None, phase=None, resumed_from_round=None, started_at=None)
        for model in (RunStep, RoundMetric, PseudoLabel, Artifact):
            session.execute(delete(model).where(model.run_id == run_id))
    shutil.rmtree(run_dir(run_id), ignore_errors=True)
    return session.get(Run, run_id, populate_existing=True)


def resume(session: Session, run_id: int) -> Run:
    """Re-queue a failed or cancelled run so that it continues from its last finished round
    checkpoint (`JobError` when it has none: use `retry`)."""
    with write_transaction(session):
        row = _finished_row(session, run_id, "resume")
        if row.kind != "train" or latest_checkpoint(session, run_id) is None:
            raise JobError(f"run {run_id} has no round checkpoint to resume from; retry it instead")
        _requeue(session, row)
    return session.get(Run, run_id, populate_existing=True)


def _finished_row(session: Session, run_id: int, action: str):
    rows = _read_for_update(session, Run.id == run_id)
    if not rows:
        raise JobError(f"run {run_id} does not exist")
    if rows[0].status not in (FAILED, CANCELLED):
        raise JobError(f"run {run_id} is {rows[0].status}: only failed or cancelled runs can {action}")
    return rows[0]


def _requeue(session: Session, row, **values) -> None:
    """Back to the queue, attempts from 0 (retry / resume by a user)."""
    if not _change(session, row, status=QUEUED, attempts=0, error=None, worker_id=None,
                   finished_at=None, heartbeat_at=None, not_before=None,
                   queued_at=db_now(session), **values):
        raise JobError(f"run {row.id} changed while it was being re-queued; look again")


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
    with write_transaction(session):
        now = db_now(session)
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
    with write_transaction(session):
        cutoff = (now or db_now(session)) - older_than
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
    with write_transaction(session):
        now = db_now(session)
        session.execute(update(Worker).where(Worker.id == worker_id).values(heartbeat_at=now))
        session.execute(
            update(Run)
            .where(Run.worker_id == worker_id, Run.status.in_(ACTIVE_STATUSES))
            .values(heartbeat_at=now)
        )


def claim(session: Session, worker_id: str, *, device: str | None = None) -> Run | None:
    """Atomically take the oldest queued run for `worker_id` (attempts + 1) whose retry
    back-off (`not_before`) is over; None when there is none or another worker was faster."""
    with write_transaction(session):
        now = db_now(session)
        oldest = (
            select(Run.id)
            .where(Run.status == QUEUED, or_(Run.not_before.is_(None), Run.not_before <= now))
            .order_by(Run.queued_at, Run.id).limit(1)
            .with_for_update(skip_locked=True)  # PostgreSQL: skip runs another claim holds
        )
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
    values = {"status": status, "phase": status}
    if status == SUCCEEDED:
        values.update(progress=1.0, error=None)
    with write_transaction(session):
        values["finished_at"] = db_now(session)
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
    while attempts are left, not claimed before a growing delay (`retry_delay`), else
    failed. A permanent error (`retryable=False`) fails at once. A run whose cancel was
    requested ends cancelled. Returns the new status (None if the worker no longer held it)."""
    with write_transaction(session):
        rows = _read_for_update(session, *_owned(run_id, worker_id))
        if not rows:
            return None
        row, now = rows[0], db_now(session)
        if row.status == CANCELLING:
            new = CANCELLED
        else:
            new = status_after_failure(row.attempts, row.max_attempts, retryable)
        values = {"status": new, "error": f"attempt {row.attempts} of {row.max_attempts}: {error}",
                  "phase": "retrying" if new == QUEUED else new}
        if new == QUEUED:
            delay = retry_delay(row.attempts, get_settings().retry_delay_seconds)
            values.update(worker_id=None, queued_at=now, not_before=now + delay)
        else:
            values.update(finished_at=now)
        return new if _change(session, row, **values) else None


def release(session: Session, run_id: int, *, worker_id: str | None = None) -> str | None:
    """A worker shutting down hands a held run back: re-queued without counting the attempt
    (it resumes from its last round checkpoint), or cancelled if a cancel was requested."""
    with write_transaction(session):
        rows = _read_for_update(session, *_owned(run_id, worker_id))
        if not rows:
            return None
        row, now = rows[0], db_now(session)
        if row.status == CANCELLING:
            new, values = CANCELLED, {"finished_at": now, "phase": CANCELLED}
        else:
            new, values = QUEUED, {"phase": "interrupted", "attempts": max(row.attempts - 1, 0),
                                   "worker_id": None, "queued_at": now}
        return new if _change(session, row, status=new, **values) else None


def requeue_stale(
    session: Session, *, stale_seconds: float | None = None, now: datetime | None = None
) -> list[int]:
    """Runs held by a worker whose heartbeat is older than `stale_seconds` (default from the
    settings) go back to the queue (the lost try counts as an attempt; out of attempts ->
    failed; cancel requested -> cancelled). Returns the ids of the runs changed. `now`
    (tests) replaces the database's clock."""
    stale_seconds = stale_seconds or get_settings().stale_seconds
    session.rollback()  # end any open read so that the answer is current
    now = now or db_now(session)
    stale = or_(Run.heartbeat_at.is_(None), Run.heartbeat_at < now - timedelta(seconds=stale_seconds))
    # Cheap read first: the common case (nothing stale) takes no write lock.
    if session.scalar(select(Run.id).where(Run.status.in_(ACTIVE_STATUSES), stale).limit(1)) is None:
        session.rollback()
        return []
    changed = []
    with write_transaction(session):
        # SKIP LOCKED: a run another worker is changing right now is theirs to change.
        for row in _read_for_update(session, Run.status.in_(ACTIVE_STATUSES), stale,
                                    skip_locked=True):
            lost = f"worker {row.worker_id} stopped sending heartbeats (last {row.heartbeat_at})"
            if row.status == CANCELLING:
                values = {"status": CANCELLED, "finished_at": now, "phase": CANCELLED}
            else:
                new = status_after_failure(row.attempts, row.max_attempts)
                values = {"status": new, "error": f"attempt {row.attempts} of {row.max_attempts}: {lost}"}
                if new == QUEUED:
                    values.update(phase="requeued", worker_id=None, queued_at=now)
                else:
                    values.update(phase=FAILED, finished_at=now)
            if _change(session, row, stale, **values):
                changed.append(row.id)
    return changed
