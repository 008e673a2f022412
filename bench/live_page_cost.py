"""What watching a run costs: CPU of the Streamlit server and of headless Chromium while the
Live progress page shows a training run in progress (issue 26, item 9).

    python -m bench.live_page_cost                       # 60 s, the packaged default model
    python -m bench.live_page_cost --seconds 10          # a short check that it works
    python -m bench.live_page_cost --compare bd227fa~1   # also the app before issue 26, item 9

What happens, in a fresh data folder:
1. A project (generated reviews, 8 labels per class, half held out) and one training run
   through the app's services: a short teacher, then a self-training round long enough to
   last the whole measurement (`--round-steps`), `--max-length` tokens.
2. A real `python -m worker` (one torch thread, so the page has a core to itself on a
   2-core machine) trains it; the bench waits until round 1 trains (pseudo-labels made,
   losses logged: every chart of the page has something to draw) and the run is past its
   first minute (the page refreshes quicker in a run's first minute; the steady state is
   what watching a long run costs).
3. A real `streamlit run app/main.py`, the Live progress page of that run opened in headless
   Chromium (Playwright, /usr/bin/chromium), `--warmup` seconds to settle.
4. Over `--seconds`: CPU seconds (utime + stime from /proc/<pid>/stat) of the Streamlit
   server, and of the Chromium processes (summed over the browser's process tree, sampled
   every second so a renderer that exits still counts), as % of one core; the websocket
   frames and bytes the page received; the run's round and step at both ends.
5. With `--compare REV ...`: the same measurement again with `app/` as it was at each git
   revision REV (extracted with `git archive`, served beside the current `db/`, `worker/`
   and `list_engine/`; a folder holding an `app/` works too), on the same run, right after.

The figures go to bench/results/<date>-live-page-<machine>.json (`--out` to change) and a
summary is printed. The run is cancelled at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]
TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- CPU from /proc


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process, in seconds (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of stat(5)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _process_type(pid: int) -> str:
    """Chromium's --type= of a process ("browser" for the main one)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()  # Chromium rewrites its own
    except OSError:
        return "?"
    found = re.search(rb"--type=([a-z-]+)", cmdline)
    return found.group(1).decode() if found else "browser"


def descendants(root: int) -> list[int]:
    """Every process below `root` (children, grandchildren, ...)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out += kids
        todo += kids
    return out


def chromium_pids() -> list[int]:
    """The browser's processes: Chromium below this process (Playwright's driver is node)."""
    return [p for p in descendants(os.getpid())
            if "chrom" in _comm(p).lower() or "headless" in _comm(p).lower()]


class CpuMeter:
    """CPU seconds used by a changing set of processes between start() and stop(); sampled
    every `every` seconds so that a process that exits in between still counts."""

    def __init__(self, pids_fn):
        self.pids_fn = pids_fn
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.kinds: dict[int, str] = {}

    def sample(self, initial: bool = False) -> None:
        for pid in self.pids_fn():
            t = cpu_seconds(pid)
            if t is None:
                continue
            if pid not in self.kinds:
                self.kinds[pid] = _process_type(pid)
            if initial:
                self.first[pid] = t
            else:
                self.first.setdefault(pid, 0.0)  # born in the window: all of its time counts
            self.last[pid] = t

    def seconds(self) -> float:
        return sum(self.last[p] - self.first.get(p, 0.0) for p in self.last)

    def by_kind(self) -> dict[str, float]:
        """CPU seconds per Chromium process type (browser, renderer, gpu-process, ...)."""
        out: dict[str, float] = {}
        for p in self.last:
            kind = self.kinds.get(p, "?")
            out[kind] = round(out.get(kind, 0.0) + self.last[p] - self.first.get(p, 0.0), 3)
        return out


# ---------------------------------------------------------------- set-up


def make_run(model: str, max_length: int, round_steps: int) -> tuple[int, int]:
    """A project and one queued training run (project id, run id)."""
    from sqlalchemy import select

    from app.services import training
    from bench.concurrency import make_project
    from db.models import PromptConfig
    from db.session import get_session

    with get_session() as s:
        project_id = make_project(s, 400, tiny=True, model=model)
        config_id = s.scalar(select(PromptConfig.id).where(PromptConfig.project_id == project_id)
                             .order_by(PromptConfig.id.desc()))
        knobs = {"teacher_steps": 40, "rounds": 2, "unlabeled_steps": round_steps,
                 "labeled_steps": 5, "unlabeled_sample_size": 300, "max_length": max_length,
                 "auto_lr": False, "seed": 1}
        run = training.start_training(s, project_id, config_id, preset="custom",
                                      list_config=training.build_list_config("custom", knobs))
        return project_id, run.id


def run_state(run_id: int) -> dict:
    from sqlalchemy import func, select

    from db.models import PseudoLabel, Run, RunStep, utcnow
    from db.session import get_session

    with get_session() as s:
        run = s.get(Run, run_id)
        age = (utcnow() - run.started_at).total_seconds() if run.started_at else 0.0
        return {"status": run.status, "age_s": round(age, 1), "round": run.current_round,
                "phase": run.phase,
                "step": run.step, "total_steps": run.total_steps,
                "loss_rows": s.scalar(select(func.count()).select_from(RunStep)
                                      .where(RunStep.run_id == run_id)),
                "pseudo_labels": s.scalar(select(func.count()).select_from(PseudoLabel)
                                          .where(PseudoLabel.run_id == run_id))}


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1.0)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def app_at(rev: str, into: Path) -> Path:
    """A folder holding `app/` and `.streamlit/` (the server's settings) as they were at git
    revision `rev` (the current db/, list_engine/ and worker/ come from the repository
    through PYTHONPATH)."""
    data = subprocess.run(["git", "archive", rev, "app", ".streamlit"], cwd=ROOT,
                          capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


@contextmanager
def streamlit_app(env: dict, cwd: Path, log_path: Path, start_timeout: float = 120):
    port = _free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app/main.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + start_timeout
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"streamlit did not start:\n{log_path.read_text()}")
                time.sleep(0.5)
            yield proc, url
        finally:
            _stop(proc, timeout=10)


# ---------------------------------------------------------------- the measurement


def measure_page(browser, url: str, server_pid: int, project_id: int, run_id: int,
                 seconds: float, warmup: float, min_charts: int = 6) -> dict:
    """Open the Live progress page of the run; CPU of server and browser over `seconds`."""
    page = browser.new_page(viewport={"width": 1400, "height": 2300})
    frames = {"n": 0, "bytes": 0, "counting": False}

    def on_ws(ws) -> None:
        def got(payload) -> None:
            if frames["counting"]:
                frames["n"] += 1
                frames["bytes"] += len(payload)
        ws.on("framereceived", got)

    page.on("websocket", on_ws)
    try:
        page.goto(f"{url}/progress?project={project_id}&run={run_id}")
        page.get_by_role("heading", name="Live progress").wait_for(timeout=120_000)
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {min_charts}",
                               timeout=120_000)
        page.wait_for_timeout(warmup * 1000)
        server = CpuMeter(lambda: [server_pid])
        chromium = CpuMeter(chromium_pids)
        server.sample(initial=True)
        chromium.sample(initial=True)
        state_before, load_before = run_state(run_id), os.getloadavg()
        frames["counting"] = True
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            page.wait_for_timeout(min(1000, max(1, (seconds - (time.monotonic() - t0)) * 1000)))
            chromium.sample()
        server.sample()
        chromium.sample()
        wall = time.monotonic() - t0
        frames["counting"] = False
        charts = page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        state_after = run_state(run_id)
    finally:
        page.close()
    return {
        "wall_s": round(wall, 2),
        "streamlit_cpu_s": round(server.seconds(), 3),
        "streamlit_pct_of_core": round(100 * server.seconds() / wall, 2),
        "chromium_cpu_s": round(chromium.seconds(), 3),
        "chromium_pct_of_core": round(100 * chromium.seconds() / wall, 2),
        "total_pct_of_core": round(100 * (server.seconds() + chromium.seconds()) / wall, 2),
        "chromium_processes": len(chromium.last),
        "chromium_cpu_s_by_type": chromium.by_kind(),
        "websocket_frames": frames["n"], "websocket_bytes": frames["bytes"],
        "plotly_charts_on_page": charts,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "run_before": state_before, "run_after": state_after,
    }


def probe(*, seconds: float, warmup: float, model: str, max_length: int, round_steps: int,
          compare: list[str], data_dir: Path, setup_timeout: float,
          min_charts: int = 6) -> dict:
    from playwright.sync_api import sync_playwright

    os.environ.update(LIST_DATA_DIR=str(data_dir), LIST_MODEL=model, LIST_DEVICE="cpu",
                      LIST_HEARTBEAT_SECONDS="1", LIST_STALE_SECONDS="60")
    os.environ.pop("LIST_DATABASE_URL", None)
    from db.health import open_database
    from db.migrate import upgrade_to_head
    from db.settings import get_settings

    get_settings.cache_clear()
    open_database(get_settings().database_url)
    upgrade_to_head()
    project_id, run_id = make_run(model, max_length, round_steps)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", LIST_THREADS="1",
               PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))
    worker = subprocess.Popen([sys.executable, "-m", "worker", "--poll", "0.5"], cwd=ROOT,
                              env=env, stdout=(data_dir / "worker.log").open("w"),
                              stderr=subprocess.STDOUT)
    out: dict = {"project_id": project_id, "run_id": run_id, "measurements": []}
    try:
        def in_round_1():
            state = run_state(run_id)
            if state["status"] in ("failed", "cancelled", "succeeded"):
                raise RuntimeError(f"the run ended before round 1 ({state['status']}):\n"
                                   + (data_dir / "worker.log").read_text()[-3000:])
            return state if (state["round"] or 0) >= 1 and state["pseudo_labels"] else None

        _wait(in_round_1, setup_timeout, "round 1 of the run")
        # The page refreshes quicker in a run's first minute (LIVE_YOUNG_SECONDS): measure
        # the steady state, which is what watching a long run costs.
        from app.services.runs import LIVE_YOUNG_SECONDS
        _wait(lambda: run_state(run_id)["age_s"] > LIVE_YOUNG_SECONDS + 5, setup_timeout,
              "the run to be past its first minute")
        versions = [("current", ROOT)]
        for i, other in enumerate(compare):
            if (Path(other) / "app" / "main.py").exists():  # a folder holding an app/
                versions.append((other, Path(other).resolve()))
            else:
                versions.append((other, app_at(other, data_dir / f"app-at-rev-{i}")))
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                for name, cwd in versions:
                    with streamlit_app(env, cwd, data_dir / f"streamlit-{len(out['measurements'])}.log"
                                       ) as (proc, url):
                        figures = measure_page(browser, url, proc.pid, project_id, run_id,
                                               seconds, warmup, min_charts)
                    out["measurements"].append({"app": name, **figures})
                    print(json.dumps(out["measurements"][-1]), flush=True)
            finally:
                browser.close()
    finally:
        from db import jobs
        from db.session import get_session

        try:
            with get_session() as s:
                jobs.request_cancel(s, run_id)
        except Exception:  # already finished: nothing to cancel
            pass
        _stop(worker, timeout=60)
    return out


def summary(figures: dict) -> list[str]:
    lines = []
    for m in figures["measurements"]:
        lines.append(
            f"{m['app']:>10s}: Streamlit {m['streamlit_pct_of_core']:5.1f} % of a core, Chromium "
            f"{m['chromium_pct_of_core']:5.1f} %, together {m['total_pct_of_core']:5.1f} % over "
            f"{m['wall_s']:.0f} s ({m['websocket_frames']} frames, "
            f"{m['websocket_bytes'] / 1024:.0f} KiB to the page; load {m['load_avg_before'][0]:.2f}"
            f" -> {m['load_avg_after'][0]:.2f}; run at round {m['run_after']['round']}, "
            f"step {m['run_after']['step']})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live_page_cost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="measurement window")
    parser.add_argument("--warmup", type=float, default=10,
                        help="seconds between the page being drawn and the window")
    parser.add_argument("--model", default="default", help="the run's model (default: packaged)")
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--round-steps", type=int, default=20000,
                        help="unlabelled steps of each round: the run must outlast the window")
    parser.add_argument("--compare", metavar="REV", nargs="+", default=[],
                        help="also measure app/ at these git revisions (or folders holding an "
                             "app/), one after the other on the same run")
    parser.add_argument("--machine", default="vm-2cpu")
    parser.add_argument("--setup-timeout", type=float, default=900)
    parser.add_argument("--data-dir", type=Path,
                        help="a new folder to work in and keep (default: a temporary one)")
    parser.add_argument("--min-charts", type=int, default=6, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="the JSON file (default bench/results/...)")
    args = parser.parse_args(argv)

    from bench.runner import command_line, machine_info, utc_now

    started = utc_now()
    with tempfile.TemporaryDirectory(prefix="list-live-page-") as tmp:
        if args.data_dir:  # kept afterwards (logs, the database)
            args.data_dir.mkdir(parents=True, exist_ok=False)
            tmp = args.data_dir
        figures = probe(seconds=args.seconds, warmup=args.warmup, model=args.model,
                        max_length=args.max_length, round_steps=args.round_steps,
                        compare=args.compare, data_dir=Path(tmp),
                        setup_timeout=args.setup_timeout, min_charts=args.min_charts)
    figures = {"command": command_line("bench.live_page_cost", argv), "started": started,
               "machine": machine_info(args.machine),
               "settings": {"seconds": args.seconds, "warmup": args.warmup, "model": args.model,
                            "max_length": args.max_length, "round_steps": args.round_steps,
                            "worker_threads": 1},
               **figures}
    figures["summary"] = summary(figures)
    out = args.out or RESULTS_DIR / f"{started[:10]}-live-page-{args.machine}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1) + "\n")
    print("\n".join(figures["summary"]))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
