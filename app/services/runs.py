"""Runs of a project: list, live progress, the data behind the charts, and the queue actions
(cancel, retry, resume) that the queue module carries out."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.services import ServiceError, users
from db import queries
from db.models import (
    CANCELLED,
    CANCELLING,
    FAILED,
    FINISHED_STATUSES,
    OWNER,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Artifact,
    Label,
    LabelClass,
    PseudoLabel,
    RoundMetric,
    Run,
    RunStep,
    utcnow,
)
from db.writes import retry_busy

STATUS_ICONS = {
    QUEUED: "⏳", RUNNING: "▶️", CANCELLING: "⏹️", CANCELLED: "⏹️", FAILED: "❌", SUCCEEDED: "✅",
}


@dataclass(frozen=True)
class RunRow:
    id: int
    name: str  # "Run #2", "Prediction #1": what people see (Run.title)
    kind: str
    status: str
    progress: float
    phase: str | None
    current_round: int | None
    total_rounds: int | None
    device: str | None
    created_at: object
    started_at: object
    finished_at: object
    duration_s: float | None
    eta_s: float | None
    attempts: int
    error: str | None
    model: str | None
    preset: str | None
    accuracy: float | None

    @property
    def title(self) -> str:
        return self.name

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


def duration_s(run: Run, now=None) -> float | None:
    if run.started_at is None:
        return None
    end = run.finished_at or now or utcnow()
    return max(0.0, (end - run.started_at).total_seconds())


def eta_s(session: Session, run: Run) -> float | None:
    """Seconds left of a running training run, priced from its own measured step times
    (see app/services/eta.py); None while nothing has been measured yet."""
    from app.services import eta

    if run.status not in (RUNNING, CANCELLING) or run.kind != "train" or run.step is None:
        return None
    cfg = run.config or {}
    data = cfg.get("data") or {}
    rates = eta.measured_rates(_segment_ends(session, run.id))
    return eta.remaining_seconds(
        cfg.get("list_config") or {}, int(run.step), int(run.current_round or 0), rates,
        n_pool=int(data.get("unlabelled") or 0), n_eval=int(data.get("evaluation") or 0))


def _segment_ends(session: Session, run_id: int) -> list:
    """(round, phase, global_step, created_at) of the first and the last sampled step of
    each (round, phase) segment, in write order: all that `eta.measured_rates` reads of a
    segment, without loading every step row (the Live progress header asks every few
    seconds, and a run keeps up to 2,000 of them)."""
    ends = session.execute(
        select(func.min(RunStep.id), func.max(RunStep.id))
        .where(RunStep.run_id == run_id).group_by(RunStep.round, RunStep.phase)
    ).all()
    ids = {i for pair in ends for i in pair}
    if not ids:
        return []
    return session.execute(
        select(RunStep.round, RunStep.phase, RunStep.global_step, RunStep.created_at)
        .where(RunStep.id.in_(ids)).order_by(RunStep.id)
    ).all()


def _last_accuracy(session: Session, run_id: int) -> float | None:
    return session.scalar(
        select(RoundMetric.accuracy)
        .where(RoundMetric.run_id == run_id)
        .order_by(RoundMetric.round.desc())
        .limit(1)
    )


def to_row(session: Session, run: Run, now=None) -> RunRow:
    cfg = run.config or {}
    lc = cfg.get("list_config") or {}
    return RunRow(
        id=run.id, name=run.title, kind=run.kind, status=run.status, progress=float(run.progress or 0.0),
        phase=run.phase, current_round=run.current_round, total_rounds=run.total_rounds,
        device=run.device, created_at=run.created_at, started_at=run.started_at,
        finished_at=run.finished_at, duration_s=duration_s(run, now), eta_s=eta_s(session, run),
        attempts=run.attempts, error=run.error, model=cfg.get("model"),
        preset=cfg.get("preset") or lc.get("preset"),
        accuracy=_last_accuracy(session, run.id) if run.kind == "train" else None,
    )


def list_runs(session: Session, project_id: int, kind: str | None = None) -> list[RunRow]:
    now = utcnow()
    return [to_row(session, r, now) for r in queries.list_runs(session, project_id, kind=kind)]


def runs_signature(rows: list[RunRow]) -> tuple:
    """What changes when a run is queued, resumed, retried or finishes: (id, status,
    attempts) of each run. A page compares two of these to know it must redraw."""
    return tuple((r.id, r.status, r.attempts) for r in rows)


def charts_signature(session: Session, run: Run) -> tuple:
    """A cheap fingerprint (one query) of what the Live progress page's charts other than
    the growing curves are drawn from: the run's status, round and attempt, its
    round metrics (each evaluation, and a resumed run rewriting one), its pseudo-labels
    (made once per round) and the project's training labels (the class distribution).
    The page redraws those charts only when it changes. The training loss and the meta
    weights, which change every second or few while a round trains, are not in it: the
    page redraws their two charts on a slower timer instead."""
    def one(column, model, *where):
        return select(column).select_from(model).where(*where).scalar_subquery()

    metric = RoundMetric.run_id == run.id
    pseudo = PseudoLabel.run_id == run.id
    label = (Label.project_id == run.project_id, Label.held_out.is_(False))
    row = session.execute(select(
        one(func.count(), RoundMetric, metric),
        one(func.max(RoundMetric.created_at), RoundMetric, metric),
        one(func.count(), PseudoLabel, pseudo),
        one(func.max(PseudoLabel.round), PseudoLabel, pseudo),
        one(func.count(), Label, *label),
        one(func.max(Label.updated_at), Label, *label),
    )).one()
    return (run.status, run.current_round, run.attempts, *row)


# How often the Live progress page's live parts rerun, in seconds: (the header with the
# progress bar, status, elapsed time and ETA; the loss and meta-weight curves). Each rerun
# costs the server and, more, the browser (headless Chromium spends 0.1-0.3 s of CPU on a
# header rerun, ~0.5 s on redrawing the two curves; bench/live_page_cost.py measures the
# page): quick in the first minute after a run is queued or starts, when a short run
# changes fast and someone has just pressed Start; slow once it has run a while, when a
# few seconds more or less change nothing that matters. The other charts redraw only when
# their data changed (`charts_signature`).
LIVE_YOUNG_SECONDS = 60.0
LIVE_REFRESH_YOUNG = (2.0, 10.0)
LIVE_REFRESH_STEADY = (15.0, 60.0)


def live_refresh_seconds(run: Run, now=None) -> tuple[float, float]:
    """(header, curves) refresh intervals of the Live progress page for `run`."""
    since = run.started_at or run.queued_at or run.created_at
    if since is None:
        return LIVE_REFRESH_YOUNG
    age = ((now or utcnow()) - since).total_seconds()
    return LIVE_REFRESH_YOUNG if age < LIVE_YOUNG_SECONDS else LIVE_REFRESH_STEADY


def queue_ahead(session: Session, run: Run | None = None) -> list[Run]:
    """The runs a worker will take before `run` (before a new run when None): those
    running, and those queued earlier, in every project (the queue is first in, first out)."""
    stmt = select(Run).where(Run.status.in_((QUEUED, RUNNING, CANCELLING)))
    if run is not None:
        stmt = stmt.where(Run.id != run.id, (Run.status != QUEUED) | (Run.queued_at < run.queued_at)
                          | ((Run.queued_at == run.queued_at) & (Run.id < run.id)))
    return list(session.scalars(stmt.order_by(Run.queued_at, Run.id)))


def wait_message(session: Session, run: Run | None = None, workers: int = 1) -> str | None:
    """In words, what a run queued now (or `run`) waits for; None when it starts at once."""
    ahead = queue_ahead(session, run)
    if len(ahead) < max(1, workers):
        return None
    parts = []
    for r in ahead[:3]:
        if r.status == QUEUED:
            parts.append(f"{r.title} (queued)")
        else:
            left = eta_s(session, r)
            parts.append(f"{r.title} (running"
                         + (f", about {_minutes(left)} left)" if left is not None else ")"))
    more = f" and {len(ahead) - 3} more" if len(ahead) > 3 else ""
    who = "This run" if run is not None else "A new run"
    return (f"{who} waits in the queue behind {', '.join(parts)}{more}: each worker "
            "trains one run at a time, so it starts when a worker is free.")


def _minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min"


def title_of(session: Session, run_id: int | None) -> str:
    """"Run #2" for a run id (the number people see); the id itself if the run is gone."""
    run = session.get(Run, run_id) if run_id is not None else None
    return run.title if run is not None else f"run #{run_id}"


def get_run(session: Session, run_id: int, project_id: int | None = None) -> Run:
    run = queries.get_run(session, run_id)  # fresh from the database
    if run is None or (project_id is not None and run.project_id != project_id):
        raise ServiceError(f"Run #{run_id} does not exist (any more).")
    return run


# ----------------------------------------------------------------------------- actions


def cancel_run(session: Session, run_id: int) -> Run:
    from db import jobs

    run = get_run(session, run_id)
    users.require(session, run.project_id, OWNER)
    if run.status in FINISHED_STATUSES:
        raise ServiceError(f"{run.title} has already finished ({run.status}).")
    try:
        retry_busy(lambda: jobs.request_cancel(session, run_id), "cancel")
    except jobs.JobError as exc:
        raise ServiceError(str(exc)) from exc
    return get_run(session, run_id)


def retry_run(session: Session, run_id: int) -> Run:
    """Queue a failed or cancelled run again (from scratch)."""
    from db import jobs

    run = get_run(session, run_id)
    users.require(session, run.project_id, OWNER)
    if run.status not in (FAILED, CANCELLED):
        raise ServiceError(f"Only failed or cancelled runs can be retried ({run.title} is "
                           f"{run.status}).")
    try:
        retry_busy(lambda: jobs.retry(session, run_id), "retry")
    except jobs.JobError as exc:
        raise ServiceError(str(exc)) from exc
    return get_run(session, run_id)


def resume_run(session: Session, run_id: int) -> Run:
    """Queue a failed or cancelled run again, continuing after its last finished round."""
    from db import jobs

    run = get_run(session, run_id)
    users.require(session, run.project_id, OWNER)
    if run.status not in (FAILED, CANCELLED):
        raise ServiceError(f"Only failed or cancelled runs can be resumed ({run.title} is "
                           f"{run.status}).")
    if last_checkpoint_round(session, run_id) is None:
        raise ServiceError(
            f"{run.title} has no finished round to resume from: retry it instead."
        )
    try:
        retry_busy(lambda: jobs.resume(session, run_id), "resume")
    except jobs.JobError as exc:
        raise ServiceError(str(exc)) from exc
    return get_run(session, run_id)


def last_checkpoint_round(session: Session, run_id: int) -> int | None:
    art = queries.latest_checkpoint(session, run_id)
    return None if art is None else art.round


def allowed_actions(session: Session, run: Run | RunRow) -> list[str]:
    if run.status in (QUEUED, RUNNING):
        return ["cancel"]
    actions = []
    if queries.can_retry(session, run.id):
        actions.append("retry")
    if queries.can_resume(session, run.id):
        actions.append("resume")
    return actions


# ----------------------------------------------------------------------------- chart data


def round_metrics(session: Session, run_id: int) -> list[dict]:
    return [
        {
            "round": m.round,
            "accuracy": m.accuracy,
            "macro_f1": m.macro_f1,
            "pseudo_label_accuracy": m.pseudo_label_accuracy,
            "details": m.details or {},
        }
        for m in queries.round_metrics(session, run_id)
    ]


def evaluation_text(run: Run) -> str | None:
    """Which documents the run's accuracy is measured on, in words."""
    cfg = run.config or {}
    saved = (cfg.get("evaluation") or {}).get("message")
    if saved:
        return saved.replace("Evaluation on", "Accuracy measured on", 1)
    return {  # runs started before the message was saved
        "auto": "Accuracy measured on held-out labels and the gold labels of the unlabelled "
                "pool (the run self-trains on those texts, never on their labels).",
        "gold": "Accuracy measured on the gold labels of the unlabelled pool (the run "
                "self-trains on those texts, never on their labels).",
        "held_out": "Accuracy measured on held-out labels (never trained on).",
    }.get(cfg.get("eval_source", "auto"))


def model_choices(metrics: list[dict]) -> str | None:
    """What the engine chose at the start of a run (prompt head, max length, learning rate),
    in words; None before the teacher finished."""
    first = next((m["details"] for m in metrics if m["round"] == 0), None)
    if not first or "head" not in first:
        return None
    parts = [{"similarity": "similarity head (no pretrained MLM head in this model)",
              "mlm": "MLM head", "classic": "classic head"}.get(first["head"], first["head"])]
    if first.get("max_length"):
        parts.append(f"max length {first['max_length']} tokens")
    if first.get("selected_lr"):
        cv = first.get("lr_cv_accuracy") or {}
        detail = ", ".join(f"{k}: {100 * v:.0f} %" for k, v in cv.items())
        parts.append(f"learning rate {first['selected_lr']:g}"
                     + (f" (2-fold cross-validation on the labels: {detail})" if detail else ""))
    return "This run uses the " + "; ".join(parts) + "."


def step_losses(session: Session, run_id: int) -> list[dict]:
    return [
        {"round": r.round, "phase": r.phase, "step": r.step, "global_step": r.global_step,
         "loss": r.loss, "lr": r.lr}
        for r in queries.step_losses(session, run_id)
        if r.loss is not None and math.isfinite(r.loss)
    ]


def meta_weights(session: Session, run_id: int) -> dict[int, list[float]]:
    """Round -> the meta weights of its pseudo-labels (those that were in a meta batch)."""
    out: dict[int, list[float]] = {}
    for row in queries.pseudo_label_weights(session, run_id):
        w = row["meta_weight"]
        if w is not None and math.isfinite(w):
            out.setdefault(row["round"], []).append(float(w))
    return dict(sorted(out.items()))


def pseudo_label_accuracy(session: Session, run_id: int) -> list[dict]:
    """Per round: share of pseudo-labels that agree with the imported gold label (rounds
    with gold only). Prefers the worker's figure; falls back to counting."""
    from_metrics = {
        m["round"]: m["pseudo_label_accuracy"]
        for m in round_metrics(session, run_id)
        if m["pseudo_label_accuracy"] is not None
    }
    hits: Counter = Counter()
    totals: Counter = Counter()
    for row in queries.pseudo_label_weights(session, run_id):
        if row["correct"] is not None:
            totals[row["round"]] += 1
            hits[row["round"]] += int(row["correct"])
    rounds = sorted(set(totals) | set(from_metrics))
    return [
        {
            "round": r,
            "accuracy": from_metrics.get(r, hits[r] / totals[r] if totals[r] else None),
            "n": totals[r],
        }
        for r in rounds
    ]


def pseudo_accuracy_note(session: Session, run: Run) -> str:
    """Why the pseudo-label accuracy chart is empty, in words (shown only when it is)."""
    lc = (run.config or {}).get("list_config") or {}
    if lc.get("self_training") is False or lc.get("rounds") == 0:
        return "This run has no self-training rounds"
    rows = queries.pseudo_label_weights(session, run.id)
    if not rows:
        return "No pseudo-labels yet: the teacher makes them when round 1 starts"
    return "The pseudo-labelled documents have no imported gold label to compare with"


def pseudo_rounds(session: Session, run_id: int) -> list[int]:
    return queries.pseudo_label_rounds(session, run_id)


def class_distribution(session: Session, run: Run, round_: int | None = None) -> dict[str, dict[str, int]]:
    """{"labels": {class: n training labels}, "pseudo": {class: n pseudo-labels of the round}}."""
    rounds = pseudo_rounds(session, run.id)
    if round_ is None and rounds:
        round_ = rounds[-1]
    labels = dict(
        session.execute(
            select(LabelClass.name, func.count())
            .join(Label, Label.label_class_id == LabelClass.id)
            .where(Label.project_id == run.project_id, Label.held_out.is_(False))
            .group_by(LabelClass.name)
        ).all()
    )
    pseudo: dict[str, int] = {}
    if round_ is not None:
        pseudo = dict(
            session.execute(
                select(PseudoLabel.label, func.count())
                .where(PseudoLabel.run_id == run.id, PseudoLabel.round == round_)
                .group_by(PseudoLabel.label)
            ).all()
        )
    order = list((run.config or {}).get("verbalizer", {}).keys()) or sorted(set(labels) | set(pseudo))
    return {
        "labels": {c: int(labels.get(c, 0)) for c in order},
        "pseudo": {c: int(pseudo.get(c, 0)) for c in order},
        "round": round_,
    }


def latest_confusion(session: Session, run_id: int) -> dict | None:
    """The confusion matrix of the latest evaluated round: {"round", "labels", "matrix"}."""
    for m in reversed(round_metrics(session, run_id)):
        d = m["details"]
        if d.get("confusion") and d.get("labels"):
            return {"round": m["round"], "labels": list(d["labels"]), "matrix": d["confusion"]}
    return None


def model_artifact(session: Session, run_id: int) -> Artifact | None:
    return queries.model_artifact(session, run_id)


# The engine's phase names, in words (the progress bar and the ETA say these).
PHASE_WORDS = {
    "select_lr": "choosing the learning rate (cross-validation on your labels)",
    "teacher": "the teacher learns from your labels",
    "kd": "the student learns the pseudo-labels",
    "meta": "the student learns re-weighted pseudo-labels",
    "labeled": "the student learns from your labels",
}


def progress_text(run: Run | RunRow) -> str:
    """One line: where the run is (round, phase, step) for the progress bar."""
    if run.status == QUEUED:
        return "Waiting for a worker"
    parts = []
    if run.kind == "train" and run.current_round is not None:
        if run.current_round == 0:
            parts.append("Teacher (round 0)")
        else:
            parts.append(f"Round {run.current_round} of {run.total_rounds or '?'}")
    if run.phase:
        parts.append(PHASE_WORDS.get(run.phase, str(run.phase)))
    step = getattr(run, "step", None)
    total = getattr(run, "total_steps", None)
    if step is not None and total:
        parts.append(f"step {step}/{total}")
    parts.append(f"{100 * float(run.progress or 0):.0f} %")
    return " · ".join(parts)
