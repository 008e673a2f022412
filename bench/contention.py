"""A training run on a busy machine: how much slower beside other work, and whether the
worker's thread policy (worker/threads.py) helps.

    python -m bench.contention                      # MR, quick preset, 2 busy loops
    python -m bench.contention --busy 0 2 --repeats 1 --n-unlabeled 100   # a short form

Each measurement is one LiST run (quick preset, 30 MR labels, `--n-unlabeled` MR sentences,
`--max-length` tokens) in a fresh process, timed from the start of training to its end
(model loading excluded). It runs alone, then beside `--busy` processes that each spin one
core (`while True: pass`), under two thread policies:

- `torch default`: what a plain process gets: one OpenMP thread per usable core, OpenMP's
  default wait policy (threads spin while they wait);
- `sleeping threads`: one thread per usable core, waiting threads sleep at once
  (`OMP_WAIT_POLICY=PASSIVE`);
- `short spin`: one thread per usable core, waiting threads spin briefly, then sleep
  (`GOMP_SPINCOUNT=10000`; GNU OpenMP's default is 300,000);
- `worker`: what `python -m worker` does: the short spin, and the thread count is the cores
  free when the task starts (`LIST_THREADS=auto`).

The figure of merit is the slowdown: seconds beside the busy loops / seconds alone (the same
policy's alone time, and the torch default's alone time, which is what a user had before).
Results go to bench/results/<date>-contention-<machine>.json; the numbers are quoted in
NOTES.md, which RESULTS.md includes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.runner import command_line, machine_info, utc_now, versions
from worker.threads import SPIN_COUNT

RESULTS_DIR = Path(__file__).resolve().parent / "results"
POLICIES = ("torch default", "sleeping threads", "short spin", "worker")
SHORT_SPIN = SPIN_COUNT  # GOMP_SPINCOUNT, as the worker sets it
BUSY_LOOP = "while True: pass"


def timed_run(n_unlabeled: int, max_length: int, seed: int) -> dict:
    """One quick-preset run in this process (the parent set the environment)."""
    import torch

    from bench.data import LOADERS, make_split
    from list_engine import LiSTConfig, LiSTTrainer, PromptClassifier

    task = LOADERS["mr"]()
    split = make_split(task, seed, max_unlabeled=n_unlabeled, max_test=50)
    config = LiSTConfig.preset("quick", seed=seed, device="cpu", max_length=max_length)
    clf = PromptClassifier.create(model="default", template=task.template, verbalizer=task.words,
                                  mode=config.mode, adapter=config.adapter,
                                  max_length=config.max_length, device="cpu")
    t0 = time.perf_counter()
    LiSTTrainer(clf, config, labeled=split.labeled, unlabeled=split.unlabeled).train()
    return {"train_s": time.perf_counter() - t0, "torch_threads": torch.get_num_threads(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def _child_main(args: argparse.Namespace) -> None:
    if args.policy == "worker":
        from worker.threads import quiet_openmp, use_free_cores

        quiet_openmp()
        threads = use_free_cores("auto")
    elif args.policy == "sleeping threads":
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # before torch loads (timed_run imports it)
        threads = None
    elif args.policy == "short spin":
        os.environ["GOMP_SPINCOUNT"] = SHORT_SPIN
        threads = None
    else:
        threads = None
    out = timed_run(args.n_unlabeled, args.max_length, args.seed)
    out["chosen_threads"] = threads
    print("RESULT " + json.dumps(out), flush=True)


def measure(policy: str, busy: int, args: argparse.Namespace) -> dict:
    """Start `busy` spinning processes, then one run under `policy` in a fresh process."""
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("OMP_NUM_THREADS", None)
    env.pop("GOMP_SPINCOUNT", None)
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(busy)]
    try:
        time.sleep(2 if busy else 0)  # let the loops show in the CPU counters
        load = [round(x, 2) for x in os.getloadavg()]
        cmd = [sys.executable, "-m", "bench.contention", "--child", "--policy", policy,
               "--n-unlabeled", str(args.n_unlabeled), "--max-length", str(args.max_length),
               "--seed", str(args.seed)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    finally:
        for p in loops:
            p.kill()
            p.wait()
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        return {"policy": policy, "busy": busy, "error": proc.stderr[-2000:]}
    return {"policy": policy, "busy": busy, "loadavg_before": load, **json.loads(line[7:])}


def summarize(runs: list[dict]) -> list[str]:
    """Median seconds per (policy, busy) and the slowdowns against running alone."""
    import statistics

    med: dict[tuple[str, int], float] = {}
    for key in {(r["policy"], r["busy"]) for r in runs if "train_s" in r}:
        med[key] = statistics.median(r["train_s"] for r in runs
                                     if (r["policy"], r["busy"]) == key and "train_s" in r)
    lines = []
    for policy, busy in sorted(med):
        alone, before = med.get((policy, 0)), med.get(("torch default", 0))
        line = f"{policy:14s} beside {busy} busy loop(s): {med[(policy, busy)]:7.1f} s"
        if busy and alone:
            line += f"  ({med[(policy, busy)] / alone:.2f}x its own time alone"
            line += f", {med[(policy, busy)] / before:.2f}x torch default alone)" if before else ")"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, nargs="+", default=[0, 2],
                        help="numbers of busy loops to run beside (0 = alone)")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=POLICIES)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--n-unlabeled", type=int, default=300)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--machine", default="vm-2cpu")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--policy", default="worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child_main(args)
        return {}
    out = args.out or RESULTS_DIR / f"{utc_now()[:10]}-contention-{args.machine}.json"
    data = {"command": command_line("bench.contention", argv), "started": utc_now(),
            "machine": machine_info(args.machine), "versions": versions(),
            "settings": {"n_unlabeled": args.n_unlabeled, "max_length": args.max_length,
                         "preset": "quick", "data": "mr", "seed": args.seed},
            "runs": []}
    for _ in range(args.repeats):
        for busy in args.busy:
            for policy in args.policies:
                record = measure(policy, busy, args)
                data["runs"].append(record)
                print(json.dumps(record), flush=True)
                out.write_text(json.dumps(data, indent=1))
    data["summary"] = summarize(data["runs"])
    out.write_text(json.dumps(data, indent=1))
    print("\n".join(data["summary"]))
    return data


if __name__ == "__main__":
    main()
