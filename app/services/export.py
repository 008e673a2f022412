"""Export a trained run: a zip with the model folder (list_engine's files + the same model as a
PEFT LoRA adapter), a model card with Hub metadata and (optionally) the merged full model; an
optional push of the same folder to a Hugging Face Hub repository.
The unzipped folder reloads with `PromptClassifier.from_pretrained` or peft."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import ServiceError, round_story, users
from app.services.runs import model_artifact, pseudo_label_accuracy, round_metrics
from app.services.training import data_counts
from db.artifact_store import materialize, reachable
from db.models import OWNER, SUCCEEDED, Artifact, Project, Run
from db.session import write_transaction
from db.settings import get_settings


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
    return [r for r in runs if (art := model_artifact(session, r.id)) is not None
            and reachable(session, art)]


def model_dir(session: Session, run_id: int) -> Path:
    from list_engine.format import read_model_dir

    art = model_artifact(session, run_id)
    run = session.get(Run, run_id)
    name = run.title if run is not None else f"Run #{run_id}"
    if art is None:
        raise ServiceError(f"{name} has no saved model (did it succeed?).")
    path = materialize(session, art)  # here, or fetched from the database (another machine)
    if path is None or not path.is_dir():
        from db.progress import forget_missing_artifacts

        forget_missing_artifacts(session, run_id)  # no row keeps pointing at nothing
        raise ServiceError(f"The model files of {name} were deleted from disk "
                           f"({art.path}). Retry the run to train it again.")
    try:
        read_model_dir(path)
    except (OSError, ValueError) as exc:
        raise ServiceError(f"The model of {name} cannot be read: {exc}") from exc
    return path


def saved_config(folder: Path) -> dict:
    """The model's list_prompt.json (or, for format-1 folders, adapter_config.json)."""
    from list_engine.format import read_model_dir

    try:
        return read_model_dir(folder).config
    except (OSError, ValueError):
        return {}


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
            f"- Unlabelled documents: {data.get('unlabelled', 0)}"
            + (f" (the self-training pool; {data['set_aside']} more with gold labels set aside "
               "for evaluation)" if data.get("set_aside") else ""),
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


def _head_lines(saved: dict | None, metrics: list[dict]) -> list[str]:
    """Which prompt head, length and learning rate the engine chose, and which round this is."""
    from app.services.prompts import head_explanation

    config = saved or {}
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


def _learning_rate_line(lc: dict, metrics: list[dict]) -> str:
    """The learning rates the run used: the one chosen by cross-validation when it chose one
    (the configured ones were then not used), else the configured ones."""
    first = next((m["details"] for m in metrics if m["round"] == 0), {}) or {}
    scale = float(lc.get("student_lr_scale") or 1.0)
    teacher = first.get("selected_lr") or lc.get("teacher_lr")
    student = first.get("selected_lr") or lc.get("student_lr")
    if teacher is None or student is None:
        return "- Learning rates: not recorded"
    how = " (chosen by cross-validation)" if first.get("selected_lr") else ""
    return f"- Learning rates used: teacher {teacher:g}{how}, students {student * scale:g}"


def _hub_datasets(cfg: dict) -> list[str] | None:
    """Hub data set ids the run's data came from, where the run config names them."""
    names = cfg.get("datasets")
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return names or None
    return None


def model_card(session: Session, run: Run, saved: dict | None = None,
               merged: bool = False) -> str:
    """The README.md of the export: Hub metadata (YAML front matter), what the model is, how
    it was trained, in which environment, and how to use it with list_engine or peft.
    `saved`: the model folder's list_prompt.json (see `saved_config`)."""
    from list_engine.hub import card_data, environment_markdown, render_card, usage_markdown

    saved = saved or {}
    cfg = run.config or {}
    lc = cfg.get("list_config") or {}
    project = session.get(Project, run.project_id)
    verbalizer = cfg.get("verbalizer") or {}
    labels = list(verbalizer)
    metrics = round_metrics(session, run.id)
    counts = data_counts(session, run.project_id, labels)
    base = saved.get("base_model") or cfg.get("model", "default")
    trainable = saved.get("trainable_parameters")
    environment = saved.get("environment") or cfg.get("environment")
    lines = [
        f"# Text classifier: {project.name if project else 'project'} ({run.title})",
        "",
        "Trained with LiST (Lite Prompted Self-Training): a frozen language model with "
        "small trainable adapters, teacher -> student self-training on unlabelled text with "
        "meta re-weighted pseudo-labels.",
        "",
        "## Model",
        f"- Base model: `{base}`",
        f"- Mode: {cfg.get('mode', 'prompt')}",
        *_head_lines(saved, metrics),
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
        _learning_rate_line(lc, metrics),
        f"- Evaluation set: {cfg.get('eval_source', 'auto')}",
        *(environment_markdown(environment) if environment else
          [f"- Device: {run.device or '-'}", "- Environment: not recorded"]),
        "",
        *_data_lines(cfg.get("data"), counts),
        "",
        "## Metrics",
    ]
    if metrics:
        lines += ["| round | accuracy | macro-F1 | pseudo-label accuracy |", "|---|---|---|---|"]
        # the Live progress page's figures: the worker's, else counted from the pseudo-labels
        pseudo = {p["round"]: p["accuracy"] for p in pseudo_label_accuracy(session, run.id)}
        for m in metrics:
            name = "teacher (0)" if m["round"] == 0 else str(m["round"])
            lines.append(
                f"| {name} | {_fmt(m['accuracy'])} | {_fmt(m['macro_f1'])} | "
                f"{_fmt(pseudo.get(m['round']))} |"
            )
    else:
        lines.append("No evaluation set was available: accuracy was not measured.")
    story = round_story.round_lines(metrics)
    if len(story) > 1:
        lines += ["", "## What self-training did", *[f"- {line}" for line in story]]
        text = round_story.verdict(metrics)
        if text:
            lines += ["", text]
    lines += ["", *usage_markdown({**saved, "base_model": base}, merged)]
    measured = any(m.get("accuracy") is not None for m in metrics)
    data = card_data({**saved, "base_model": base}, datasets=_hub_datasets(cfg),
                     measured=measured)
    return render_card(data, "\n".join(lines) + "\n")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_export(session: Session, run_id: int, *, merged: bool = False,
                 out_dir: Path | None = None) -> ExportResult:
    """Write `exports/run-{id}[-merged].zip` under the data directory and record it as an
    artifact of kind "export". The zip holds one folder: the model (format-1 folders
    are re-saved in the current format, so peft reads every export), README.md, merged/."""
    from list_engine.hub import export_folder

    run = session.get(Run, run_id)
    if run is None:
        raise ServiceError(f"Run #{run_id} does not exist.")
    users.require(session, run.project_id, OWNER)
    src = model_dir(session, run_id)
    out_dir = Path(out_dir or get_settings().data_dir / "exports")
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"run-{run_id}{'-merged' if merged else ''}"
    zip_path = out_dir / f"{name}.zip"
    tmp_zip = zip_path.with_suffix(".zip.tmp")
    files: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_folder(src, Path(tmp) / name, merged=merged,
                               card=lambda saved: model_card(session, run, saved, merged))
        with zipfile.ZipFile(tmp_zip, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.rglob("*")):
                if f.is_file():
                    arc = f"{name}/{f.relative_to(folder).as_posix()}"
                    info = zipfile.ZipInfo.from_file(f, arc)
                    info.external_attr = 0o100644 << 16  # rw-r--r--, not the temp file's 0600
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with open(f, "rb") as fh, zf.open(info, "w") as out:
                        shutil.copyfileobj(fh, out, 1 << 20)
                    files.append(arc)
    tmp_zip.replace(zip_path)
    size, digest = zip_path.stat().st_size, _sha256(zip_path)
    with write_transaction(session):
        session.add(Artifact(run_id=run_id, kind="export", user_id=users.actor_id(session),
                             path=str(zip_path), sha256=digest,
                             bytes=size))
    return ExportResult(zip_path, size, digest, files)


def push_export(zip_path: Path, repo_id: str, token: str | None = None,
                private: bool = True) -> str:
    """Push the folder inside an export zip to a Hub model repository; returns its URL.
    The zip stays where it is whatever happens (a failed push loses nothing)."""
    from list_engine.hub import HubError, push_to_hub

    if not Path(zip_path).is_file():
        raise ServiceError(f"{zip_path} not found: build the export first.")
    with tempfile.TemporaryDirectory() as tmp:
        folder = unpack(Path(zip_path), Path(tmp))
        try:
            return push_to_hub(folder, (repo_id or "").strip(), token=token, private=private)
        except HubError as exc:
            raise ServiceError(str(exc)) from exc


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
