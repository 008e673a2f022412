"""Speed and memory: inference throughput, training step times, a full LiST run by phase.

    python -m bench.speed --model default

1. Inference: ``PromptClassifier.predict_proba`` against a plain ``transformers`` loop (same
   prompts, same batch size, each batch padded to its longest prompt, texts in corpus order,
   i.e. mixed lengths) on MR sentences and BBC articles: texts/s, tokens/s and their ratio,
   measured in the same process, best of ``--repeats``.
2. A full LiST run per preset (30 MR labels + ``--n-unlabeled`` MR sentences), in a fresh
   process: wall time split by phase from the engine's callback events, the median step time
   of each phase (teacher and student labelled steps, KD = plain unlabelled steps, meta =
   meta-weighted unlabelled steps), the meta/KD ratio, and the peak RSS of that process.
   Presets not run get an estimate (their step counts × the measured step times), marked so.
3. Everything again on CUDA when a GPU is visible (``--devices``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import report
from bench.data import LOADERS, TaskData, make_split, resolve_bench_model
from bench.fewshot import parse_overrides
from bench.runner import command_line, machine_info, quiet_process, run_isolated, utc_now, versions


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _best_time(fn, repeats: int, device: str) -> float:
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def plain_predict_proba(model, tokenizer, prompts: list[str], label_ids: list[int],
                        batch_size: int, max_length: int, device: str) -> np.ndarray:
    """What a user would write with transformers alone: batches in the given order, each
    padded to its longest prompt, full MLM logits, softmax over the label words at the mask."""
    import torch

    out = []
    with torch.inference_mode():
        for i in range(0, len(prompts), batch_size):
            enc = tokenizer(prompts[i:i + batch_size], padding="longest", truncation=True,
                            max_length=max_length, return_tensors="pt").to(device)
            logits = model(**enc).logits  # (B, T, V)
            is_mask = enc["input_ids"] == tokenizer.mask_token_id  # (B, T)
            pos = is_mask.float().argmax(dim=1)  # (B,) first mask (0 if truncated away)
            rows = torch.arange(len(pos), device=logits.device)
            out.append(logits[rows, pos][:, label_ids].softmax(-1).float().cpu().numpy())
    return np.concatenate(out)


def inference_benchmark(model: str, model_name: str, task: TaskData, texts: list[str],
                        batch_size: int, max_length: int, device: str,
                        repeats: int = 2) -> dict[str, Any]:
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from list_engine import PromptClassifier, Verbalizer

    device = _resolve_device(device)
    clf = PromptClassifier.create(model=model, template=task.template, verbalizer=task.words,
                                  mode="prompt", max_length=max_length, device=device)
    tokenizer = AutoTokenizer.from_pretrained(model)
    plain = AutoModelForMaskedLM.from_pretrained(model).to(device).eval()
    label_ids = Verbalizer(task.words).token_ids(tokenizer)
    prompts = [task.template.format(text=t, mask=tokenizer.mask_token) for t in texts]
    lengths = [int(sum(m)) for m in tokenizer(prompts, truncation=True,
                                                max_length=max_length)["attention_mask"]]
    n_tokens = sum(lengths)

    def engine() -> None:
        clf.predict_proba(texts, batch_size=batch_size)

    def baseline() -> None:
        plain_predict_proba(plain, tokenizer, prompts, label_ids, batch_size, max_length, device)

    clf.predict_proba(texts[:batch_size], batch_size=batch_size)  # warm-up
    plain_predict_proba(plain, tokenizer, prompts[:batch_size], label_ids, batch_size,
                        max_length, device)
    t_plain = _best_time(baseline, repeats, device)
    t_engine = _best_time(engine, repeats, device)
    return {
        "section": "inference", "model": model_name, "data": task.name, "device": device,
        "n_texts": len(texts), "batch_size": batch_size, "max_length": max_length,
        "mean_tokens": n_tokens / len(texts), "max_tokens": max(lengths), "repeats": repeats,
        "engine": {"seconds": t_engine, "texts_s": len(texts) / t_engine,
                   "tokens_s": n_tokens / t_engine},
        "plain": {"seconds": t_plain, "texts_s": len(texts) / t_plain,
                  "tokens_s": n_tokens / t_plain},
        "ratio": t_plain / t_engine,
    }


def list_run(model: str, model_name: str, preset: str, task: TaskData, labeled: list,
             unlabeled: list, overrides: dict, device: str) -> dict[str, Any]:
    """One full LiST run (meant for a fresh process), timed by phase."""
    import torch

    from bench.timing import PhaseTimer
    from list_engine import LiSTConfig, LiSTTrainer, PromptClassifier

    config = LiSTConfig.preset(preset, **{"seed": 0, "device": device, **overrides})
    clf = PromptClassifier.create(model=model, template=task.template, verbalizer=task.words,
                                  mode=config.mode, adapter=config.adapter,
                                  max_length=config.max_length, device=config.device)
    timer = PhaseTimer()
    t0 = time.perf_counter()
    result = LiSTTrainer(clf, config, labeled=labeled, unlabeled=unlabeled,
                         callbacks=[timer]).train()
    train_s = time.perf_counter() - t0
    phases = timer.summary()
    med = {p: (phases["phases"].get(p) or {}).get("median_step_s")
           for p in ("teacher", "kd", "meta", "labeled")}
    overhead = med["meta"] / med["kd"] if med["meta"] and med["kd"] else None
    return {
        "section": "list_run", "model": model_name, "preset": preset, "data": task.name,
        "device": str(clf.device), "n_labeled": len(labeled), "n_unlabeled": len(unlabeled),
        "train_s": train_s, "status": result.status, "phases": phases,
        "median_step_s": med, "meta_overhead": overhead, "config": config.to_dict(),
        "torch_threads": torch.get_num_threads(),
    }


def estimate_preset(measured: dict[str, Any], preset: str, n_unlabeled: int,
                    overrides: dict) -> dict[str, Any]:
    """Wall time of ``preset`` from its step counts and the step times of a measured run.

    Step time is scaled linearly with the batch size when the presets' batch sizes differ,
    and pseudo-labelling time per text is taken from the measured run."""
    from list_engine import LiSTConfig

    ref = LiSTConfig.from_dict(measured["config"])
    cfg = LiSTConfig.preset(preset, **overrides)
    med = measured["median_step_s"]
    ph = measured["phases"]["phases"]
    lab_scale = cfg.labeled_batch_size / ref.labeled_batch_size
    unl_scale = cfg.unlabeled_batch_size / ref.unlabeled_batch_size
    meta_steps = cfg.unlabeled_steps - cfg.kd_steps
    per_text = (ph.get("pseudo_label", {}).get("seconds", 0.0)
                / max(1, ref.rounds * min(ref.unlabeled_sample_size or n_unlabeled, n_unlabeled)))
    sample = min(cfg.unlabeled_sample_size or n_unlabeled, n_unlabeled)
    kd_step = med["kd"] or med["meta"] or 0.0
    meta_step = med["meta"] or kd_step
    lab_step = med["labeled"] or med["teacher"] or 0.0
    secs = (cfg.teacher_steps * (med["teacher"] or lab_step) * lab_scale
            + cfg.rounds * (cfg.kd_steps * kd_step * unl_scale + meta_steps * meta_step * unl_scale
                            + cfg.labeled_steps * lab_step * lab_scale + sample * per_text))
    return {"section": "estimate", "model": measured["model"], "device": measured["device"],
            "preset": preset, "estimated_s": secs, "n_unlabeled": n_unlabeled,
            "basis": f"{cfg.total_steps} steps; step times of the measured "
                     f"`{measured['preset']}` run, scaled by batch size"}


def run_speed(model: str, tasks: dict[str, TaskData], *, model_name: str | None = None,
              devices: list[str], presets: list[str], n_sentences: int = 512,
              n_articles: int = 128, batch_size: int = 64, n_labeled: int = 30,
              n_unlabeled: int = 2000,
              overrides: dict | None = None, repeats: int = 2, isolate: bool = True,
              output: Path | None = None, log=print) -> list[dict]:
    """``tasks``: {"mr": TaskData, "bbc": TaskData} (either may be missing)."""
    from list_engine import PRESETS, LiSTConfig

    overrides = dict(overrides or {})
    model_path = resolve_bench_model(model)
    model_name = model_name or model
    max_length = LiSTConfig.preset("quick", **overrides).max_length
    records: list[dict] = []

    def keep(rec: dict) -> None:
        rec.setdefault("finished_at", utc_now())
        records.append(rec)
        if output is not None:
            report.append_run(output, "speed", rec)

    for device in devices:
        for name, n in (("mr", n_sentences), ("bbc", n_articles)):
            if name not in tasks or n <= 0:
                continue
            texts = [e.text for e in tasks[name].examples[:n]]
            rec = run_isolated(inference_benchmark, {
                "model": model_path, "model_name": model_name, "task": tasks[name],
                "texts": texts, "batch_size": batch_size, "max_length": max_length,
                "device": device, "repeats": repeats}, isolate=isolate)
            rec.setdefault("section", "inference")
            keep(rec)
            log(f"inference {name} {device}: " + (rec.get("error") or
                f"engine {rec['engine']['texts_s']:.1f} texts/s, plain "
                f"{rec['plain']['texts_s']:.1f} texts/s, ratio {rec['ratio']:.2f}"))
        if "mr" not in tasks:
            continue
        split = make_split(tasks["mr"], 0, n_labeled, max_unlabeled=n_unlabeled, max_test=1)
        measured = None
        for preset in presets:
            rec = run_isolated(list_run, {
                "model": model_path, "model_name": model_name, "preset": preset,
                "task": tasks["mr"], "labeled": split.labeled, "unlabeled": split.unlabeled,
                "overrides": overrides, "device": device}, isolate=isolate)
            rec.setdefault("section", "list_run")
            rec.setdefault("preset", preset)
            keep(rec)
            if rec.get("error"):
                log(f"LiST {preset} {device}: FAILED {rec['error']}")
                continue
            measured = measured or rec
            log(f"LiST {preset} {device}: {rec['train_s']:.1f}s, meta/KD "
                f"{rec['meta_overhead']}, peak RSS {rec['peak_rss_mb']} MB")
        if measured is not None:
            for preset in PRESETS:
                if preset not in presets:
                    keep(estimate_preset(measured, preset, len(split.unlabeled), overrides))
    return records


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.speed", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="default", help="'default', 'mpnet', hub name or path")
    p.add_argument("--devices", default="auto",
                   help="comma list (cpu,cuda); 'auto' = cpu, plus cuda when a GPU is visible")
    p.add_argument("--presets", default="quick,paper", help="LiST presets to run in full")
    p.add_argument("--n-sentences", type=int, default=512, help="MR sentences for inference")
    p.add_argument("--n-articles", type=int, default=128, help="BBC articles for inference")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-labeled", type=int, default=30, help="labelled MR sentences")
    p.add_argument("--n-unlabeled", type=int, default=2000, help="unlabelled MR sentences")
    p.add_argument("--repeats", type=int, default=2, help="inference timings: best of N")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="LiSTConfig field for the LiST runs")
    p.add_argument("--no-isolate", action="store_true", help="no fresh process per measurement")
    p.add_argument("--threads", type=int, default=None,
                   help="torch/OpenMP threads per process (default: torch's choice)")
    p.add_argument("--machine", default=None)
    p.add_argument("--output", type=Path, default=None)
    p.add_argument("--no-report", action="store_true")
    return p


def main(argv: list[str] | None = None) -> list[dict]:
    import torch

    args = build_parser().parse_args(argv)
    quiet_process(args.threads)
    devices = args.devices.split(",")
    if devices == ["auto"]:
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    machine = machine_info(args.machine)
    output = args.output or report.results_path(machine["name"])
    report.start_section(output, "speed", command_line("bench.speed", argv), machine, versions())
    tasks = {name: LOADERS[name]() for name in ("mr", "bbc")}
    records = run_speed(args.model, tasks, devices=devices,
                        presets=[p for p in args.presets.split(",") if p],
                        n_sentences=args.n_sentences, n_articles=args.n_articles,
                        batch_size=args.batch_size, n_labeled=args.n_labeled,
                        n_unlabeled=args.n_unlabeled,
                        overrides=parse_overrides(args.overrides), repeats=args.repeats,
                        isolate=not args.no_isolate, output=output,
                        log=lambda s: print(s, flush=True))
    if not args.no_report:
        print(report.write_markdown(output.parent, report.markdown_path(output.parent)),
              file=sys.stderr)
    return records


if __name__ == "__main__":
    main()

