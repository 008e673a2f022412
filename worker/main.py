"""`python -m worker`: the background worker process.

It brings the schema to head, registers itself (a `workers` row), heartbeats from a
background thread, re-queues runs of dead workers, claims the oldest queued run, runs it
and writes the outcome. SIGTERM / SIGINT stop it gracefully: a running run stops at the next
step boundary and goes back to the queue (resumable, the attempt not counted).
When the database goes away (a server restart, a network cut) the worker keeps its run and
tries again with a growing pause; heartbeats resume when the server is back. A failed run
is retried after a growing delay, unless its error is permanent (worker/resilience.py).

Options: --once (try one claim, process it if there is one, exit), --max-runs N (exit after
N runs), --poll SECONDS (idle polling interval, default LIST_WORKER_POLL_SECONDS).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import traceback

from sqlalchemy.exc import DBAPIError

from db import jobs
from db.health import DatabaseUnusable, open_database
from db.session import session_factory
from db.settings import get_settings, safe_url
from worker.context import RunContext
from worker.resilience import classify_failure, database_unreachable, with_database
from worker.threads import quiet_openmp, use_free_cores

log = logging.getLogger("worker")
MAX_TASK_RESTARTS = 10  # a task cut short by a lost database is run again (from its checkpoint)


def resolve_device(setting: str) -> str:
    """`auto` -> cuda when available, else cpu; anything else as given."""
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Heartbeat(threading.Thread):
    """Writes the worker's (and its runs') heartbeat every `interval` seconds."""

    def __init__(self, sessions, worker_id: str, interval: float):
        super().__init__(name="heartbeat", daemon=True)
        self.sessions, self.worker_id, self.interval = sessions, worker_id, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        failing = False
        while not self.stopped.wait(self.interval):
            try:
                with self.sessions() as s:
                    jobs.heartbeat(s, self.worker_id)
            except Exception as exc:  # keep beating; the next try may succeed
                if not failing:  # once per outage, not every beat
                    log.warning("heartbeat failed (%s: %s); still trying", type(exc).__name__,
                                str(getattr(exc, "orig", None) or exc).splitlines()[0])
                failing = True
                continue
            if failing:
                log.info("heartbeat written again")
            failing = False


class WorkerProcess:
    def __init__(self, *, poll: float | None = None, device: str | None = None):
        settings = get_settings()
        self.settings = settings
        self.poll = poll or settings.worker_poll_seconds
        self.device = resolve_device(device or settings.device)
        self.sessions = session_factory()
        self.shutdown = threading.Event()
        self.worker_id: str | None = None

    def install_signal_handlers(self) -> None:
        def handler(signum, _frame):
            if self.shutdown.is_set():
                log.warning("second %s: exiting now", signal.Signals(signum).name)
                os._exit(128 + signum)
            log.info("%s received: stopping at the next step", signal.Signals(signum).name)
            self.shutdown.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def db(self, fn, what: str = "worker"):
        """`fn(session)` in a fresh session, tried again while the database is unreachable."""
        def once():
            with self.sessions() as s:
                return fn(s)

        return with_database(once, shutdown=self.shutdown, what=what)

    def serve(self, *, once: bool = False, max_runs: int | None = None) -> int:
        self.worker_id = self.db(lambda s: jobs.register_worker(s, device=self.device).id)
        log.info("worker %s started (device %s, database %s)", self.worker_id, self.device,
                 safe_url(self.settings.database_url))
        beat = Heartbeat(self.sessions, self.worker_id, self.settings.heartbeat_seconds)
        beat.start()
        done = 0
        try:
            while not self.shutdown.is_set():
                run = self.db(self._requeue_and_claim)
                if run is None:
                    if once:
                        break
                    self.shutdown.wait(self.poll)
                    continue
                self.process(run)
                done += 1
                if once or (max_runs is not None and done >= max_runs):
                    break
        finally:
            beat.stopped.set()
            beat.join(timeout=5)
            self.shutdown.set()  # an unreachable database is waited for only a while now
            try:
                self.db(lambda s: jobs.unregister_worker(s, self.worker_id))
            except DBAPIError as exc:  # the row stays; its old heartbeat says we are gone
                log.warning("could not record the stop: %s", type(exc).__name__)
            log.info("worker %s stopped after %d run(s)", self.worker_id, done)
        return 0

    def _requeue_and_claim(self, s):
        requeued = jobs.requeue_stale(s)
        if requeued:
            log.warning("re-queued runs of silent workers: %s", requeued)
        return jobs.claim(s, self.worker_id, device=self.device)

    def process(self, run) -> None:
        from worker.tasks import run_task

        log.info("run %d (%s, attempt %d of %d) claimed", run.id, run.kind, run.attempts,
                 run.max_attempts)
        use_free_cores(self.settings.threads)
        ctx = RunContext(run_id=run.id, worker_id=self.worker_id, device=self.device,
                         sessions=self.sessions, shutdown=self.shutdown)
        for restart in range(MAX_TASK_RESTARTS + 1):
            try:
                outcome = run_task(ctx, run)
                break
            except Exception as exc:
                if (database_unreachable(exc) and not self.shutdown.is_set()
                        and restart < MAX_TASK_RESTARTS):
                    # Lost the database outside a retried write: wait for it, then carry on
                    # from the last checkpoint (the run is still ours, no attempt counted).
                    log.warning("run %d: database lost mid-task; continuing when it is back",
                                run.id)
                    ctx.observe_status(ctx.db(lambda s: jobs.held_status(s, run.id,
                                                                          self.worker_id)))
                    if ctx.lost:
                        log.warning("run %d was taken from this worker; dropped it", run.id)
                        return
                    continue
                self._fail(run, exc)
                return
        self.db(lambda s: self._outcome(s, run, ctx, outcome), f"run {run.id}")

    def _fail(self, run, exc: Exception) -> None:
        permanent, advice = classify_failure(exc)
        error = f"{type(exc).__name__}: {exc}"
        if advice:
            error = f"{error}\n{advice}"
        error += f"\n\n{traceback.format_exc()}"
        status = self.db(lambda s: jobs.fail(s, run.id, error, worker_id=self.worker_id,
                                             retryable=not permanent), f"run {run.id}")
        kind = "permanent error, not retried" if permanent else "transient error"
        log.error("run %d failed (%s; %s): %s: %s", run.id, status, kind, type(exc).__name__, exc)

    def _outcome(self, s, run, ctx: RunContext, outcome: str) -> None:
        if outcome == "completed":
            jobs.finish(s, run.id, worker_id=self.worker_id)
            log.info("run %d succeeded", run.id)
        elif ctx.lost:
            log.warning("run %d was taken from this worker; dropped it", run.id)
        elif ctx.cancel_requested:
            jobs.finish(s, run.id, worker_id=self.worker_id, status="cancelled")
            log.info("run %d cancelled", run.id)
        else:  # shutdown: back to the queue, resumable
            status = jobs.release(s, run.id, worker_id=self.worker_id)
            log.info("run %d handed back to the queue (%s)", run.id, status)

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--once", action="store_true",
                        help="try one claim, process the run if there is one, then exit")
    parser.add_argument("--max-runs", type=int, default=None, help="exit after N runs")
    parser.add_argument("--poll", type=float, default=None,
                        help="seconds between looks at an empty queue")
    parser.add_argument("--device", default=None, help="override LIST_DEVICE")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s")
    for noisy in ("alembic", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.max_runs is not None and args.max_runs < 1:
        parser.error("--max-runs must be at least 1")

    quiet_openmp()  # before anything loads torch
    worker = WorkerProcess(poll=args.poll, device=args.device)
    worker.install_signal_handlers()
    url = get_settings().database_url
    while True:  # a database server that is not up yet (or restarting) is waited for
        try:
            open_database(url)
            break
        except DatabaseUnusable as exc:
            if not database_unreachable(exc.__cause__) or worker.shutdown.is_set():
                log.error("cannot start: %s", exc)
                return 2
            log.warning("database %s not reachable yet (%s); trying again in 2 s",
                        safe_url(url), exc)
            worker.shutdown.wait(2.0)
    return worker.serve(once=args.once, max_runs=args.max_runs)
