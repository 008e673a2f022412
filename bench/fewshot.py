"""Few-shot accuracy of LiST against the baselines, on the same splits and backbone.

    python -m bench.fewshot --data mr,bbc --model default --seeds 5

Per data set and seed: 30 stratified labelled examples, the rest of the training portion as
the unlabelled pool (labels removed), a fixed test set (see ``bench.data.make_split``). Every
method truncates to the same ``--max-length`` (default: the body's native length, 256 for the
default model). Runs go seed-major (every data set and method for seed 0, then seed 1, ...),
so a run cut short still covers all methods; each finished run is appended to the results JSON at once.
``--resume`` skips runs already in that file; ``--workers N`` runs N methods at a time (on a
GPU machine; never on a small CPU box, where they would slow each other down).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import report
from bench.baselines import DEFAULT_METHODS, METHODS, RunOptions, run_method
from bench.data import LOADERS, TaskData, make_split, resolve_bench_model, rotate_words
from bench.runner import command_line, machine_info, quiet_process, run_isolated, utc_now, versions


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values parsed as JSON when they are (numbers, true, null), else text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"--set expects key=value, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _run_key(r: dict) -> tuple:
    return (r["data"], r["model"], r["method"], r["seed"], r["n_labeled"], r["n_unlabeled"],
            r["n_test"], r.get("max_length"))


def native_max_length(model_path: str) -> int:
    """The body's own limit (sentence-transformers' max_seq_length; 256 for the default)."""
    from list_engine import load_tokenizer
    from list_engine.lengths import model_max_length

    return model_max_length(model_path, load_tokenizer(model_path))


def run_fewshot(
    tasks: list[TaskData],
    model: str,
    methods: list[str],
    seeds: list[int],
    options: RunOptions,
    *,
    model_name: str | None = None,
    n_labeled: int = 30,
    max_unlabeled: int | None = None,
    max_test: int | None = None,
    max_length: int | None = None,
    isolate: bool = True,
    output: Path | None = None,
    resume: bool = False,
    workers: int = 1,
    log=print,
) -> list[dict]:
    """Run every (task, seed, method); append each record to ``output`` as it finishes.
    ``max_length`` None = the body's native length."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(METHODS)}")
    if workers > 1 and not isolate:  # transformers' model loading is not thread-safe
        raise ValueError("--workers > 1 needs isolated processes (drop --no-isolate)")
    model_path = resolve_bench_model(model)
    model_name = model_name or model
    max_length = max_length or native_max_length(model_path)
    done = set()
    if output is not None and resume:
        done = {_run_key(r) for r in report.load_results(output)["fewshot"]["runs"]
                if not r.get("error")}
    jobs = []
    for seed in seeds:  # seed-major across data sets: a run cut short still compares all
        for task in tasks:
            split = make_split(task, seed, n_labeled, max_unlabeled, max_test)
            for method in methods:
                record = {"data": task.name, "model": model_name, "method": method,
                          "seed": seed, "n_labeled": len(split.labeled),
                          "n_unlabeled": len(split.unlabeled), "n_test": len(split.test),
                          "max_length": max_length}
                if _run_key(record) in done:
                    log(f"skip {task.name} seed {seed} {method} (in {output})")
                    continue
                jobs.append((task, split, record))

    def run(job) -> dict:
        task, split, record = job
        record["started_at"] = utc_now()
        t0 = time.perf_counter()
        record.update(run_isolated(run_method, {
            "method": record["method"], "model": model_path, "template": task.template,
            "words": task.words, "split": split, "options": options,
            "max_length": max_length}, isolate=isolate))
        record["wall_s"] = time.perf_counter() - t0
        record["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        record["parallel_methods"] = workers
        name = f"{task.name} seed {split.seed} {record['method']}"
        if record.get("error"):
            log(f"{name}: FAILED {record['error']}")
        else:
            log(f"{name}: acc {record['accuracy']:.4f} f1 {record['macro_f1']:.4f} "
                f"train {record['train_s']:.1f}s rss {record['peak_rss_mb']} MB")
        if output is not None:
            report.append_run(output, "fewshot", record)
        return record

    if workers <= 1:
        return [run(job) for job in jobs]
    # Threads only wait: each method still runs in a fresh process of its own.
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, jobs))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.fewshot", description=__doc__.split("\n")[0])
    p.add_argument("--data", default="mr,bbc", help=f"comma list of {sorted(LOADERS)}")
    p.add_argument("--model", default="default",
                   help="'default' (packaged MiniLM), 'mpnet' (fetched part wheels), a hub name "
                        "or a local path")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (splits)")
    p.add_argument("--seed-offset", type=int, default=0, help="first seed")
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma list or 'all'; available: {','.join(METHODS)}")
    p.add_argument("--n-labeled", type=int, default=30)
    p.add_argument("--max-unlabeled", type=int, default=None,
                   help="cap the unlabelled pool (default: the whole rest of the training part)")
    p.add_argument("--max-test", type=int, default=None, help="cap the test set (quick checks)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="LiSTConfig field for every engine method, e.g. --set teacher_steps=50")
    p.add_argument("--max-length", type=int, default=None,
                   help="tokens per input for every method (default: the body's native length)")
    p.add_argument("--workers", type=int, default=1,
                   help="methods run at a time (GPU machines; keep 1 on a small CPU box)")
    p.add_argument("--setfit-iterations", type=int, default=None,
                   help="default: setfit's own")
    p.add_argument("--setfit-epochs", type=int, default=None, help="default: setfit's own")
    p.add_argument("--device", default="auto")
    p.add_argument("--no-isolate", action="store_true",
                   help="run methods in this process (faster start; peak RSS not measured)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch/OpenMP threads per process (default: torch's choice)")
    p.add_argument("--machine", default=None, help="machine name for the results file")
    p.add_argument("--output", type=Path, default=None,
                   help="results JSON (default bench/results/<date>-<machine>.json)")
    p.add_argument("--rotate-words", action="store_true",
                   help="give every label the next label's word (MR: swapped): the prior is "
                        "wrong and the labels must win (data named <name>-rotated)")
    p.add_argument("--resume", action="store_true", help="skip runs already in --output")
    p.add_argument("--no-report", action="store_true", help="do not regenerate RESULTS.md")
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    quiet_process(args.threads)
    methods = list(METHODS) if args.methods == "all" else args.methods.split(",")
    names = args.data.split(",")
    bad = [n for n in names if n not in LOADERS]
    if bad:
        raise SystemExit(f"unknown data set(s) {bad}; choose from {sorted(LOADERS)}")
    options = RunOptions(device=args.device, overrides=parse_overrides(args.overrides),
                         setfit_iterations=args.setfit_iterations,
                         setfit_epochs=args.setfit_epochs)
    machine = machine_info(args.machine)
    output = args.output or report.results_path(machine["name"])
    report.start_section(output, "fewshot", command_line("bench.fewshot", argv), machine,
                         versions())
    tasks = [LOADERS[n]() for n in names]
    if args.rotate_words:
        tasks = [rotate_words(t) for t in tasks]
    seeds = list(range(args.seed_offset, args.seed_offset + args.seeds))
    records = run_fewshot(tasks, args.model, methods, seeds, options,
                          n_labeled=args.n_labeled, max_unlabeled=args.max_unlabeled,
                          max_test=args.max_test, max_length=args.max_length,
                          isolate=not args.no_isolate, output=output, resume=args.resume,
                          workers=args.workers, log=lambda s: print(s, flush=True))
    if not args.no_report:
        print(report.write_markdown(output.parent, report.markdown_path(output.parent)),
              file=sys.stderr)
    return records


if __name__ == "__main__":
    main()
