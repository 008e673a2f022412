"""Choose defaults from evidence: run LiST variants on development splits and score every round
on a development set drawn from the unlabelled pool (never on the benchmark's test set).

    python -m bench.tune --data mr,bbc --seeds 100,101,102 --variants bench/tune_variants.json \
        --workers 8 --output tune.json

A variant is a dict of ``LiSTConfig`` fields (plus ``head``); each (data, seed, variant) run
records the development accuracy after every round (round 0 = the teacher) and the
pseudo-label accuracy of every round (the pool keeps its gold labels here only to measure
that; the engine never trains on them).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

N_DEV = 400


def _init_worker(threads: int) -> None:
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch

    torch.set_num_threads(threads)


def run_one(data: str, seed: int, variant: dict, model: str, device: str,
            max_unlabeled: int | None) -> dict:
    import numpy as np
    import torch

    from bench.data import LOADERS, make_split, resolve_bench_model
    from list_engine import LiSTConfig, LiSTTrainer, PromptClassifier

    task = LOADERS[data]()
    split = make_split(task, seed, max_unlabeled=max_unlabeled)
    gold = {e.id: e for e in task.examples}
    pool = [gold[e.id] for e in split.unlabeled]  # with gold labels (measurement only)
    rng = np.random.default_rng(seed)
    dev = [pool[i] for i in rng.choice(len(pool), size=min(N_DEV, len(pool)), replace=False)]
    variant = dict(variant)
    head = variant.pop("head", "auto")
    preset = variant.pop("preset", "quick")
    config = LiSTConfig.preset(preset, seed=seed, device=device, **variant)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    clf = PromptClassifier.create(model=resolve_bench_model(model), template=task.template,
                                  verbalizer=task.words, mode=config.mode, head=head,
                                  adapter=config.adapter, max_length=config.max_length,
                                  device=config.device)
    zero = clf.evaluate(dev)["accuracy"] if config.mode != "classic" else None
    result = LiSTTrainer(clf, config, labeled=split.labeled, unlabeled=pool, eval=dev).train()
    return {"data": data, "seed": seed, "variant": {"head": head, "preset": preset, **variant},
            "head": clf.head, "zero_shot_dev": zero,
            "dev_accuracy": [m.get("accuracy") for m in result.metrics],
            "pseudo_label_accuracy": [m.get("pseudo_label_accuracy") for m in result.metrics],
            "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__.split("\n")[0])
    p.add_argument("--data", default="mr,bbc")
    p.add_argument("--seeds", default="100,101,102")
    p.add_argument("--variants", type=Path, required=True, help="JSON list of variants")
    p.add_argument("--model", default="default")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--max-unlabeled", type=int, default=None)
    p.add_argument("--output", type=Path, required=True)
    args = p.parse_args(argv)
    variants = json.loads(args.variants.read_text())
    jobs = [(d, int(s), v) for v in variants for d in args.data.split(",")
            for s in args.seeds.split(",")]
    records = []
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn"),
                             initializer=_init_worker, initargs=(args.threads,)) as pool:
        futures = {pool.submit(run_one, d, s, v, args.model, args.device, args.max_unlabeled):
                   (d, s, v) for d, s, v in jobs}
        for fut in as_completed(futures):
            d, s, v = futures[fut]
            try:
                rec = fut.result()
            except Exception as exc:  # keep the sweep going; the record says what failed
                rec = {"data": d, "seed": s, "variant": v, "error": repr(exc)[:500]}
            records.append(rec)
            print(json.dumps(rec), flush=True)
            args.output.write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
