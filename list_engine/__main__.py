"""Command line: python -m list_engine train | predict | evaluate | export (see --help)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from .prompts import Example
from .reading import MAX_DOCUMENT_CHARS


def read_data(spec: str):
    """A data argument as a DataFrame of strings: a file (CSV, TSV, JSONL, JSON, TXT,
    Parquet), a `datasets` folder or a Hub dataset id; `DIR:SPLIT` picks a split."""
    from .reading import ReadError, Table, split_source

    source, split = split_source(spec)
    try:
        return Table(source, split=split).read()
    except ReadError as exc:
        raise ReadError(f"{spec}: {exc}") from None


def read_examples(spec: str, require_label: bool = False, table=None) -> list[Example]:
    """Rows with a text column (`text`, `sentence`, ... or `text_a` + `text_b` for pairs),
    an optional `label` and `id`."""
    from .reading import LABEL_NAMES, TEXT_NAMES, ReadError, text_column_warning

    df = read_data(spec) if table is None else table
    lower = {c.lower(): c for c in df.columns}
    text = next((lower[n] for n in TEXT_NAMES if n in lower), None)
    label = next((lower[n] for n in LABEL_NAMES if n in lower), None)
    if text is None:
        raise ReadError(f"{spec}: needs a text column named 'text' (or one of "
                        f"{', '.join(TEXT_NAMES[1:])}; 'text_a'/'text_b' for pairs); found "
                        f"{list(df.columns)}")
    if require_label and label is None:
        raise ReadError(f"{spec}: needs a 'label' column; found {list(df.columns)}")
    if (warning := text_column_warning(df[text].head(1000), text)) is not None:
        print(f"warning: {spec}: {warning}", file=sys.stderr)
    texts = df[text].tolist()
    texts_b = df[lower["text_b"]].tolist() if "text_b" in lower else [None] * len(df)
    labels = df[label].str.strip().tolist() if label else [""] * len(df)
    ids = df[lower["id"]].tolist() if "id" in lower else [""] * len(df)
    if require_label and "" in labels:
        raise ReadError(f"{spec}: row {labels.index('') + 1:,} has an empty label")
    return [Example(text=t, text_b=b or None, label=lab or None, id=i or n)
            for n, (t, b, lab, i) in enumerate(zip(texts, texts_b, labels, ids, strict=True))]


DATA_HELP = f"""DATA: a table is a file (.csv, .tsv, .jsonl, .json, .txt with one document per
line, .parquet), a folder written by `datasets` save_to_disk, or a Hub dataset id; DIR:SPLIT
picks one split (e.g. data/sst2:train). The text column is 'text' (or sentence, document,
content, body, review; text_a + text_b for pairs); labels are in 'label'. Documents may be up
to {MAX_DOCUMENT_CHARS:,} characters long."""


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
    t = sub.add_parser("train", help="train a classifier; writes DIR and DIR/metrics.json",
                       epilog=DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--labeled", required=True, help="table with text (or text_a,text_b), label "
                   "(see DATA below)")
    t.add_argument("--unlabeled", help="table with text (labels, if any, only for reporting)")
    t.add_argument("--eval", help="labelled table evaluated after the teacher and every round")
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

    pr = sub.add_parser("predict", help="predict labels and probabilities for a table",
                        epilog=DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    pr.add_argument("--model-dir", required=True)
    pr.add_argument("--input", required=True, help="table with a text column (see DATA)")
    pr.add_argument("--output", required=True)
    pr.add_argument("--batch-size", type=_positive_int, default=64)
    pr.add_argument("--device", default="auto")
    pr.add_argument("--int8", action="store_true",
                    help="CPU only: the encoder's dense layers in int8 (dynamic quantization), "
                    "faster; check its accuracy on your data with evaluate --int8 "
                    "(list_engine/README.md)")

    ev = sub.add_parser("evaluate", help="print metrics JSON on a labelled table",
                        epilog=DATA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("--model-dir", required=True)
    ev.add_argument("--data", required=True, help="labelled table (see DATA)")
    ev.add_argument("--batch-size", type=_positive_int, default=64)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--int8", action="store_true", help="as predict --int8")
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
    labeled = read_examples(args.labeled, require_label=True)
    unlabeled = read_examples(args.unlabeled) if args.unlabeled else []
    evaluation = read_examples(args.eval, require_label=True) if args.eval else None
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
    from .predictions import prediction_columns

    table = read_data(args.input)
    examples = read_examples(args.input, table=table)
    clf = PromptClassifier.from_pretrained(args.model_dir, device=args.device, int8=args.int8)
    probs = clf.predict_proba(examples, batch_size=args.batch_size)
    out = table.map(spreadsheet_safe)  # no formula runs when the CSV opens in a spreadsheet
    for column, values in prediction_columns(clf.labels, probs).items():
        out[column] = values
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(args.output, index=False)
    print(f"wrote {len(out)} predictions to {args.output}", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from .modeling import PromptClassifier

    clf = PromptClassifier.from_pretrained(args.model_dir, device=args.device, int8=args.int8)
    metrics = clf.evaluate(read_examples(args.data, require_label=True), batch_size=args.batch_size)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_export(args) -> int:
    from .hub import HubError, export_folder, push_to_hub

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
