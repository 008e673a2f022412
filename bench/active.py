"""Which 30 examples to label: random, diverse, or uncertain + diverse (issue #14).

    python -m bench.active --data mr,bbc --model default --seeds 5 --output bench/results/active.json

A simulated annotator (the gold labels of MR and BBC) labels 30 examples of the training
portion, chosen by
- random:            30 drawn at random (what a person without help does);
- diverse:           k-means (k = 30) over the embeddings, the example nearest each centroid
                     (the app's "Diverse" strategy, as one batch);
- uncertain_diverse: 10 at random, a first LiST run on them, then 20 more: the most uncertain
                     of each of 20 clusters of the 100 examples that run is least sure about
                     (smallest margin; the app's "Uncertain + diverse", as one batch);
- uncertain_regions: the same 10 random labels and first run, then 20 more: k-means (k = 20)
                     over the rest of the pool, from each cluster the example whose 10
                     nearest neighbours and itself the first run is least sure about on
                     average (list_engine.selection.uncertain_regions).
Then LiST (quick preset) trains on each set of 30 with the rest of the training portion as
its unlabelled pool, and is scored on the fixed test set of bench.data (the same for every
seed and strategy). Per seed the random draws differ; the strategies of one seed share the
pool, so the paired difference to random is the fair comparison. Each finished run is
appended to --output at once; --resume skips runs already there.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from bench.baselines import METHODS, RunOptions, _metrics, engine_config
from bench.data import LOADERS, TaskData, resolve_bench_model, synthetic_task, test_indices
from bench.fewshot import native_max_length, parse_overrides
from bench.report import active_summary
from bench.runner import command_line, machine_info, utc_now, versions

STRATEGIES = ("random", "diverse", "uncertain_diverse", "uncertain_regions")
MODEL_GUIDED = ("uncertain_diverse", "uncertain_regions")
N_LABELS = 30
N_FIRST = 10  # random labels behind the first model of uncertain_diverse


def pools(data: TaskData, seed: int, max_pool: int | None, max_test: int | None):
    """(training pool, test set) of one seed: the pool is the training portion (a random
    subset of max_pool when set), the test set is fixed (a stratified max_test subset)."""
    test_idx = test_indices(data)
    if max_test is not None and max_test < len(test_idx):
        test_idx = np.sort(np.random.default_rng(0).choice(test_idx, max_test, replace=False))
    is_test = np.zeros(len(data.examples), dtype=bool)
    is_test[test_idx] = True
    pool_idx = np.random.default_rng(2000 + seed).permutation(np.flatnonzero(~is_test))
    if max_pool is not None:
        pool_idx = pool_idx[:max_pool]
    return [data.examples[i] for i in pool_idx], [data.examples[i] for i in test_idx]


def train(model: str, data: TaskData, labelled: list, unlabelled: list, seed: int,
          options: RunOptions, max_length: int | None):
    """LiST (the quick preset, as the app's default) on the chosen labels."""
    from list_engine import Example, LiSTTrainer, PromptClassifier

    config = engine_config(METHODS["list_quick"], seed, options, max_length)
    clf = PromptClassifier.create(model=model, template=data.template, verbalizer=data.words,
                                  mode=config.mode, adapter=config.adapter,
                                  max_length=config.max_length, device=config.device)
    hidden = [Example(text=e.text, text_b=e.text_b, id=e.id) for e in unlabelled]  # no gold
    return LiSTTrainer(clf, config, labeled=labelled, unlabeled=hidden).train().classifier


_first_runs: dict = {}  # (data, seed) -> the first run's picks and probabilities, shared


def first_run(key: tuple, pool: list, seed: int, trainer) -> tuple:
    """10 random labels and the probabilities a LiST run on them gives the rest of the pool;
    computed once per data set and seed, so the model-guided strategies of a seed start from
    the same first model."""
    if key not in _first_runs:
        rng = np.random.default_rng(3000 + seed)
        first = rng.choice(len(pool), N_FIRST, replace=False)
        rest = np.setdiff1d(np.arange(len(pool)), first)
        t0 = time.perf_counter()
        clf = trainer([pool[i] for i in first], [pool[i] for i in rest])
        probs = clf.predict_proba([pool[i] for i in rest])
        _first_runs[key] = (first, rest, np.asarray(probs), time.perf_counter() - t0)
    return _first_runs[key]


def choose(strategy: str, pool: list, embeddings: np.ndarray, seed: int, trainer,
           key: tuple = ()) -> tuple:
    """Indices into `pool` of the N_LABELS examples the annotator labels, and extra info."""
    from list_engine.selection import diverse, uncertain_diverse, uncertain_regions, uncertainty

    if strategy == "random":
        return np.random.default_rng(3000 + seed).choice(len(pool), N_LABELS, replace=False), {}
    if strategy == "diverse":
        return diverse(embeddings, N_LABELS, seed=seed), {}
    first, rest, probs, first_s = first_run((*key, seed), pool, seed, trainer)
    scores = uncertainty(probs)
    pick = uncertain_diverse if strategy == "uncertain_diverse" else uncertain_regions
    more = rest[pick(scores, embeddings[rest], N_LABELS - N_FIRST, seed=seed)]
    return np.concatenate([first, more]), {"first_run_s": first_s,
                                           "mean_margin_uncertainty_picked":
                                               float(np.mean(scores[np.isin(rest, more)]))}


def run_one(data: TaskData, model: str, strategy: str, seed: int, options: RunOptions,
            max_length: int | None, max_pool: int | None, max_test: int | None) -> dict:
    from list_engine import mean_pooled_embeddings

    pool, test = pools(data, seed, max_pool, max_test)
    embeddings = mean_pooled_embeddings(pool, model=model, device=options.device,
                                        max_length=max_length or 256)

    def trainer(labelled, unlabelled):
        return train(model, data, labelled, unlabelled, seed, options, max_length)

    t0 = time.perf_counter()
    picked, info = choose(strategy, pool, embeddings, seed, trainer,
                          key=(data.name, model, max_pool))
    chosen = set(int(i) for i in picked)
    labelled = [pool[i] for i in sorted(chosen)]  # the annotator gives the gold labels
    unlabelled = [e for i, e in enumerate(pool) if i not in chosen]
    clf = trainer(labelled, unlabelled)
    probs = clf.predict_proba(test, batch_size=options.eval_batch_size)
    pred = [clf.labels[i] for i in np.asarray(probs).argmax(1)]
    counts = {c: sum(e.label == c for e in labelled) for c in data.labels}
    return {"data": data.name, "strategy": strategy, "seed": seed, "n_labelled": len(labelled),
            "n_pool": len(pool), "n_test": len(test), "classes_covered": sum(v > 0 for v in
                                                                             counts.values()),
            "label_counts": counts, "seconds": time.perf_counter() - t0, **info,
            **_metrics([e.label for e in test], pred, data.labels)}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m bench.active", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="mr,bbc", help=f"comma list of {sorted(LOADERS)} or "
                   "'synthetic' (a generated smoke-test set)")
    p.add_argument("--model", default="default")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--strategies", default=",".join(STRATEGIES))
    p.add_argument("--max-pool", type=int, default=None, help="cap the training pool")
    p.add_argument("--max-test", type=int, default=None, help="cap the test set")
    p.add_argument("--max-length", type=int, default=None, help="default: the body's own")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="LiSTConfig overrides (smoke tests: teacher_steps=2 ...)")
    p.add_argument("--device", default="auto")
    p.add_argument("--machine", default=None)
    p.add_argument("--output", type=Path, default=None)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    strategies = args.strategies.split(",")
    bad = [s for s in strategies if s not in STRATEGIES]
    if bad:
        raise SystemExit(f"unknown strategies {bad}; choose from {list(STRATEGIES)}")
    names = args.data.split(",")
    loaders = {**LOADERS, "synthetic": lambda: synthetic_task(40)}
    if any(n not in loaders for n in names):
        raise SystemExit(f"unknown data set(s) in {names}; choose from {sorted(loaders)}")
    model = resolve_bench_model(args.model)
    max_length = args.max_length or native_max_length(model)
    options = RunOptions(device=args.device, overrides=parse_overrides(args.overrides))
    done: list[dict] = []
    if args.resume and args.output and args.output.is_file():
        done = json.loads(args.output.read_text()).get("runs", [])
    header = {"command": command_line("bench.active", argv), "started": utc_now(),
              "machine": machine_info(args.machine), "versions": versions(),
              "model": args.model, "max_length": max_length, "overrides": options.overrides}
    records = list(done)
    for name in names:
        data = loaders[name]()
        for seed in range(args.seeds):
            for strategy in strategies:
                if any(r["data"] == data.name and r["strategy"] == strategy and r["seed"] == seed
                       for r in records):
                    continue
                rec = run_one(data, model, strategy, seed, options, max_length, args.max_pool,
                              args.max_test)
                records.append(rec)
                print(f"{data.name} seed {seed} {strategy}: accuracy {rec['accuracy']:.3f} "
                      f"({rec['classes_covered']} classes among the labels, "
                      f"{rec['seconds']:.0f} s)", flush=True)
                if args.output:
                    args.output.parent.mkdir(parents=True, exist_ok=True)
                    args.output.write_text(json.dumps({**header, "runs": records}, indent=1,
                                                      default=str))
    print("\n".join(active_summary(records)))
    return records


if __name__ == "__main__":
    main()
