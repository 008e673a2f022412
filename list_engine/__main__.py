"""Command line: python -m list_engine train | predict | evaluate | export (see --help)."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from pathlib import Path

from .prompts import Example


def read_csv(path: str | Path, require_label: bool = False) -> list[Example]:
    """Rows with `text` (or `text_a`/`text_b`), optional `label` and `id` columns."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = set(reader.fieldnames or [])
        if "text" not in columns and "text_a" not in columns:
            raise SystemExit(f"{path}: needs a 'text' column (or 'text_a'/'text_b' for pairs); "
                             f"found {sorted(columns)}")
        if require_label and "label" not in columns:
            raise SystemExit(f"{path}: needs a 'label' column")
        rows = []
        for i, row in enumerate(reader):
            text = row.get("text") if "text" in columns else row.get("text_a")
            label = row.get("label") if "label" in columns else None
            rows.append(Example(text=text or "", text_b=row.get("text_b") or None,
                                label=label if label not in ("", None) else None,
                                id=row.get("id") or i))
    if require_label and any(ex.label is None for ex in rows):
        raise SystemExit(f"{path}: some rows have an empty label")
    return rows


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m list_engine",
                                description="LiST: few-shot text classification with prompts, "
                                            "adapters and meta re-weighted self-training.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a classifier; writes DIR and DIR/metrics.json")
    t.add_argument("--labeled", required=True, help="CSV with text (or text_a,text_b), label")
    t.add_argument("--unlabeled", help="CSV with text (labels, if any, only for reporting)")
    t.add_argument("--eval", help="labelled CSV evaluated after the teacher and every round")
    t.add_argument("--template", default=None, help="e.g. '{text} It was {mask}.'")
    t.add_argument("--verbalizer", required=True,
                   help='JSON label -> word, e.g. \'{"neg": "terrible", "pos": "great"}\'')
    t.add_argument("--model", default="default", help="default | hub name | local path")
    t.add_argument("--mode", default="prompt", choices=["prompt", "classic", "full"])
    t.add_argument("--preset", default="quick", choices=["quick", "paper"])
    t.add_argument("--rounds", type=int, help="self-training rounds (overrides the preset)")
    t.add_argument("--no-self-training", action="store_true", help="teacher only")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    t.add_argument("--config", default=None,
                   help="JSON object of LiSTConfig overrides, e.g. '{\"teacher_steps\": 50}'")
    t.add_argument("--checkpoint-dir", default=None, help="write round-{r} checkpoints here")
    t.add_argument("--resume-from", default=None, help="a round-{r} checkpoint directory")
    t.add_argument("--no-progress", action="store_true", help="no progress bars")
    t.add_argument("--out", required=True, help="output model directory")

    pr = sub.add_parser("predict", help="predict labels and probabilities for a CSV")
    pr.add_argument("--model-dir", required=True)
    pr.add_argument("--input", required=True)
    pr.add_argument("--output", required=True)
    pr.add_argument("--batch-size", type=_positive_int, default=64)
    pr.add_argument("--device", default="auto")

    ev = sub.add_parser("evaluate", help="print metrics JSON on a labelled CSV")
    ev.add_argument("--model-dir", required=True)
    ev.add_argument("--data", required=True)
    ev.add_argument("--batch-size", type=_positive_int, default=64)
    ev.add_argument("--device", default="auto")
    ex = sub.add_parser("export", help="a model folder to hand over: the current format "
                                       "(list_engine + PEFT files), a model card, optionally "
                                       "the merged model and a push to the Hugging Face Hub")
    ex.add_argument("--model-dir", required=True, help="a folder written by train")
    ex.add_argument("--out", required=True, help="the export folder (new or empty)")
    ex.add_argument("--merged", action="store_true",
                    help="also write the merged full model to OUT/merged")
    ex.add_argument("--push-to", metavar="REPO_ID", default=None,
                    help="then upload OUT to this Hub model repository (token: HF_TOKEN or "
                         "`hf auth login`); a failed push keeps OUT")
    ex.add_argument("--public", action="store_true", help="create the Hub repository public")
    return p


def cmd_train(args) -> int:
    from .callbacks import TqdmCallback
    from .config import LiSTConfig
    from .environment import environment
    from .modeling import PromptClassifier
    from .self_training import LiSTTrainer

    try:
        verbalizer = json.loads(args.verbalizer)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--verbalizer is not valid JSON: {exc}") from exc
    try:
        overrides = json.loads(args.config) if args.config else {}
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--config is not valid JSON: {exc}") from exc
    if not isinstance(overrides, dict):
        raise SystemExit("--config must be a JSON object of LiSTConfig fields, e.g. "
                         "'{\"rounds\": 3}'")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise SystemExit(f"--out {args.out} is an existing file: give a directory for the model")
    overrides["mode"] = args.mode
    if args.rounds is not None:
        overrides["rounds"] = args.rounds
    if args.no_self_training:
        overrides["self_training"] = False
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.device is not None:
        overrides["device"] = args.device
    config = LiSTConfig.preset(args.preset, **overrides)
    labeled = read_csv(args.labeled, require_label=True)
    unlabeled = read_csv(args.unlabeled) if args.unlabeled else []
    evaluation = read_csv(args.eval, require_label=True) if args.eval else None
    start = time.time()
    classifier = PromptClassifier.create(args.model, args.template, verbalizer, mode=args.mode,
                                         max_length=config.max_length, device=config.device,
                                         bf16=config.bf16, adapter=config.adapter)
    trainable, total = classifier.parameter_counts()
    print(f"model {args.model} ({classifier.model_type}), mode {args.mode}: {trainable:,} "
          f"trainable of {total:,} parameters; MLM head pretrained: "
          f"{classifier.mlm_head_pretrained}; prompt head: {classifier.head}", file=sys.stderr)
    callbacks = [] if args.no_progress else [TqdmCallback()]
    trainer = LiSTTrainer(classifier, config, labeled, unlabeled, eval=evaluation,
                          callbacks=callbacks)
    result = trainer.train(checkpoint_dir=args.checkpoint_dir, resume_from=args.resume_from)
    out = Path(args.out)
    summary = {"status": result.status, "rounds": result.metrics,
               "rounds_completed": result.rounds_completed, "meta_stats": result.meta_stats,
               "wall_time_s": time.time() - start, "config": config.to_dict(),
               "mlm_head_pretrained": classifier.mlm_head_pretrained, "head": classifier.head,
               "trainable_parameters": trainable, "total_parameters": total,
               "environment": environment(classifier.device)}
    classifier.save_pretrained(out, metrics={"rounds": result.metrics})
    from .self_training import _json_safe

    (out / "metrics.json").write_text(json.dumps(_json_safe(summary), indent=2, sort_keys=True))
    final = result.metrics[-1] if result.metrics else {}
    print(json.dumps({"status": result.status, "out": str(out),
                      "accuracy": final.get("accuracy"), "macro_f1": final.get("macro_f1")}))
    return 0


def cmd_predict(args) -> int:
    from .csv_safety import spreadsheet_safe
    from .modeling import PromptClassifier

    clf = PromptClassifier.from_pretrained(args.model_dir, device=args.device)
    examples = read_csv(args.input)
    probs = clf.predict_proba(examples, batch_size=args.batch_size)
    with open(args.input, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    fields = list(rows[0].keys()) if rows else ["text"]
    fields += ["prediction"] + [f"prob_{label}" for label in clf.labels]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row, p in zip(rows, probs, strict=True):
            row = {k: spreadsheet_safe(v) for k, v in row.items()}
            row["prediction"] = clf.labels[int(p.argmax())]
            row.update({f"prob_{label}": f"{float(v):.6f}"
                        for label, v in zip(clf.labels, p, strict=True)})
            writer.writerow(row)
    print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from .modeling import PromptClassifier

    clf = PromptClassifier.from_pretrained(args.model_dir, device=args.device)
    metrics = clf.evaluate(read_csv(args.data, require_label=True), batch_size=args.batch_size)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_export(args) -> int:
    from .export import export_folder
    from .hub import HubError, push_to_hub

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SystemExit(f"--out {out} exists and is not an empty folder: give a new folder")
    export_folder(args.model_dir, out, merged=args.merged)
    print(f"exported to {out}", file=sys.stderr)
    if args.push_to:
        try:
            url = push_to_hub(out, args.push_to, private=not args.public)
        except HubError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 3
        print(f"pushed to {url}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    command = {"train": cmd_train, "predict": cmd_predict, "evaluate": cmd_evaluate,
               "export": cmd_export}[args.command]
    try:
        return command(args)
    except (ValueError, OSError) as exc:  # PromptError, ModelLoadError, bad config/data
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
