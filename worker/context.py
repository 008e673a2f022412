"""What a task needs while it runs: its run, sessions, the device, and the stop conditions
(a shutdown signal, a cancel request, or the run being taken away from this worker).
`ctx.db(fn)` is how a task writes: it survives the database going away for a while."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.orm import Session, sessionmaker

from db import jobs
from db.models import CANCELLING
from worker.resilience import with_database

T = TypeVar("T")

STATUS_POLL_SECONDS = 1.0


@dataclass
class RunContext:
    run_id: int
    worker_id: str
    device: str
    sessions: sessionmaker[Session]
    shutdown: threading.Event
    status: str | None = "running"
    _last_poll: float = field(default=0.0)

    def session(self) -> Session:
        return self.sessions()

    def db(self, fn: Callable[[Session], T]) -> T:
        """`fn(session)` in a fresh session; while the database is unreachable it waits and
        tries again (the run is kept; each queue/progress write is safe to repeat)."""
        def once() -> T:
            with self.sessions() as s:
                return fn(s)

        return with_database(once, shutdown=self.shutdown, what=f"run {self.run_id}")

    def observe_status(self, status: str | None) -> None:
        """Record the run's status as last read (None: this worker no longer holds it)."""
        self.status = status
        self._last_poll = time.monotonic()

    @property
    def cancel_requested(self) -> bool:
        return self.status == CANCELLING

    @property
    def lost(self) -> bool:
        return self.status is None

    def should_stop(self) -> bool:
        """Polled at every step: True on shutdown, on a cancel request or a lost run. The
        database is asked at most once a second (the reporter's writes refresh it too)."""
        if self.shutdown.is_set():
            return True
        if time.monotonic() - self._last_poll >= STATUS_POLL_SECONDS:
            self.observe_status(self.db(lambda s: jobs.held_status(s, self.run_id,
                                                                    self.worker_id)))
        return self.cancel_requested or self.lost
