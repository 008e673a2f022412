"""Starting a training run: what will run, whether it can, how long it may take.

Plain functions taking a SQLAlchemy session (no Streamlit). The page shows
`training_summary(...)` and calls `start_training(...)`, which re-checks everything and
enqueues a `Run(kind="train")` for the worker.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.services import ServiceError, users
from db.models import (
    OWNER,
    SUCCEEDED,
    Document,
    Label,
    LabelClass,
    PromptConfig,
    Run,
    utcnow,
)
from db.session import write_transaction
from db.settings import get_settings
from db.writes import retry_busy

MODES = ("prompt", "classic")
PRESETS = ("quick", "paper", "custom")
EVAL_SOURCES = ("auto", "gold", "held_out", "none")
# The knobs the "custom" preset exposes (LiSTConfig field names).
CUSTOM_KNOBS = (
    "rounds",
    "unlabeled_sample_size",
    "teacher_steps",
    "unlabeled_steps",
    "labeled_steps",
    "teacher_lr",
    "student_lr",
    "seed",
    "kd_warmup",
    "meta_reweighting",
    "confidence_threshold",  # 0 = off (None)
    "max_length",  # 0 = from the documents (None)
    "student_init",
    "neighbour_weight",
    "pseudo_label_temperature",
    "balanced_fraction",  # 0 = keep all (None)
    "token_drop",
    "label_init",
    "adapter_layers",  # not a LiSTConfig field: adapters in the top N layers, 0 = every layer
    "auto_lr",  # not a LiSTConfig field: True keeps the preset's lr_candidates
    "keep_round",  # not a LiSTConfig field: one of KEEP_ROUNDS
)
# Which round's model a run saves (and export and predict use): LiSTConfig's keep_best_round
# and best_round_metric.
KEEP_ROUNDS = {
    "best_accuracy": {"keep_best_round": True, "best_round_metric": "accuracy"},
    "best_macro_f1": {"keep_best_round": True, "best_round_metric": "macro_f1"},
    "last": {"keep_best_round": False},
}
START_WORKER_HINT = (
    "Start one in a terminal next to the app with `python -m worker` "
    "(`./scripts/run` starts the app and a worker together)."
)


# ----------------------------------------------------------------------------- config


def build_list_config(preset: str, overrides: dict | None = None, bottleneck: int | None = None) -> dict:
    """`LiSTConfig.preset(...)` with the user's knobs, as the JSON dict the worker reads.

    "custom" starts from "quick". Raises `ServiceError` with the engine's message when a
    value is out of range."""
    from list_engine import AdapterConfig, LiSTConfig

    if preset not in PRESETS:
        raise ServiceError(f"Unknown preset {preset!r}: pick one of {', '.join(PRESETS)}.")
    base = "quick" if preset == "custom" else preset
    knobs = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(knobs) - set(CUSTOM_KNOBS) - {"device", "self_training"}
    if unknown:
        raise ServiceError(f"Unknown training settings: {', '.join(sorted(unknown))}.")
    if knobs.pop("auto_lr", True) is False:  # the learning rates typed in are used as they are
        knobs["lr_candidates"] = None
    keep = knobs.pop("keep_round", "best_accuracy")
    if keep not in KEEP_ROUNDS:
        raise ServiceError(f"Unknown choice of the kept round {keep!r}: pick one of "
                           f"{', '.join(KEEP_ROUNDS)}.")
    knobs.update(KEEP_ROUNDS[keep])
    for name in ("confidence_threshold", "max_length", "balanced_fraction"):  # 0 = off / auto
        if knobs.get(name) == 0:
            knobs[name] = None
    try:
        adapter = LiSTConfig.preset(base).adapter.to_dict()  # the preset's, with the user's
        if bottleneck is not None:
            adapter["bottleneck"] = int(bottleneck)
        if "adapter_layers" in knobs:
            adapter["layers"] = int(knobs.pop("adapter_layers")) or None
        knobs["adapter"] = AdapterConfig(**adapter)
        config = LiSTConfig.preset(base, **knobs)
    except (TypeError, ValueError) as exc:
        raise ServiceError(f"Invalid training settings: {exc}") from exc
    return config.to_dict()


def preset_defaults(preset: str) -> dict:
    """The preset's values of the custom knobs (to pre-fill the form)."""
    cfg = build_list_config("quick" if preset == "custom" else preset)
    out = {k: cfg.get(k) for k in CUSTOM_KNOBS}
    out["auto_lr"] = bool(cfg.get("lr_candidates"))
    out["confidence_threshold"] = cfg.get("confidence_threshold") or 0.0
    out["max_length"] = cfg.get("max_length") or 0
    out["keep_round"] = keep_round_of(cfg)
    out["bottleneck"] = (cfg.get("adapter") or {}).get("bottleneck")
    out["adapter_layers"] = (cfg.get("adapter") or {}).get("layers") or 0
    out["balanced_fraction"] = cfg.get("balanced_fraction") or 0.0
    return out


def keep_round_of(list_config: dict) -> str:
    """The KEEP_ROUNDS key of a run's list_config (runs before the choice: best accuracy)."""
    if list_config.get("keep_best_round") is False:
        return "last"
    return "best_macro_f1" if list_config.get("best_round_metric") == "macro_f1" else \
        "best_accuracy"


# ----------------------------------------------------------------------------- data counts


@dataclass
class DataCounts:
    """What a run would train and evaluate on (label names in verbalizer order)."""

    classes: list[str]
    train_per_class: dict[str, int]
    held_out_per_class: dict[str, int]
    unlabelled: int  # documents without any label: the self-training pool
    gold: int  # documents with an imported gold label
    gold_unlabelled: int  # ... of which unlabelled (pseudo-label accuracy)
    documents: int

    @property
    def train_total(self) -> int:
        return sum(self.train_per_class.values())

    @property
    def held_out_total(self) -> int:
        return sum(self.held_out_per_class.values())


def project_classes(session: Session, project_id: int) -> list[str]:
    return list(
        session.scalars(
            select(LabelClass.name)
            .where(LabelClass.project_id == project_id)
            .order_by(LabelClass.position, LabelClass.id)
        )
    )


def data_counts(session: Session, project_id: int, classes: list[str] | None = None) -> DataCounts:
    classes = list(classes) if classes is not None else project_classes(session, project_id)
    rows = session.execute(
        select(LabelClass.name, Label.held_out, func.count())
        .join(LabelClass, Label.label_class_id == LabelClass.id)
        .where(Label.project_id == project_id)
        .group_by(LabelClass.name, Label.held_out)
    ).all()
    train = dict.fromkeys(classes, 0)
    held = dict.fromkeys(classes, 0)
    for name, held_out, n in rows:
        target = held if held_out else train
        target[name] = target.get(name, 0) + n
    labelled_doc = select(Label.document_id).where(Label.project_id == project_id)
    documents = session.scalar(
        select(func.count()).select_from(Document).where(Document.project_id == project_id)
    ) or 0
    unlabelled = session.scalar(
        select(func.count())
        .select_from(Document)
        .where(Document.project_id == project_id, Document.id.not_in(labelled_doc))
    ) or 0
    gold = session.scalar(
        select(func.count())
        .select_from(Document)
        .where(Document.project_id == project_id, Document.gold_label.is_not(None))
    ) or 0
    gold_unlabelled = session.scalar(
        select(func.count())
        .select_from(Document)
        .where(
            Document.project_id == project_id,
            Document.gold_label.is_not(None),
            Document.id.not_in(labelled_doc),
        )
    ) or 0
    return DataCounts(classes, train, held, unlabelled, gold, gold_unlabelled, documents)


# ----------------------------------------------------------------------------- evaluation set


# "auto" sets aside this share of the gold-labelled unlabelled documents (at most
# EVAL_RESERVE_MAX) as the evaluation set: the run never sees them, not even unlabelled.
EVAL_RESERVE_SHARE = 0.2
EVAL_RESERVE_MAX = 1000


@dataclass(frozen=True)
class EvaluationSet:
    source: str  # what is measured on: "held_out", "gold", "unseen_gold", joined by "+", or "none"
    size: int
    message: str
    reserved: int = 0  # gold documents taken out of the self-training pool for it


def reserve_size(gold_unlabelled: int) -> int:
    return min(EVAL_RESERVE_MAX, int(gold_unlabelled * EVAL_RESERVE_SHARE))


def resolve_evaluation(counts: DataCounts, requested: str = "auto") -> EvaluationSet:
    """What the worker will evaluate on (mirrors worker/data.py): held-out labels unless
    "none"; for "auto" plus a share of the gold-labelled unlabelled documents set aside
    (never seen by the run); for "gold" plus all of them (the pool it self-trains on)."""
    if requested not in EVAL_SOURCES:
        raise ServiceError(f"Unknown evaluation source {requested!r}.")
    held = counts.held_out_total if requested != "none" else 0
    gold = counts.gold_unlabelled if requested == "gold" else 0
    unseen = reserve_size(counts.gold_unlabelled) if requested == "auto" else 0
    parts = []
    if held:
        parts.append(f"{held} held-out labels (never trained on)")
    if unseen:
        parts.append(f"{unseen} documents with an imported gold label, set aside (the run "
                     "never sees them)")
    if gold:
        parts.append(f"{gold} unlabelled documents with an imported gold label (the run "
                     "self-trains on these texts, never on their labels)")
    if not parts:
        why = {
            "none": "No evaluation set chosen",
            "held_out": "No labels are held out",
            "gold": "No unlabelled document has a gold label and no label is held out",
            "auto": "No labels are held out and the corpus has too few gold labels",
        }[requested]
        return EvaluationSet(
            "none", 0,
            f"{why}: accuracy and macro-F1 cannot be measured. Hold out some labels (or "
            "import gold labels) to measure them.",
        )
    source = "+".join(name for name, n in (("held_out", held), ("unseen_gold", unseen),
                                           ("gold", gold)) if n)
    return EvaluationSet(source, held + unseen + gold,
                         "Evaluation on " + " and ".join(parts) + ".", reserved=unseen)


def reserve_eval_documents(session: Session, project_id: int, classes: list[str],
                           n: int, seed: int = 0) -> list[int]:
    """`n` gold-labelled documents without a label (gold label in `classes`), drawn at
    random (reproducibly), sorted: the evaluation set a run keeps out of its pool."""
    if n <= 0:
        return []
    labelled_doc = select(Label.document_id).where(Label.project_id == project_id)
    ids = list(session.scalars(
        select(Document.id).where(
            Document.project_id == project_id, Document.gold_label.in_(classes),
            Document.id.not_in(labelled_doc),
        ).order_by(Document.id)
    ))
    return sorted(random.Random(seed).sample(ids, min(n, len(ids))))


def hold_out_labels(
    session: Session, project_id: int, per_class: int = 2, seed: int = 0, keep_train: int = 2
) -> int:
    """Mark up to `per_class` training labels of each class as held out (evaluation set),
    always leaving at least `keep_train` per class for training. Returns how many moved."""
    users.require(session, project_id, OWNER)
    if per_class < 1:
        raise ServiceError("Hold out at least one label per class.")
    rng = random.Random(seed)
    moved = 0
    with write_transaction(session):
        labels = session.scalars(
            select(Label)
            .where(Label.project_id == project_id, Label.held_out.is_(False))
            .order_by(Label.id)
        ).all()
        by_class: dict[int, list[Label]] = {}
        for label in labels:
            by_class.setdefault(label.label_class_id, []).append(label)
        for group in by_class.values():
            n = min(per_class, max(0, len(group) - keep_train))
            for label in rng.sample(group, n):
                label.held_out = True
                moved += 1
    return moved


def release_held_out(session: Session, project_id: int) -> int:
    """Put every held-out label back into the training set."""
    users.require(session, project_id, OWNER)
    with write_transaction(session):
        labels = session.scalars(
            select(Label).where(Label.project_id == project_id, Label.held_out.is_(True))
        ).all()
        for label in labels:
            label.held_out = False
    return len(labels)


# ----------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    host: str
    device: str
    heartbeat_age_s: float


def fresh_workers(session: Session, now=None) -> list[WorkerInfo]:
    """Workers with a fresh heartbeat that did not stop (from the queue's read API)."""
    from db import queries

    now = now or utcnow()
    return [
        WorkerInfo(w.id, w.host, w.device, (now - w.heartbeat_at).total_seconds())
        for w in queries.live_workers(session)
    ]


# ----------------------------------------------------------------------------- prompt checks


def prompt_problems(config: PromptConfig, classes: list[str], tokenizer=None,
                    mode: str | None = None) -> list[str]:
    """Everything wrong with using this prompt config for the project's label set (the
    tokenizer checks come from the prompt page's `validate`)."""
    from app.services import prompts

    verbalizer = dict(config.verbalizer or {})
    problems: list[str] = []
    missing = [c for c in classes if c not in verbalizer]
    extra = [c for c in verbalizer if c not in classes]
    if missing:
        problems.append(
            f"Prompt v{config.version} was saved before these labels existed: "
            f"{', '.join(missing)}. Save the prompt again on the prompt page."
        )
    if extra:
        problems.append(
            f"Prompt v{config.version} names labels that are no longer in the label set: "
            f"{', '.join(extra)}. Save the prompt again on the prompt page."
        )
    if tokenizer is not None and not missing and not extra and len(classes) >= 2:
        problems.extend(
            p for p in prompts.validate(config.template, verbalizer, tokenizer, None, mode or config.mode)
            if p not in problems
        )
    return problems


@dataclass(frozen=True)
class ModelFacts:
    """What the train page says about the classifier a run would build."""

    trainable: int
    total: int
    head: str  # mlm | similarity | classic
    mlm_head_pretrained: bool
    model_max_length: int


def parameter_counts(model: str, template: str, verbalizer: dict, mode: str,
                     adapter: dict | None = None) -> ModelFacts:
    """Parameters, prompt head and length limit of the classifier a run would build with
    the run's adapter settings (loads the model: cache the result)."""
    from list_engine import AdapterConfig, PromptClassifier

    clf = PromptClassifier.create(
        model=model, template=template, verbalizer=dict(verbalizer), mode=mode,
        adapter=AdapterConfig.from_dict(adapter), device="cpu",
    )
    trainable, total = clf.parameter_counts()
    return ModelFacts(trainable, total, clf.head, bool(clf.mlm_head_pretrained),
                      int(clf.model_max_length))


@dataclass(frozen=True)
class LengthChoice:
    max_length: int
    model_limit: int
    truncated_share: float  # documents longer than max_length (of those looked at)
    chosen: bool  # True: from the documents (preset max_length None); False: the preset's


def length_choice(session: Session, project_id: int, tokenizer, model_limit: int,
                  configured: int | None, sample: int = 500) -> LengthChoice:
    """The max_length a run will use: the preset's, or (None) the 95th percentile of the
    project's documents capped by the model, as the engine computes it."""
    from list_engine.lengths import length_for, token_counts

    texts = list(session.scalars(select(Document.text).where(Document.project_id == project_id)
                                 .order_by(func.random()).limit(sample)))
    counts = token_counts(texts, tokenizer, model_limit)  # tokenised once, used twice
    length = configured or length_for(counts, model_limit)
    share = sum(c > length for c in counts) / len(counts) if counts else 0.0
    return LengthChoice(int(length), int(model_limit), share, configured is None)


# ----------------------------------------------------------------------------- time estimate


@dataclass(frozen=True)
class TimeEstimate:
    low_s: float
    high_s: float
    basis: str  # how it was computed, shown next to the number

    @property
    def text(self) -> str:
        return f"{format_duration(self.low_s)} to {format_duration(self.high_s)}"

    @property
    def short(self) -> str:
        """Compact range for a metric tile: "20-80 s", "2-9 min", "1.5-6.0 h"."""
        lo, hi = self.low_s, self.high_s
        if hi < 90:
            return f"{lo:.0f}–{hi:.0f} s"
        if hi < 5400:
            return f"{max(1, round(lo / 60))}–{max(1, round(hi / 60))} min"
        return f"{lo / 3600:.1f}–{hi / 3600:.1f} h"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {s:02d} s"
    return f"{s} s"


def work_units(cfg: dict, n_unlabelled: int, n_eval: int) -> float:
    """Training work in "labelled-batch steps": teacher + per round (unlabelled steps, with
    the meta steps about 3x dearer, + labelled steps), plus the inference passes."""
    rounds = int(cfg.get("rounds", 0)) if cfg.get("self_training", True) else 0
    lb = max(1, int(cfg.get("labeled_batch_size", 4)))
    ub = max(1, int(cfg.get("unlabeled_batch_size", 16)))
    sample = cfg.get("unlabeled_sample_size") or n_unlabelled
    sample = min(int(sample), n_unlabelled)
    warm = float(cfg.get("kd_warmup_fraction", 0.6)) if cfg.get("kd_warmup", True) else 0.0
    meta = 3.0 if cfg.get("meta_reweighting", True) else 1.0
    u_steps = int(cfg.get("unlabeled_steps", 0))
    u_cost = (ub / lb) * u_steps * (warm + (1 - warm) * meta)
    per_round = u_cost + int(cfg.get("labeled_steps", 0))
    inference = (rounds * sample + (rounds + 1) * n_eval) / (3 * lb)  # forward only, ~1/3
    return (int(cfg.get("teacher_steps", 0)) + _selection_steps(cfg) + rounds * per_round
            + inference)


def _selection_steps(cfg: dict) -> int:
    """Steps of the learning-rate cross-validation (the engine's own count; 0 when off)."""
    from list_engine import LiSTConfig

    try:
        return LiSTConfig.from_dict(cfg).selection_steps
    except (TypeError, ValueError):
        return 0


def seconds_per_unit_history(session: Session, model: str, device: str | None) -> float | None:
    """Measured seconds per work unit of the latest succeeded run with this model/device."""
    runs = session.scalars(
        select(Run)
        .where(Run.kind == "train", Run.status == SUCCEEDED, Run.started_at.is_not(None))
        .order_by(Run.finished_at.desc())
        .limit(20)
    ).all()
    for run in runs:
        cfg = run.config or {}
        if cfg.get("model") != model or (device and run.device and run.device != device):
            continue
        units = cfg.get("_work_units")
        if units and run.finished_at:
            return (run.finished_at - run.started_at).total_seconds() / float(units)
    return None


def estimate_time(cfg: dict, counts: DataCounts, n_eval: int, total_params: int | None,
                  device: str | None, measured_s_per_unit: float | None = None) -> TimeEstimate:
    """An honest range. With a measured speed from an earlier run on the same model and
    device: that speed, +-30 %. Without: a FLOP count (6 x params x tokens per example)
    against a throughput typical of the device, wide (x0.5 .. x2) because it is a guess."""
    units = work_units(cfg, counts.unlabelled, n_eval)
    if measured_s_per_unit:
        mid = units * measured_s_per_unit
        return TimeEstimate(0.7 * mid, 1.3 * mid, "measured speed of an earlier run on this device")
    params = total_params or 23_000_000
    tokens = int(cfg.get("max_length") or 128) * int(cfg.get("labeled_batch_size", 4))
    flops = 6.0 * params * tokens * units
    dev = (device or "cpu").lower()
    if dev.startswith("cuda"):
        throughput, where = 4e12, "a GPU"
    else:
        throughput, where = 2.5e10, "a CPU"
    mid = flops / throughput + 10  # + model load
    return TimeEstimate(
        0.5 * mid, 2.0 * mid,
        f"rough guess from the model size and step counts on {where}; refined after a first run",
    )


def preset_estimates(counts: DataCounts, n_eval: int, total_params: int | None,
                     device: str | None, measured_s_per_unit: float | None = None,
                     max_length: int | None = None) -> dict[str, TimeEstimate]:
    """What each fixed preset would cost on this corpus and this machine (the same basis as
    `estimate_time`; `max_length` as chosen for these documents)."""
    out = {}
    for preset in ("quick", "paper"):
        cfg = build_list_config(preset)
        if max_length:
            cfg["max_length"] = max_length
        out[preset] = estimate_time(cfg, counts, n_eval, total_params, device,
                                    measured_s_per_unit)
    return out


# ----------------------------------------------------------------------------- summary


@dataclass
class TrainingSummary:
    counts: DataCounts
    evaluation: EvaluationSet
    problems: list[str] = field(default_factory=list)  # refuse to start when non-empty
    warnings: list[str] = field(default_factory=list)
    workers: list[WorkerInfo] = field(default_factory=list)

    @property
    def can_start(self) -> bool:
        return not self.problems


def training_summary(session: Session, project_id: int, prompt_config_id: int | None,
                     eval_source: str = "auto", tokenizer=None,
                     mode: str | None = None) -> TrainingSummary:
    """Everything the train page shows before "Start", including the reasons it refuses."""
    classes = project_classes(session, project_id)
    config = session.get(PromptConfig, prompt_config_id) if prompt_config_id else None
    counts = data_counts(session, project_id, classes)
    problems: list[str] = []
    warnings: list[str] = []
    if len(classes) < 2:
        problems.append(
            f"The label set has {len(classes)} class{'es' if len(classes) != 1 else ''}: "
            "a classifier needs at least 2. Add labels on the label set page."
        )
    empty = [c for c in classes if counts.train_per_class.get(c, 0) == 0]
    if classes and empty:
        problems.append(
            f"No training label yet for: {', '.join(empty)}. Label at least one document of "
            "each class (held-out labels do not count)."
        )
    if config is None or config.project_id != project_id:
        problems.append("No prompt selected: save a prompt on the prompt page first.")
    else:
        problems.extend(prompt_problems(config, classes, tokenizer, mode))
    if counts.documents and counts.unlabelled == 0:
        problems.append(
            "Every document is labelled: self-training needs unlabelled documents. "
            "Import more text."
        )
    elif counts.documents == 0:
        problems.append("The project has no documents: import a corpus first.")
    lo = [c for c in classes if 0 < counts.train_per_class.get(c, 0) < 4]
    if lo:
        warnings.append(f"Very few labels for: {', '.join(lo)} (fewer than 4 each).")
    evaluation = resolve_evaluation(counts, eval_source)
    if evaluation.source == "none":
        warnings.append(evaluation.message)
    workers = fresh_workers(session)
    if not workers:
        warnings.append(
            "No worker is running (no fresh heartbeat): the run will wait in the queue until "
            "one starts. " + START_WORKER_HINT
        )
    return TrainingSummary(counts, evaluation, problems, warnings, workers)


def start_training(session: Session, project_id: int, prompt_config_id: int, *,
                   mode: str = "prompt", model: str | None = None,
                   list_config: dict | None = None, eval_source: str = "auto",
                   tokenizer=None, preset: str | None = None) -> Run:
    """Check everything again and enqueue a training run for the worker."""
    from db import jobs

    users.require(session, project_id, OWNER)
    if mode not in MODES:
        raise ServiceError(f"Unknown mode {mode!r}: pick prompt or classic.")
    summary = training_summary(session, project_id, prompt_config_id, eval_source, tokenizer, mode)
    if summary.problems:
        raise ServiceError("Cannot start: " + " ".join(summary.problems))
    config = session.get(PromptConfig, prompt_config_id)
    model = (model or config.model or "default").strip() or "default"
    if model == "default":
        model = get_settings().model
    list_config = dict(list_config or build_list_config("quick"))
    list_config["mode"] = mode
    run_config = {
        "template": config.template,
        "verbalizer": dict(config.verbalizer),
        "model": model,
        "mode": mode,
        "list_config": list_config,
        "eval_source": eval_source,
        "prompt_version": config.version,
        "preset": preset,
        # What the data looked like when the run was started (for the model card).
        "data": {
            "train_per_class": summary.counts.train_per_class,
            "held_out": summary.counts.held_out_total,
            # the self-training pool, as the Train page shows it: the unlabelled documents
            # less the gold ones set aside for evaluation
            "unlabelled": summary.counts.unlabelled - summary.evaluation.reserved,
            "set_aside": summary.evaluation.reserved,
            "gold": summary.counts.gold,
            "evaluation": summary.evaluation.size,
        },
    }
    if summary.evaluation.reserved:
        run_config["eval_documents"] = reserve_eval_documents(
            session, project_id, list(config.verbalizer), summary.evaluation.reserved,
            seed=int(list_config.get("seed") or 0))
    # What accuracy will be measured on, in words, for the progress page and model card.
    run_config["evaluation"] = {"source": summary.evaluation.source,
                                "message": summary.evaluation.message}
    # Work units let the next estimate use this run's measured speed.
    run_config["_work_units"] = work_units(
        list_config, summary.counts.unlabelled - len(run_config.get("eval_documents", [])),
        summary.evaluation.size)
    if session.in_transaction():
        session.commit()
    try:
        return retry_busy(lambda: jobs.enqueue(
            session, project_id=project_id, kind="train", config=run_config,
            prompt_config_id=prompt_config_id,
        ), "start training")
    except jobs.JobError as exc:
        raise ServiceError(str(exc)) from exc

