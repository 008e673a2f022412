"""How many CPU threads a task's torch work uses: the cores that are free when it starts.

torch's default is one OpenMP thread per core, and OpenMP threads spin while they wait for
each other. On a machine that other work already keeps busy, those threads are descheduled in
turn and every parallel step waits for the slowest of them, spinning: a learning-rate search
that took 1.5 minutes on an idle machine took 28 at load 4-8. Two remedies, both here: the
threads spin only briefly before they sleep (`GOMP_SPINCOUNT`, read by OpenMP when torch
loads, so it is set before), and a task uses only the cores that are free when it starts
(`LIST_THREADS=auto`, the default; a number fixes it). bench/contention.py measures both;
sleeping at once (`OMP_WAIT_POLICY=PASSIVE`) cost an idle machine 20-50 % there.
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger("worker")

SAMPLE_SECONDS = 0.5  # how long the machine's CPU use is watched before a task starts


SPIN_COUNT = "10000"  # GNU OpenMP's default is 300,000 spins before a waiting thread sleeps


def quiet_openmp() -> None:
    """Make waiting OpenMP threads sleep after a short spin. Must run before torch is
    imported; a value already in the environment wins."""
    os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat (None off Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user time
    return total - idle, total


def busy_cores(sample_seconds: float = SAMPLE_SECONDS) -> float | None:
    """How many of the machine's cores other work kept busy over the last `sample_seconds`
    (this process is idle meanwhile). None where it cannot be measured."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(sample_seconds)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return None
    share = (second[0] - first[0]) / (second[1] - first[1])
    return share * (os.cpu_count() or 1)


def choose_threads(setting: str = "auto", busy: float | None = None) -> int:
    """Threads for the next task. `setting` is "auto" (the usable cores that other work does
    not keep busy, at least 1; all of them when `busy` is unknown) or a number (settings.py
    checked it)."""
    if setting != "auto":
        return int(setting)
    cores = usable_cores()
    if busy is None:
        return cores
    return max(1, min(cores, cores - round(busy)))


def use_free_cores(setting: str = "auto") -> int:
    """Set torch's thread count for the next task; returns it."""
    import torch

    busy = busy_cores() if setting == "auto" else None
    n = choose_threads(setting, busy)
    torch.set_num_threads(n)
    log.info("torch threads for this task: %d of %d usable cores%s", n, usable_cores(),
             f" ({busy:.1f} cores busy with other work)" if busy is not None else "")
    return n
