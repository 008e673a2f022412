"""The worker's CPU thread policy: a task uses the cores that other work leaves free, and
waiting OpenMP threads spin only briefly (bench/contention.py measures why)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from worker import threads


def test_auto_uses_the_cores_other_work_leaves_free(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    assert threads.choose_threads("auto", busy=0.1) == 4
    assert threads.choose_threads("auto", busy=1.4) == 3
    assert threads.choose_threads("auto", busy=2.6) == 1
    assert threads.choose_threads("auto", busy=7.5) == 1  # never fewer than one
    assert threads.choose_threads("auto", busy=None) == 4  # not measurable: all of them
    assert threads.choose_threads("3", busy=3.9) == 3  # a number is taken as given


def test_busy_cores_sees_a_spinning_process():
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = threads.busy_cores(sample_seconds=1.0)
    finally:
        loop.kill()
        loop.wait()
    assert busy is not None and 0.6 <= busy <= os.cpu_count() + 0.01


def test_short_spin_is_set_before_torch_and_a_users_value_wins(monkeypatch):
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    threads.quiet_openmp()
    assert os.environ["GOMP_SPINCOUNT"] == threads.SPIN_COUNT
    monkeypatch.setenv("GOMP_SPINCOUNT", "5")
    threads.quiet_openmp()
    assert os.environ["GOMP_SPINCOUNT"] == "5"


def test_the_worker_sets_the_spin_before_it_loads_torch():
    # a fresh interpreter: the worker's entry point, up to the point where it would serve
    code = ("import os, sys; from worker import main as m; "
            "m.quiet_openmp(); assert 'torch' not in sys.modules; "
            "print(os.environ['GOMP_SPINCOUNT'])")
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == threads.SPIN_COUNT


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_bad_thread_settings_say_what_to_write(monkeypatch, value):
    from db.settings import load_settings

    monkeypatch.setenv("LIST_THREADS", value)
    with pytest.raises(ValueError, match="LIST_THREADS=.*'auto' or a positive whole number"):
        load_settings()


def test_a_task_runs_with_the_chosen_threads(monkeypatch, caplog):
    import torch

    before = torch.get_num_threads()
    caplog.set_level("INFO", logger="worker")
    monkeypatch.setattr(threads, "busy_cores", lambda sample_seconds=0.5: 0.0)
    try:
        assert threads.use_free_cores("1") == 1 and torch.get_num_threads() == 1
        assert threads.use_free_cores("auto") == threads.usable_cores()
        assert torch.get_num_threads() == threads.usable_cores()
    finally:
        torch.set_num_threads(before)
    assert "torch threads for this task: 1 of" in caplog.text
