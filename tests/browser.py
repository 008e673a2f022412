"""What the headless-Chromium tests share: the browser, a free port, and a real
`streamlit run app/main.py` that is up (health check) before the test starts. Each test
passes its own environment, so the helpers change nothing about how the app runs.

Every wait goes through `patience()`: CI runs on 2 loaded cores, where loading a model or
training a few steps can take many times longer than on a quiet laptop. One multiplier,
LIST_TEST_PATIENCE (default 3), scales all of them; Playwright's `expect()` (whose own
default is 5 s) gets the same scaled default from `open_page()`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
# Slowness of this machine relative to a quiet developer laptop (a float >= 1).
PATIENCE = max(1.0, float(os.environ.get("LIST_TEST_PATIENCE", "3")))
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason="Debian chromium is not installed")


def patience(seconds: float) -> float:
    """A deadline of `seconds` on a quiet machine, scaled for a loaded CI machine."""
    return seconds * PATIENCE


def ms(seconds: float) -> int:
    """`patience(seconds)` in milliseconds, as Playwright's timeouts want them."""
    return int(patience(seconds) * 1000)


def open_page(browser, viewport: dict, default_seconds: float = 30):
    """A new page whose actions, waits and `expect()` assertions all default to the scaled
    `default_seconds` (Playwright's `expect` otherwise gives up after 5 s)."""
    from playwright.sync_api import expect

    expect.set_options(timeout=ms(default_seconds))
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(ms(default_seconds))
    return page


def settle(page) -> None:
    """Wait until the app's script run triggered by the last action has finished."""
    page.wait_for_timeout(200)
    page.wait_for_function(
        "document.querySelector('[data-testid=stApp]')"
        "?.getAttribute('data-test-script-state') === 'notRunning'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited after `timeout` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def streamlit_app(env: dict, log_path: Path, start_timeout: float = 60) -> Iterator[str]:
    """Serve the app on a free port with `env`; yields its URL once /_stcore/health answers
    (within `patience(start_timeout)` seconds)."""
    port = free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + patience(start_timeout)
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()}")
                time.sleep(0.5)
            yield url
        finally:
            stop(proc, timeout=10)
