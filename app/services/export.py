"""Export a trained run: a zip with the adapter files, a model card and (optionally) the
merged full model. The unzipped folder reloads with `PromptClassifier.from_pretrained`."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import ServiceError
from app.services.runs import model_artifact, round_metrics
from app.services.training import data_counts
from db.models import SUCCEEDED, Artifact, Project, Run
from db.session import write_transaction
from db.settings import get_settings

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


@dataclass(frozen=True)
class ExportResult:
    path: Path
    bytes: int
    sha256: str
    files: list[str]


def exportable_runs(session: Session, project_id: int) -> list[Run]:
    """Succeeded training runs that have a saved model, newest first."""
    runs = session.scalars(
        select(Run)
        .where(Run.project_id == project_id, Run.kind == "train", Run.status == SUCCEEDED)
        .order_by(Run.id.desc())
    ).all()
    return [r for r in runs if model_artifact(session, r.id) is not None]


def model_dir(session: Session, run_id: int) -> Path:
    art = model_artifact(session, run_id)
    if art is None:
        raise ServiceError(f"Run #{run_id} has no saved model (did it succeed?).")
    path = Path(art.path)
    if not path.is_dir():
        raise ServiceError(f"The model files of run #{run_id} are missing from {path}.")
    missing = [f for f in ADAPTER_FILES if not (path / f).is_file()]
    if missing:
        raise ServiceError(f"The model of run #{run_id} lacks {', '.join(missing)}.")
    return path


def label_ordered_config(config: dict) -> dict:
    """The adapter config with its verbalizer in class order (`labels`).

    `adapter_config.json` is written with sorted keys, which sorts the verbalizer's label
    names. list_engine before 6c2620b took the class order from the verbalizer, permuting
    `labels` against the probability columns; model folders saved then still load right
    with this (a no-op for folders whose verbalizer is already in class order)."""
    labels, verbalizer = config.get("labels"), config.get("verbalizer")
    if not labels or not isinstance(verbalizer, dict) or list(verbalizer) == list(labels):
        return config
    if set(labels) != set(verbalizer):
        return config
    return {**config, "verbalizer": {name: verbalizer[name] for name in labels}}


def write_adapter_config(folder: Path, config: dict) -> None:
    """Write adapter_config.json keeping the verbalizer's (class) order."""
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2))


def loadable_dir(folder: Path, scratch: Path) -> Path:
    """`folder`, or a copy in `scratch` whose adapter_config.json keeps the class order
    (see `label_ordered_config`)."""
    config = json.loads((folder / "adapter_config.json").read_text())
    fixed = label_ordered_config(config)
    if fixed is config:
        return folder
    scratch.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / "adapter_model.safetensors", scratch / "adapter_model.safetensors")
    write_adapter_config(scratch, fixed)
    return scratch


def _fmt(x) -> str:
    return "-" if x is None else f"{100 * float(x):.1f} %"


def _data_lines(data: dict | None, counts) -> list[str]:
    """The card's data section: the counts recorded when the run started, else today's."""
    if data:
        per_class = data.get("train_per_class") or {}
        return [
            "## Data (when the run started)",
            f"- Training labels: {sum(per_class.values())} "
            f"({', '.join(f'{k}: {v}' for k, v in per_class.items())})",
            f"- Held-out labels (evaluation): {data.get('held_out', 0)}",
            f"- Unlabelled documents: {data.get('unlabelled', 0)}",
            f"- Documents with gold labels: {data.get('gold', 0)}",
            f"- Evaluation examples: {data.get('evaluation', 0)}",
        ]
    return [
        "## Data (counts at export time)",
        f"- Training labels: {counts.train_total} "
        f"({', '.join(f'{k}: {v}' for k, v in counts.train_per_class.items())})",
        f"- Held-out labels (evaluation): {counts.held_out_total}",
        f"- Unlabelled documents: {counts.unlabelled}",
        f"- Documents with gold labels: {counts.gold}",
    ]


def _head_lines(adapter_config: dict | None, metrics: list[dict]) -> list[str]:
    """Which prompt head, length and learning rate the engine chose, and which round this is."""
    from app.services.prompts import head_explanation

    config = adapter_config or {}
    lines = []
    if config.get("head"):
        lines.append(f"- Prompt head: {head_explanation(config['head'], bool(config.get('mlm_head_pretrained')))}")
    if config.get("max_length"):
        lines.append(f"- Max length: {config['max_length']} tokens")
    first = next((m["details"] for m in metrics if m["round"] == 0), {}) or {}
    if first.get("selected_lr"):
        lines.append(f"- Learning rate {first['selected_lr']:g}, chosen by 2-fold "
                     "cross-validation on the training labels")
    selected = (config.get("metrics") or {}).get("selected_round")
    if selected is not None and metrics and selected != metrics[-1]["round"]:
        lines.append(f"- This model is round {selected}, which scored best on the evaluation "
                     f"set (the last round, {metrics[-1]['round']}, scored lower)")
    return lines


def model_card(session: Session, run: Run, adapter_config: dict | None = None,
               merged: bool = False) -> str:
    """The README.md of the export: what the model is, how it was trained, how to use it."""
    cfg = run.config or {}
    lc = cfg.get("list_config") or {}
    project = session.get(Project, run.project_id)
    verbalizer = cfg.get("verbalizer") or {}
    labels = list(verbalizer)
    metrics = round_metrics(session, run.id)
    counts = data_counts(session, run.project_id, labels)
    base = (adapter_config or {}).get("base_model") or cfg.get("model", "default")
    trainable = (adapter_config or {}).get("trainable_parameters")
    lines = [
        f"# Text classifier: {project.name if project else 'project'} (run #{run.id})",
        "",
        "Trained with LiST (Lite Prompted Self-Training): a frozen masked language model with "
        "small trainable adapters, teacher -> student self-training on unlabelled text with "
        "meta re-weighted pseudo-labels.",
        "",
        "## Model",
        f"- Base model: `{base}`",
        f"- Mode: {cfg.get('mode', 'prompt')}",
        *_head_lines(adapter_config, metrics),
        f"- Prompt template: `{cfg.get('template', '')}`",
        "- Labels and label words:",
        *[f"  - `{name}` -> `{word}`" for name, word in verbalizer.items()],
    ]
    if trainable:
        lines.append(f"- Trainable parameters: {int(trainable):,}")
    lines += [
        "",
        "## Training",
        f"- Rounds of self-training: {lc.get('rounds', '-')}",
        f"- Seed: {lc.get('seed', '-')}",
        f"- Teacher steps: {lc.get('teacher_steps', '-')}, unlabelled steps per round: "
        f"{lc.get('unlabeled_steps', '-')}, labelled steps per round: {lc.get('labeled_steps', '-')}",
        f"- Learning rates: teacher {lc.get('teacher_lr', '-')}, student {lc.get('student_lr', '-')}",
        f"- Evaluation set: {cfg.get('eval_source', 'auto')}",
        f"- Device: {run.device or '-'}",
        "",
        *_data_lines(cfg.get("data"), counts),
        "",
        "## Metrics",
    ]
    if metrics:
        lines += ["| round | accuracy | macro-F1 | pseudo-label accuracy |", "|---|---|---|---|"]
        for m in metrics:
            name = "teacher (0)" if m["round"] == 0 else str(m["round"])
            lines.append(
                f"| {name} | {_fmt(m['accuracy'])} | {_fmt(m['macro_f1'])} | "
                f"{_fmt(m['pseudo_label_accuracy'])} |"
            )
    else:
        lines.append("No evaluation set was available: accuracy was not measured.")
    lines += [
        "",
        "## Usage",
        "```python",
        "from list_engine import PromptClassifier",
        "",
        'clf = PromptClassifier.from_pretrained("path/to/this/folder")',
        'print(clf.labels)',
        'print(clf.predict(["some text to classify"]))',
        'print(clf.predict_proba(["some text to classify"]))  # (N, classes), in clf.labels order',
        "```",
        "",
        "The base model is loaded from the name or path above: keep it reachable "
        "(a hub name, or the same local folder).",
        "Command line: `python -m list_engine predict --model-dir path/to/this/folder "
        "--input texts.csv --output predictions.csv` (a CSV with a `text` column).",
    ]
    if merged:
        lines += [
            "",
            "## Merged model (`merged/`)",
            "The adapters folded into the dense weights: a plain `transformers` masked-LM "
            "folder (`AutoModelForMaskedLM.from_pretrained(\"merged\")` with its tokenizer). "
            "Classify by reading the mask-position logits of the label words listed in "
            "`merged/list_prompt.json` (template, label words, labels in class order); it runs "
            "at the speed of the base model, without adapter layers.",
        ]
    return "\n".join(lines) + "\n"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_export(session: Session, run_id: int, *, merged: bool = False,
                 out_dir: Path | None = None) -> ExportResult:
    """Write `exports/run-{id}[-merged].zip` under the data directory and record it as an
    artifact of kind "export"."""
    run = session.get(Run, run_id)
    if run is None:
        raise ServiceError(f"Run #{run_id} does not exist.")
    src = model_dir(session, run_id)
    try:
        adapter_config = json.loads((src / "adapter_config.json").read_text())
    except (OSError, ValueError):
        adapter_config = {}
    out_dir = Path(out_dir or get_settings().data_dir / "exports")
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"run-{run_id}{'-merged' if merged else ''}"
    zip_path = out_dir / f"{name}.zip"
    tmp_zip = zip_path.with_suffix(".zip.tmp")
    files: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(
        tmp_zip, "w", compression=zipfile.ZIP_DEFLATED
    ) as zf:
        for f in sorted(src.rglob("*")):
            if f.is_file() and f.name not in ("README.md", "adapter_config.json"):
                arc = f"{name}/{f.relative_to(src).as_posix()}"
                zf.write(f, arc)
                files.append(arc)
        fixed = label_ordered_config(adapter_config) if adapter_config else None
        if fixed:
            zf.writestr(f"{name}/adapter_config.json", json.dumps(fixed, indent=2))
        else:
            zf.write(src / "adapter_config.json", f"{name}/adapter_config.json")
        files.append(f"{name}/adapter_config.json")
        zf.writestr(f"{name}/README.md", model_card(session, run, adapter_config, merged))
        files.append(f"{name}/README.md")
        if merged:
            from list_engine import PromptClassifier

            clf = PromptClassifier.from_pretrained(loadable_dir(src, Path(tmp) / "fixed"),
                                                   device="cpu")
            clf.merge()
            merged_dir = Path(tmp) / "merged"
            clf.save_merged(merged_dir)
            for f in sorted(merged_dir.rglob("*")):
                if f.is_file():
                    arc = f"{name}/merged/{f.relative_to(merged_dir).as_posix()}"
                    zf.write(f, arc)
                    files.append(arc)
    tmp_zip.replace(zip_path)
    size, digest = zip_path.stat().st_size, _sha256(zip_path)
    with write_transaction(session):
        session.add(Artifact(run_id=run_id, kind="export", path=str(zip_path), sha256=digest,
                             bytes=size))
    return ExportResult(zip_path, size, digest, files)


def unpack(zip_path: Path, dest: Path) -> Path:
    """Extract an export zip; returns the model folder inside it."""
    with zipfile.ZipFile(zip_path) as zf:
        for member in zf.namelist():
            target = (dest / member).resolve()
            if not target.is_relative_to(dest.resolve()):  # a prefix check lets dest-evil/ by
                raise ServiceError(f"Unsafe path in zip: {member}")
        zf.extractall(dest)
    folders = [p for p in dest.iterdir() if p.is_dir()]
    return folders[0] if len(folders) == 1 else dest


def copy_model_dir(session: Session, run_id: int, dest: Path) -> Path:
    """The run's model folder copied to `dest` (for tests and the command line)."""
    shutil.copytree(model_dir(session, run_id), dest, dirs_exist_ok=True)
    return dest
