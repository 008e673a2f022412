"""Deployment settings: one place, environment variables with documented defaults.

A `.env` file in the working directory (or the file named by LIST_ENV_FILE) is read first;
real environment variables win over it. The app, the worker and the scripts all read
settings through `get_settings()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from dotenv import load_dotenv
from sqlalchemy.engine import make_url

# name -> (default, help). The README's configuration table mirrors this.
DOCUMENTED = {
    "LIST_DATA_DIR": ("./data", "Directory for the SQLite file, checkpoints, models and exports."),
    "LIST_DATABASE_URL": (
        "sqlite:///<LIST_DATA_DIR>/list.db",
        "Any SQLAlchemy URL; PostgreSQL: postgresql://user:pw@host:5432/db (driver psycopg 3).",
    ),
    "LIST_MODEL": (
        "default",
        "Backbone: `default` (packaged all-MiniLM-L6-v2), a hub name or a local path.",
    ),
    "LIST_DEVICE": ("auto", "`auto` (CUDA when available, else CPU), `cpu`, `cuda`, `cuda:N`."),
    "LIST_WORKER_POLL_SECONDS": ("2.0", "How often an idle worker looks for queued runs."),
    "LIST_HEARTBEAT_SECONDS": ("5.0", "How often a worker writes its heartbeat."),
    "LIST_THREADS": ("auto", "CPU threads of a worker's task: `auto` (the cores free when it "
                             "starts) or a number."),
    "LIST_STALE_SECONDS": ("60.0", "A worker silent this long is dead; its runs are re-queued."),
    "LIST_MAX_ATTEMPTS": ("3", "How many times a failing run is tried before it stays failed."),
    "LIST_RETRY_DELAY_SECONDS": (
        "30.0", "Pause before retrying a run after a transient error; doubles per attempt."),
    "LIST_AUTH": (
        "local",
        "`local`: one user, no login (for your own machine); `password`: users with passwords "
        "in the database; `oidc`: sign-in through the OIDC provider in .streamlit/secrets.toml.",
    ),
    "LIST_SESSION_HOURS": ("12", "A password sign-in expires after this many hours."),
    "LIST_ADMINS": ("", "Comma-separated e-mails that are administrators when they sign in (oidc)."),
}
AUTH_MODES = ("local", "password", "oidc")


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    model: str
    device: str
    worker_poll_seconds: float
    heartbeat_seconds: float
    stale_seconds: float
    max_attempts: int
    retry_delay_seconds: float = 30.0
    auth: str = "local"
    session_hours: float = 12.0
    admins: tuple[str, ...] = ()
    threads: str = "auto"  # "auto" or a positive whole number, as text

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"


def _get(name: str) -> str:
    return os.environ.get(name, DOCUMENTED[name][0])


def _number(name: str, kind: type):
    raw = _get(name)
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value


def normalize_url(url: str) -> str:
    """`postgres://` and `postgresql://` mean psycopg 3, the PostgreSQL driver we ship
    (SQLAlchemy's own default for them is psycopg2, which is not installed)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def safe_url(url: str) -> str:
    """The URL with its password masked: the only form of it that goes into logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even a URL: say nothing of its contents
        return "<unparsable database URL>"


def load_settings() -> Settings:
    """Read settings from the environment (and `.env`), without caching."""
    load_dotenv(os.environ.get("LIST_ENV_FILE", ".env"), override=False)
    data_dir = Path(_get("LIST_DATA_DIR")).expanduser().resolve()
    url = normalize_url(os.environ.get("LIST_DATABASE_URL") or f"sqlite:///{data_dir / 'list.db'}")
    return Settings(
        data_dir=data_dir,
        database_url=url,
        model=_get("LIST_MODEL"),
        device=_get("LIST_DEVICE"),
        worker_poll_seconds=_number("LIST_WORKER_POLL_SECONDS", float),
        heartbeat_seconds=_number("LIST_HEARTBEAT_SECONDS", float),
        stale_seconds=_number("LIST_STALE_SECONDS", float),
        max_attempts=_number("LIST_MAX_ATTEMPTS", int),
        retry_delay_seconds=_number("LIST_RETRY_DELAY_SECONDS", float),
        auth=_auth_mode(),
        session_hours=_number("LIST_SESSION_HOURS", float),
        admins=tuple(a.strip() for a in _get("LIST_ADMINS").split(",") if a.strip()),
        threads=_threads(),
    )


def _threads() -> str:
    raw = _get("LIST_THREADS").strip().lower()
    if raw != "auto" and not (raw.isdigit() and int(raw) > 0):
        raise ValueError(f"LIST_THREADS={raw!r} must be 'auto' or a positive whole number")
    return raw


def _auth_mode() -> str:
    mode = _get("LIST_AUTH").strip().lower()
    if mode not in AUTH_MODES:
        raise ValueError(f"LIST_AUTH={mode!r} is not one of {', '.join(AUTH_MODES)}")
    return mode


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (cached). Tests call `get_settings.cache_clear()` after
    changing the environment."""
    return load_settings()
