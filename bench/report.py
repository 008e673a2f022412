"""Results files and the generated ``bench/RESULTS.md``.

One JSON file per day and machine, ``bench/results/<date>-<machine>.json``::

    {"schema": 1, "date": ..., "machine": {...}, "versions": {...},
     "fewshot": {"commands": [...], "runs": [{data, model, method, seed, accuracy, ...}]},
     "speed":   {"commands": [...], "runs": [{section, model, device, ...}]}}

Benchmarks append one run at a time (so an interrupted benchmark keeps what it measured).
``python -m bench.report`` rewrites RESULTS.md from every results file: nothing in it is typed by
hand except ``bench/results/NOTES.md``, which is included verbatim. The strategy benchmark
(``python -m bench.active``) writes its own files to ``bench/results/active/``; they get a
section of their own.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
NOTES_MD = RESULTS_DIR / "NOTES.md"
SCHEMA = 1


def results_path(machine: str, date: str | None = None, results_dir: Path | None = None) -> Path:
    date = date or time.strftime("%Y-%m-%d", time.gmtime())
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", machine).strip("-") or "machine"
    return Path(results_dir or RESULTS_DIR) / f"{date}-{safe}.json"


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"schema": SCHEMA, "date": path.stem[:10], "machine": None, "versions": None,
            "fewshot": {"commands": [], "runs": []}, "speed": {"commands": [], "runs": []}}


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of a results file across processes (e.g. a BBC and an
    MPNet benchmark running side by side, one thread each)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".json.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def _write_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(f".json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)


def start_section(path: Path, kind: str, command: str, machine: dict, versions: dict) -> None:
    """Record that a benchmark of ``kind`` started with ``command`` (machine info kept)."""
    with _locked(path):
        data = load_results(path)
        data["machine"] = data["machine"] or machine
        data["versions"] = versions
        data[kind]["commands"].append({"command": command, "started_at": _now(),
                                       "loadavg": [round(x, 2) for x in os.getloadavg()]})
        _write_atomic(path, data)


def append_run(path: Path, kind: str, record: dict) -> None:
    with _locked(path):
        data = load_results(path)
        data[kind]["runs"].append(record)
        _write_atomic(path, data)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ----------------------------------------------------------------------------- summaries


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if not math.isnan(v)]  # nan: not measured (a derived row)
    if not values:
        return math.nan, math.nan
    # One value has no spread to report (nan prints as a bare mean, not a misleading ± 0.0).
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else math.nan)


def summarize_fewshot(runs: list[dict]) -> dict[tuple[str, str, int, int], dict[str, dict]]:
    """{(data, model, n_labeled, max_length): {method: stats}} over the successful runs
    (latest per seed; runs recorded before max_length was stored count as 64 tokens, the
    quick preset's length then)."""
    latest: dict[tuple, dict] = {}
    for r in runs:
        if r.get("error"):
            continue
        latest[(r["data"], r["model"], r["n_labeled"], r.get("max_length") or 64, r["method"],
                r["seed"])] = r
        if r.get("round_accuracy"):  # the same run's teacher, scored before any round
            teacher = {**r, "method": f"{r['method']}{TEACHER_SUFFIX}",
                       "accuracy": r["round_accuracy"][0], "macro_f1": math.nan,
                       "train_s": math.nan, "peak_rss_mb": None}
            latest[(r["data"], r["model"], r["n_labeled"], r.get("max_length") or 64,
                    teacher["method"], r["seed"])] = teacher
    groups: dict[tuple, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for (data, model, n_lab, max_length, method, _), r in latest.items():
        groups[(data, model, n_lab, max_length)][method].append(r)
    out: dict[tuple, dict[str, dict]] = {}
    for key, methods in groups.items():
        out[key] = {}
        for method, rs in methods.items():
            acc = _mean_std([r["accuracy"] for r in rs])
            f1 = _mean_std([r["macro_f1"] for r in rs])
            rss = [r["peak_rss_mb"] for r in rs if r.get("peak_rss_mb") is not None]
            out[key][method] = {
                "seeds": sorted(r["seed"] for r in rs),
                "by_seed": {r["seed"]: r["accuracy"] for r in rs},
                "train_by_seed": {r["seed"]: r["train_s"] for r in rs},
                "accuracy": acc, "macro_f1": f1,
                "train_s": statistics.fmean(r["train_s"] for r in rs),
                "peak_rss_mb": max(rss) if rss else None,
                "trainable_params": rs[0].get("trainable_params"),
                "total_params": rs[0].get("total_params"),
                "n_unlabeled": rs[0].get("n_unlabeled"), "n_test": rs[0].get("n_test"),
                "note": next((r["note"] for r in rs if r.get("note")), ""),
                "wall_s": [r.get("wall_s") or 0.0 for r in rs],
            }
    return out


TEACHER_SUFFIX = "@teacher"


def _pct(ms: tuple[float, float]) -> str:
    m, s = ms
    if math.isnan(m):
        return "n/a"
    return f"{100 * m:.1f}" if math.isnan(s) else f"{100 * m:.1f} ± {100 * s:.1f}"


def _num(x: Any, fmt: str = "{:,.0f}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def _fewshot_md(data: dict) -> list[str]:
    from bench.baselines import METHODS

    runs = data["fewshot"]["runs"]
    lines: list[str] = []
    if not runs:
        return lines
    summary = summarize_fewshot(runs)
    for (ds, model, n_lab, max_length), methods in sorted(summary.items()):
        any_m = next(iter(methods.values()))
        lines += [f"### Few-shot: `{ds}`, model `{model}`, {n_lab} labels, {max_length} tokens",
                  "",
                  f"Unlabelled pool {any_m['n_unlabeled']}, test set {any_m['n_test']}; "
                  "accuracy and macro-F1 in %, mean ± std over seeds.",
                  "",
                  "| method | accuracy | macro-F1 | seeds | train s (mean) | peak RSS MB | "
                  "trainable / total params | note |",
                  "|---|---|---|---|---|---|---|---|"]
        rows = [(name, spec.title) for name, spec in METHODS.items()]
        rows += [(name, f"{METHODS[name[:-len(TEACHER_SUFFIX)]].title}: its own teacher "
                        "(round 0 of the same runs)")
                 for name in methods if name.endswith(TEACHER_SUFFIX)]
        for name, title in rows:
            s = methods.get(name)
            if s is None:
                lines.append(f"| {title} | not run | not run | 0 | | | | |")
                continue
            params = f"{_num(s['trainable_params'])} / {_num(s['total_params'])}"
            lines.append(
                f"| {title} | {_pct(s['accuracy'])} | {_pct(s['macro_f1'])} | "
                f"{len(s['seeds'])} | {_num(s['train_s'], '{:.1f}')} | "
                f"{_num(s['peak_rss_mb'])} | {params} | {s['note']} |")
        total = sum(sum(s["wall_s"]) for s in methods.values())
        per_seed = sum(statistics.fmean(s["wall_s"]) for s in methods.values())
        lines += ["", f"Wall time of these runs (process start, training, evaluation): "
                      f"{total / 60:.1f} min; one seed of the {len(methods)} methods run takes "
                      f"about {per_seed / 60:.1f} min, so 5 seeds about "
                      f"{5 * per_seed / 60:.0f} min (estimate).", ""]
        lines += _aims_fewshot(ds, methods) + [""]
    errors = [r for r in runs if r.get("error")]
    if errors:
        lines.append("Failed runs:")
        lines += [f"- `{r['data']}` {r['method']} seed {r['seed']}: {r['error']}" for r in errors]
        lines.append("")
    return lines


def paired_difference(a: dict[int, float], b: dict[int, float]) -> dict | None:
    """Accuracy of `a` minus `b` on the seeds both ran (the same split per seed, so the
    split-to-split spread that dominates the std of each row cancels out)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    mean, std = _mean_std(diffs)
    return {"seeds": seeds, "mean": mean, "std": std, "wins": sum(d > 0 for d in diffs),
            "ties": sum(d == 0 for d in diffs)}


def _paired_md(p: dict | None) -> str:
    if p is None:
        return "no seed in common, so no paired difference"
    ties = f", {p['ties']} tie(s)" if p["ties"] else ""
    spread = "" if math.isnan(p["std"]) else f" ± {100 * p['std']:.1f}"
    return (f"paired over seeds {','.join(map(str, p['seeds']))}: {100 * p['mean']:+.1f}"
            f"{spread} points, ahead on {p['wins']} of {len(p['seeds'])}{ties}")


def _aims_fewshot(ds: str, m: dict[str, dict]) -> list[str]:
    """The issue's accuracy aims, checked against the numbers (never asserted by hand)."""
    out = ["Aims (computed from the table; the paired difference compares the two methods "
           "seed by seed on identical splits):"]

    def cmp(a: str, b: str) -> str:
        if a not in m or b not in m:
            return f"- {a} vs {b}: not run"
        da, db = m[a]["accuracy"][0], m[b]["accuracy"][0]
        n = min(len(m[a]["seeds"]), len(m[b]["seeds"]))
        verdict = "met" if da > db else "NOT met"
        paired = paired_difference(m[a]["by_seed"], m[b]["by_seed"])
        return (f"- {a} > {b} on `{ds}`: {verdict} ({100 * da:.1f} vs {100 * db:.1f}, "
                f"{n} seed(s){'' if n >= 5 else ', fewer than the 5 the aim asks for'}; "
                f"{_paired_md(paired)})")

    own = "list_quick" + TEACHER_SUFFIX
    out += [cmp("list_quick", "prompt_adapters"), cmp("list_quick", own),
            cmp("list_quick", "setfit")]
    for a, b, margin in (("list_quick", "setfit", 0.03), ("list_quick", "prompt_adapters", 0.03),
                         ("list_quick", own, 0.03)):
        if a in m and b in m:
            paired = paired_difference(m[a]["by_seed"], m[b]["by_seed"])
            if paired is not None:
                verdict = "met" if paired["mean"] >= margin else "NOT met"
                out.append(f"- target {a} >= {b} + {100 * margin:.0f} points on `{ds}`: "
                           f"{verdict} (paired mean {100 * paired['mean']:+.1f})")
    if ds.endswith("-rotated"):  # the label words point the wrong way: the labels must win
        for a, b in ((own, "logreg"), ("list_quick", own)):
            if a in m and b in m:
                paired = paired_difference(m[a]["by_seed"], m[b]["by_seed"])
                if paired is not None:
                    verdict = "met" if paired["mean"] >= 0 else "NOT met"
                    out.append(f"- target with the prior wrong, {a} >= {b} on `{ds}`: "
                               f"{verdict} ({_paired_md(paired)})")
    if "list_quick" in m and "setfit" in m:
        a, b = m["list_quick"].get("train_by_seed", {}), m["setfit"].get("train_by_seed", {})
        seeds = sorted(set(a) & set(b))
        if seeds:
            ratios = [a[s] / b[s] for s in seeds]
            verdict = "met" if all(r <= 1.0 for r in ratios) else "NOT met"
            out.append(f"- target train time of list_quick <= setfit's (same machine, same "
                       f"runs) on `{ds}`: {verdict} (list_quick / setfit per seed: "
                       f"{', '.join(f'{r:.2f}' for r in ratios)}; means "
                       f"{statistics.fmean(a[s] for s in seeds):.0f} s vs "
                       f"{statistics.fmean(b[s] for s in seeds):.0f} s)")
    for abl, what in (("list_no_meta", "meta re-weighting"), ("list_no_kd", "KD warm-up"),
                      ("list_mlm_head", "the similarity head over the MLM head")):
        if "list_quick" in m and abl in m:
            paired = paired_difference(m["list_quick"]["by_seed"], m[abl]["by_seed"])
            out.append(f"- what {what} adds (list_quick − {abl}): {_paired_md(paired)}")
    return out


def _speed_md(data: dict) -> list[str]:
    runs = [r for r in data["speed"]["runs"] if not r.get("error")]
    lines: list[str] = []
    inf = [r for r in runs if r["section"] == "inference"]
    if inf:
        lines += ["### Inference throughput: `predict_proba` vs a plain padded transformers loop",
                  "",
                  "| model | data | device | texts | batch | mean tokens | engine texts/s | "
                  "engine tokens/s | plain texts/s | plain tokens/s | ratio (aim ≥ 1.5) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in inf:
            lines.append(
                f"| {r['model']} | {r['data']} | {r['device']} | {r['n_texts']} | "
                f"{r['batch_size']} | {r['mean_tokens']:.0f} | {r['engine']['texts_s']:.1f} | "
                f"{r['engine']['tokens_s']:.0f} | {r['plain']['texts_s']:.1f} | "
                f"{r['plain']['tokens_s']:.0f} | {r['ratio']:.2f} |")
        lines.append("")
    full = [r for r in runs if r["section"] == "list_run"]
    if full:
        lines += ["### Training step time (median, seconds; from a full LiST run)",
                  "",
                  "| model | device | preset | teacher (labelled) | labelled | KD (unlabelled) | "
                  "meta-weighted | meta / KD (aim ≤ 2) |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in full:
            ph = r["phases"]["phases"]

            def med(p: str, ph: dict = ph) -> str:
                return _num((ph.get(p) or {}).get("median_step_s"), "{:.3f}")

            lines.append(f"| {r['model']} | {r['device']} | {r['preset']} | {med('teacher')} | "
                         f"{med('labeled')} | {med('kd')} | {med('meta')} | "
                         f"{_num(r.get('meta_overhead'), '{:.2f}')} |")
        lines += ["", "### Full LiST run per preset: wall time by phase (seconds)", "",
                  "| model | device | preset | labels | unlabelled | total | setup | teacher | "
                  "pseudo-label | KD | meta | labelled | eval/ckpt | peak RSS MB |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in full:
            ph = r["phases"]["phases"]

            def sec(p: str, ph: dict = ph) -> str:
                return _num((ph.get(p) or {}).get("seconds"), "{:.1f}")

            lines.append(
                f"| {r['model']} | {r['device']} | {r['preset']} | {r['n_labeled']} | "
                f"{r['n_unlabeled']} | {r['train_s']:.1f} | {sec('setup')} | {sec('teacher')} | "
                f"{sec('pseudo_label')} | {sec('kd')} | {sec('meta')} | {sec('labeled')} | "
                f"{sec('eval_checkpoint')} | {_num(r.get('peak_rss_mb'))} |")
        lines.append("")
    est = [r for r in runs if r["section"] == "estimate"]
    if est:
        lines += ["Estimates (not measured: step counts of the preset × median step times "
                  "measured above):", ""]
        lines += [f"- {r['model']} / {r['device']} / preset `{r['preset']}`: about "
                  f"{_duration(r['estimated_s'])} ({r['basis']})" for r in est]
        lines.append("")
    lines += _aims_speed(inf, full)
    errors = [r for r in data["speed"]["runs"] if r.get("error")]
    lines += [f"- failed: {r.get('section')} {r.get('preset', '')} {r['error']}" for r in errors]
    return lines


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _aims_speed(inf: list[dict], full: list[dict]) -> list[str]:
    if not inf and not full:
        return []
    out = ["Speed aims (computed from the tables):"]
    for r in inf:
        verdict = "met" if r["ratio"] >= 1.5 else "NOT met"
        out.append(f"- predict_proba ≥ 1.5x the plain loop, {r['model']} {r['data']} "
                   f"{r['device']}: {verdict} ({r['ratio']:.2f}x)")
    for r in full:
        if r.get("meta_overhead") is not None:
            verdict = "met" if r["meta_overhead"] <= 2 else "NOT met"
            out.append(f"- meta step ≤ 2x a plain unlabelled step, {r['model']} {r['device']} "
                       f"{r['preset']}: {verdict} ({r['meta_overhead']:.2f}x)")
        if r["preset"] == "quick" and r["device"] == "cpu":
            verdict = "met" if r["train_s"] < 300 else "NOT met"
            out.append(f"- quick preset, {r['n_labeled']} labels + {r['n_unlabeled']} unlabelled "
                       f"< 5 min on CPU, {r['model']}: {verdict} ({r['train_s'] / 60:.1f} min)")
    return out + [""]


def active_summary(records: list[dict]) -> list[str]:
    """bench.active: mean ± std accuracy per data set and strategy, and each strategy's paired
    seed-by-seed difference to random."""
    lines = []
    for name in dict.fromkeys(r["data"] for r in records):
        mine = [r for r in records if r["data"] == name]
        strategies = list(dict.fromkeys(r["strategy"] for r in mine))
        by = {s: {r["seed"]: r["accuracy"] for r in mine if r["strategy"] == s} for s in strategies}
        lines.append(f"{name}:")
        for s in strategies:
            acc = [100 * a for a in by[s].values()]
            sd = f" ± {statistics.stdev(acc):4.1f}" if len(acc) > 1 else " (one seed: no spread)"
            lines.append(f"  {s:18s} accuracy {statistics.mean(acc):5.1f}{sd} ({len(acc)} seeds)")
        for s in strategies:
            p = paired_difference({k: 100 * v for k, v in by[s].items()},
                                  {k: 100 * v for k, v in by.get("random", {}).items()})
            if s != "random" and p is not None:
                spread = "" if math.isnan(p["std"]) else f" ± {p['std']:.1f}"
                lines.append(f"  {s} - random: {p['mean']:+.1f}{spread} points, ahead on "
                             f"{p['wins']} of {len(p['seeds'])} seeds (aim: >= +2)")
    return lines


def _active_md(files: list[Path]) -> list[str]:
    lines = ["## Which 30 to label (bench.active)", "",
             "A simulated annotator (gold labels) labels 30 examples chosen by each strategy; "
             "LiST (quick preset) then trains on them. What each strategy does: "
             "`bench/active.py`.", ""]
    for path in sorted(files, reverse=True):
        data = json.loads(path.read_text())
        m = data.get("machine") or {}
        lines += [f"### {path.stem}", "",
                  f"Machine: {m.get('name')}, {m.get('cpus_usable')} usable CPU(s), GPU: "
                  f"{m.get('gpu') or 'none'}; model {data.get('model')}, max length "
                  f"{data.get('max_length')}. Last command: `{data.get('command')}` (started "
                  f"{data.get('started')}, load {m.get('loadavg_at_start')}).", "", "```",
                  *active_summary(data.get("runs", [])), "```", ""]
    return lines


def render(files: list[Path], active_files: list[Path] = ()) -> str:
    lines = ["# Benchmark results", "",
             "Generated by `python -m bench.report` from `bench/results/*.json`; do not edit "
             "by hand (numbers come only from those files; cells never measured say "
             "\"not run\"). How to run and what each number means: `bench/README.md`.", ""]
    if NOTES_MD.exists():
        lines += [NOTES_MD.read_text().strip(), ""]
    for path in sorted(files, reverse=True):
        data = load_results(path)
        if not all(kind in data for kind in ("fewshot", "speed")):
            continue  # another probe's output (bench.concurrency): its numbers are in the notes
        m, v = data.get("machine") or {}, data.get("versions") or {}
        lines += [f"## {path.stem}", "",
                  f"Machine: {m.get('name')}, {m.get('cpu')}, {m.get('cpus_usable')} usable "
                  f"CPU(s), torch threads {m.get('torch_threads')}, {m.get('memory_gb')} GB RAM, "
                  f"GPU: {m.get('gpu') or 'none'}. Load average at start: "
                  f"{m.get('loadavg_at_start')}.",
                  "", "Versions: " + ", ".join(f"{k} {val}" for k, val in sorted(v.items())), "",
                  "Commands:", ""]
        for kind in ("fewshot", "speed"):
            lines += [f"- `{c['command']}` (started {c['started_at']}, load {c.get('loadavg')})"
                      for c in data[kind]["commands"]]
        lines.append("")
        lines += _fewshot_md(data)
        lines += _speed_md(data)
    if active_files:
        lines += _active_md(list(active_files))
    return "\n".join(lines).rstrip() + "\n"


def markdown_path(results_dir: Path) -> Path:
    """bench/RESULTS.md for the real results folder; a RESULTS.md beside any other folder."""
    same = Path(results_dir).resolve() == RESULTS_DIR.resolve()
    return RESULTS_MD if same else Path(results_dir) / "RESULTS.md"


def write_markdown(results_dir: Path | None = None, out: Path | None = None) -> Path:
    folder = Path(results_dir or RESULTS_DIR)
    out = Path(out or RESULTS_MD)
    out.write_text(render(sorted(folder.glob("*.json")), sorted(folder.glob("active/*.json"))))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--out", type=Path, default=RESULTS_MD)
    args = parser.parse_args(argv)
    print(write_markdown(args.results_dir, args.out))


if __name__ == "__main__":
    main()
