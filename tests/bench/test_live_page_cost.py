"""bench/live_page_cost.py's own parts (the measurement itself needs a worker, a model, the
app and Chromium for minutes: not a test): CPU read from /proc, summed over a process
tree that changes, and an older app/ extracted for --compare."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench import live_page_cost as bench

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"


def test_cpu_meter_counts_a_child_that_exits_in_the_window():
    me = bench.cpu_seconds(os.getpid())
    assert me is not None and me > 0
    assert bench.cpu_seconds(2**22 + 12345) is None  # no such process

    children = bench.CpuMeter(lambda: bench.descendants(os.getpid()))
    children.sample(initial=True)
    proc = subprocess.Popen([sys.executable, "-c", BUSY])
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        children.sample()  # the bench samples every second; here as fast as it can
        time.sleep(0.02)
    assert proc.wait() == 0
    assert proc.pid in children.last  # seen while it ran ...
    assert children.seconds() >= 0.2  # ... and its CPU counted although it has exited


def test_compare_extracts_the_app_of_a_revision(tmp_path):
    folder = bench.app_at("HEAD", tmp_path / "app-at-head")
    assert (folder / "app" / "main.py").exists()
    assert (folder / "app" / "views" / "progress.py").exists()
    assert (folder / ".streamlit" / "config.toml").exists()
