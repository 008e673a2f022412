"""run_isolated: a method runs in its own process, which does not outlive the benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_isolated_method_dies_with_its_parent(tmp_path):
    """Killing a benchmark must not leave its method process running on."""
    pid_file = tmp_path / "child.pid"
    script = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from bench.runner import run_isolated\n"
        "from tests.bench.test_runner import _sleep_forever\n"
        f"run_isolated(_sleep_forever, {{'pid_file': {str(pid_file)!r}}})\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    child = None
    try:
        deadline = time.time() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.time() < deadline, "the isolated method never started"
            time.sleep(0.1)
        child = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.time() + 10
        while _alive(child):
            assert time.time() < deadline, "the method process outlived its parent"
            time.sleep(0.1)
    finally:
        if parent.poll() is None:
            parent.kill()
        if child is not None and _alive(child):  # the test failed: do not leak it
            os.kill(child, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _sleep_forever(pid_file: str) -> dict:
    with open(pid_file, "w") as f:
        f.write(str(os.getpid()))
    while True:
        time.sleep(1)
