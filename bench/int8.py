"""Int8 against fp32 for prediction on the CPU: accuracy, argmax agreement and texts/s.

    python -m bench.int8 --data mr,bbc --seeds 3 --machine vm-2cpu

Per data set and seed: one LiST model, trained exactly as ``bench.fewshot``'s ``list_quick``
(quick preset, 30 stratified labels, the rest of the training part as the unlabelled pool,
``--max-length`` tokens, default the body's native length), in a fresh process. In that
process, on the fixed test set: ``predict_proba`` of the fp32 model and of its int8 copy
(``PromptClassifier.quantize_int8``: the encoder's dense layers in int8, see
list_engine/int8.py), each timed best of ``--repeats`` (same texts, same batch size,
alternating fp32 and int8, after one warm-up batch each); their accuracies, the argmax
agreement and the probability differences.

Verdict per data set: int8 holds accuracy within 0.5 points when, on every seed, its
accuracy is at most 0.5 points below fp32's (on the same model and test set). Written to
bench/results/<date>-int8-<machine>.json; the summary covers the latest run of each seed in
that file with the same settings.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import report
from bench.baselines import METHODS, RunOptions, engine_config
from bench.data import LOADERS, Split, TaskData, make_split, resolve_bench_model
from bench.fewshot import native_max_length, parse_overrides
from bench.runner import command_line, machine_info, quiet_process, run_isolated, utc_now, versions

METHOD = "list_quick"
TOLERANCE = 0.005  # 0.5 accuracy points


def compare_int8(model: str, task: TaskData, split: Split, overrides: dict, max_length: int,
                 batch_size: int = 64, repeats: int = 3) -> dict[str, Any]:
    """Train one LiST model on `split` (CPU), then fp32 against int8 on its test set."""
    import torch

    from list_engine import LiSTTrainer, PromptClassifier

    spec = METHODS[METHOD]
    config = engine_config(spec, split.seed, RunOptions(device="cpu", overrides=overrides),
                           max_length)
    clf = PromptClassifier.create(model=model, template=task.template, verbalizer=task.words,
                                  mode=config.mode, adapter=config.adapter, head=spec.head,
                                  max_length=config.max_length, device="cpu")
    unlabeled = split.unlabeled if config.self_training else []
    t0 = time.perf_counter()
    clf = LiSTTrainer(clf, config, labeled=split.labeled, unlabeled=unlabeled).train().classifier
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    q = clf.quantize_int8()
    quantize_s = time.perf_counter() - t0

    texts = [e.text for e in split.test]
    gold = np.array([clf.labels.index(e.label) for e in split.test])
    tokens = [len(e.input_ids) for e in clf.encode(texts)]
    for c in (clf, q):  # warm-up: first-call allocations, fbgemm packing
        c.predict_proba(texts[:batch_size], batch_size=batch_size)
    best = {"fp32": float("inf"), "int8": float("inf")}
    probs: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for name, c in (("fp32", clf), ("int8", q)):
            t0 = time.perf_counter()
            probs[name] = c.predict_proba(texts, batch_size=batch_size)
            best[name] = min(best[name], time.perf_counter() - t0)
    pred = {name: p.argmax(axis=1) for name, p in probs.items()}
    diff = np.abs(probs["int8"] - probs["fp32"])
    out: dict[str, Any] = {
        "train_s": train_s, "quantize_s": quantize_s, "n_test": len(texts),
        "used_max_length": clf.max_length, "mean_tokens": float(np.mean(tokens)),
        "max_tokens": int(max(tokens)), "batch_size": batch_size, "repeats": repeats,
        "torch_threads": torch.get_num_threads(), "int8_layers": len(q.int8_layers),
        "agreement": float((pred["int8"] == pred["fp32"]).mean()),
        "prob_max_abs_diff": float(diff.max()), "prob_mean_abs_diff": float(diff.mean()),
        "config": config.to_dict(),
    }
    for name in ("fp32", "int8"):
        out[name] = {"accuracy": float((pred[name] == gold).mean()), "seconds": best[name],
                     "texts_s": len(texts) / best[name]}
    out["accuracy_drop"] = out["fp32"]["accuracy"] - out["int8"]["accuracy"]
    out["speedup"] = best["fp32"] / best["int8"]
    return out


def _key(r: dict) -> tuple:
    return (r["data"], r["model"], r["n_labeled"], r["n_unlabeled"], r["n_test"],
            r["max_length"], r["batch_size"], json.dumps(r["overrides"], sort_keys=True))


def summarize(runs: list[dict]) -> list[dict]:
    """Per data set and settings: the latest run of each seed; mean accuracies, the worst
    drop, agreement, speed-up and the verdict."""
    latest: dict[tuple, dict[int, dict]] = {}
    for r in runs:
        if not r.get("error"):
            latest.setdefault(_key(r), {})[r["seed"]] = r
    out = []
    for key, by_seed in latest.items():
        rs = [by_seed[s] for s in sorted(by_seed)]
        worst = max(r["accuracy_drop"] for r in rs)
        out.append({
            "data": key[0], "model": key[1], "n_test": key[4], "max_length": key[5],
            "batch_size": key[6], "overrides": json.loads(key[7]), "seeds": sorted(by_seed),
            "fp32_accuracy": float(np.mean([r["fp32"]["accuracy"] for r in rs])),
            "int8_accuracy": float(np.mean([r["int8"]["accuracy"] for r in rs])),
            "worst_drop_points": 100 * worst,
            "agreement": float(np.mean([r["agreement"] for r in rs])),
            "min_agreement": float(min(r["agreement"] for r in rs)),
            "fp32_texts_s": float(np.mean([r["fp32"]["texts_s"] for r in rs])),
            "int8_texts_s": float(np.mean([r["int8"]["texts_s"] for r in rs])),
            "speedup": float(np.mean([r["speedup"] for r in rs])),
            "holds_accuracy": bool(worst <= TOLERANCE + 1e-12),
        })
    return out


def summary_lines(summary: list[dict]) -> list[str]:
    lines = []
    for s in summary:
        lines.append(
            f"{s['data']} ({s['model']}, {s['n_test']} test texts, {s['max_length']} tokens, "
            f"seeds {s['seeds']}): accuracy fp32 {100 * s['fp32_accuracy']:.2f} int8 "
            f"{100 * s['int8_accuracy']:.2f} (worst drop {s['worst_drop_points']:.2f} points), "
            f"agreement {100 * s['agreement']:.2f}% (min {100 * s['min_agreement']:.2f}%), "
            f"{s['fp32_texts_s']:.1f} -> {s['int8_texts_s']:.1f} texts/s "
            f"(x{s['speedup']:.2f})")
        lines.append(f"{s['data']}: int8 holds accuracy within 0.5 points: "
                     f"{'yes' if s['holds_accuracy'] else 'no'}")
    return lines


def _load(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"schema": 1, "kind": "int8", "machine": None, "versions": None, "commands": [],
            "runs": [], "summary": []}


def _update(path: Path, fn) -> dict:
    with report._locked(path):
        data = _load(path)
        fn(data)
        data["summary"] = summarize(data["runs"])
        report._write_atomic(path, data)
    return data


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.int8", description=__doc__.split("\n")[0])
    p.add_argument("--data", default="mr,bbc", help=f"comma list of {sorted(LOADERS)}")
    p.add_argument("--model", default="default", help="'default', 'mpnet', hub name or path")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (splits)")
    p.add_argument("--seed-offset", type=int, default=0, help="first seed")
    p.add_argument("--n-labeled", type=int, default=30)
    p.add_argument("--n-unlabeled", type=int, default=None,
                   help="cap the unlabelled pool (default: the rest of the training part)")
    p.add_argument("--max-test", type=int, default=None, help="cap the test set (quick checks)")
    p.add_argument("--max-length", type=int, default=None,
                   help="tokens per input (default: the body's native length)")
    p.add_argument("--batch-size", type=int, default=64, help="prediction batch size")
    p.add_argument("--repeats", type=int, default=3, help="prediction timings: best of N")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="LiSTConfig field for the training, e.g. --set teacher_steps=5")
    p.add_argument("--threads", type=int, default=None,
                   help="torch/OpenMP threads (default: torch's choice)")
    p.add_argument("--no-isolate", action="store_true", help="run in this process")
    p.add_argument("--machine", default=None, help="machine name for the results file")
    p.add_argument("--output", type=Path, default=None,
                   help="results JSON (default bench/results/<date>-int8-<machine>.json)")
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    quiet_process(args.threads)
    names = args.data.split(",")
    bad = [n for n in names if n not in LOADERS]
    if bad:
        raise SystemExit(f"unknown data set(s) {bad}; choose from {sorted(LOADERS)}")
    overrides = parse_overrides(args.overrides)
    machine = machine_info(args.machine)
    output = args.output or report.results_path(f"int8-{machine['name']}")
    command = command_line("bench.int8", argv)

    def start(data: dict) -> None:
        data["machine"] = data["machine"] or machine
        data["versions"] = versions()
        data["commands"].append({"command": command, "started_at": utc_now(),
                                 "loadavg": [round(x, 2) for x in os.getloadavg()]})

    _update(output, start)
    model_path = resolve_bench_model(args.model)
    max_length = args.max_length or native_max_length(model_path)
    tasks = [LOADERS[n]() for n in names]
    records = []
    for seed in range(args.seed_offset, args.seed_offset + args.seeds):
        for task in tasks:
            split = make_split(task, seed, args.n_labeled, args.n_unlabeled, args.max_test)
            record: dict[str, Any] = {
                "data": task.name, "model": args.model, "method": METHOD, "seed": seed,
                "n_labeled": len(split.labeled), "n_unlabeled": len(split.unlabeled),
                "n_test": len(split.test), "max_length": max_length,
                "batch_size": args.batch_size, "overrides": overrides,
                "started_at": utc_now()}
            t0 = time.perf_counter()
            record.update(run_isolated(compare_int8, {
                "model": model_path, "task": task, "split": split, "overrides": overrides,
                "max_length": max_length, "batch_size": args.batch_size,
                "repeats": args.repeats}, isolate=not args.no_isolate))
            record["wall_s"] = time.perf_counter() - t0
            record["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
            records.append(record)
            _update(output, lambda data, record=record: data["runs"].append(record))
            name = f"{task.name} seed {seed}"
            if record.get("error"):
                print(f"{name}: FAILED {record['error']}", flush=True)
            else:
                print(f"{name}: accuracy fp32 {100 * record['fp32']['accuracy']:.2f} int8 "
                      f"{100 * record['int8']['accuracy']:.2f}, agreement "
                      f"{100 * record['agreement']:.2f}%, {record['fp32']['texts_s']:.1f} -> "
                      f"{record['int8']['texts_s']:.1f} texts/s (train {record['train_s']:.0f}"
                      f" s)", flush=True)
    data = _update(output, lambda data: None)
    print(f"results: {output}")
    for line in summary_lines(data["summary"]):
        print(line)
    return records


if __name__ == "__main__":
    main()
