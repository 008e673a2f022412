"""What a task needs while it runs: its run, sessions, the device, and the stop conditions
(a shutdown signal, a cancel request, or the run being taken away from this worker)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from db import jobs
from db.models import CANCELLING

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
            with self.session() as s:
                self.observe_status(jobs.held_status(s, self.run_id, self.worker_id))
        return self.cancel_requested or self.lost
