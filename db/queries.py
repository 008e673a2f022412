"""Read API for the app: plain functions taking a session, returning ORM rows or small
dataclasses. They only read (safe to call every second from a live view while a worker
writes: SQLite WAL readers never wait for the writer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from db.jobs import ACTIVE_STATUSES, is_stale, latest_checkpoint
from db.models import (
    CANCELLED,
    FAILED,
    QUEUED,
    Artifact,
    Document,
    PseudoLabel,
    RoundMetric,
    Run,
    RunStep,
    Worker,
    utcnow,
)
from db.settings import get_settings

__all__ = [
    "RunProgress", "PseudoLabelView", "PSEUDO_LABEL_SORTS",
    "get_run", "run_progress", "list_runs", "active_runs", "queue_position",
    "round_metrics", "step_losses", "pseudo_label_rounds", "pseudo_labels",
    "count_pseudo_labels", "pseudo_label_weights", "live_workers", "list_workers",
    "run_artifacts", "model_artifact", "latest_checkpoint", "can_resume", "can_retry",
]


@dataclass(frozen=True)
class RunProgress:
    """A run's status for a progress bar / live view."""

    run_id: int
    kind: str
    status: str
    phase: str | None
    current_round: int | None
    total_rounds: int | None
    step: int | None
    total_steps: int | None
    progress: float
    attempts: int
    max_attempts: int
    error: str | None
    worker_id: str | None
    heartbeat_at: datetime | None
    heartbeat_fresh: bool  # False for a running run whose worker went silent
    resumed_from_round: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def get_run(session: Session, run_id: int) -> Run | None:
    return session.get(Run, run_id, populate_existing=True)


def run_progress(session: Session, run_id: int) -> RunProgress | None:
    run = get_run(session, run_id)
    if run is None:
        return None
    fresh = run.status not in ACTIVE_STATUSES or not is_stale(
        run.heartbeat_at, utcnow(), get_settings().stale_seconds
    )
    return RunProgress(
        run_id=run.id, kind=run.kind, status=run.status, phase=run.phase,
        current_round=run.current_round, total_rounds=run.total_rounds, step=run.step,
        total_steps=run.total_steps, progress=run.progress or 0.0, attempts=run.attempts,
        max_attempts=run.max_attempts, error=run.error, worker_id=run.worker_id,
        heartbeat_at=run.heartbeat_at, heartbeat_fresh=fresh,
        resumed_from_round=run.resumed_from_round, created_at=run.created_at,
        started_at=run.started_at, finished_at=run.finished_at,
    )


def list_runs(
    session: Session,
    project_id: int,
    *,
    kind: str | None = None,
    statuses: tuple[str, ...] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Run]:
    """Runs of a project, newest first."""
    stmt = select(Run).where(Run.project_id == project_id)
    if kind:
        stmt = stmt.where(Run.kind == kind)
    if statuses:
        stmt = stmt.where(Run.status.in_(statuses))
    stmt = stmt.order_by(Run.created_at.desc(), Run.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(stmt.execution_options(populate_existing=True)))


def active_runs(session: Session, project_id: int | None = None) -> list[Run]:
    """Queued, running and cancelling runs (oldest first), of one project or all."""
    stmt = select(Run).where(Run.status.in_((QUEUED, *ACTIVE_STATUSES)))
    if project_id is not None:
        stmt = stmt.where(Run.project_id == project_id)
    stmt = stmt.order_by(Run.queued_at, Run.id).execution_options(populate_existing=True)
    return list(session.scalars(stmt))


def queue_position(session: Session, run_id: int) -> int | None:
    """1 = next to be claimed; None if the run is not queued."""
    run = get_run(session, run_id)
    if run is None or run.status != QUEUED:
        return None
    ahead = session.scalar(
        select(func.count()).select_from(Run).where(
            Run.status == QUEUED,
            (Run.queued_at < run.queued_at) | and_(Run.queued_at == run.queued_at, Run.id < run.id),
        )
    )
    return int(ahead) + 1


def round_metrics(session: Session, run_id: int) -> list[RoundMetric]:
    """One row per evaluated round (0 = teacher), in round order; `details` holds the full
    metrics dict (per_class, confusion, labels, ...)."""
    return list(session.scalars(
        select(RoundMetric).where(RoundMetric.run_id == run_id).order_by(RoundMetric.round)
        .execution_options(populate_existing=True)
    ))


def step_losses(
    session: Session, run_id: int, *, round: int | None = None, after_id: int | None = None
) -> list[RunStep]:
    """Sampled training losses in order; `after_id` fetches only rows newer than the last seen."""
    stmt = select(RunStep).where(RunStep.run_id == run_id)
    if round is not None:
        stmt = stmt.where(RunStep.round == round)
    if after_id is not None:
        stmt = stmt.where(RunStep.id > after_id)
    return list(session.scalars(stmt.order_by(RunStep.id)))


def pseudo_label_rounds(session: Session, run_id: int) -> list[int]:
    return list(session.scalars(
        select(PseudoLabel.round).where(PseudoLabel.run_id == run_id).distinct()
        .order_by(PseudoLabel.round)
    ))


@dataclass(frozen=True)
class PseudoLabelView:
    """One pseudo-label joined with its document (for the inspector)."""

    document_id: int
    round: int
    label: str
    confidence: float
    meta_weight: float | None
    probs: list
    text: str
    text_b: str | None
    gold_label: str | None

    @property
    def agrees_with_gold(self) -> bool | None:
        return None if self.gold_label is None else self.gold_label == self.label


# sort key -> ORDER BY (NULL weights sort last in both directions)
PSEUDO_LABEL_SORTS = {
    "weight": (PseudoLabel.meta_weight.is_(None), PseudoLabel.meta_weight, PseudoLabel.id),
    "-weight": (PseudoLabel.meta_weight.is_(None), PseudoLabel.meta_weight.desc(), PseudoLabel.id),
    "confidence": (PseudoLabel.confidence, PseudoLabel.id),
    "-confidence": (PseudoLabel.confidence.desc(), PseudoLabel.id),
    "document": (PseudoLabel.document_id,),
}


def _pseudo_label_filter(
    stmt: Select,
    run_id: int,
    round: int,
    min_weight: float | None,
    max_weight: float | None,
    label: str | None,
    disagrees_with_gold: bool | None,
    min_confidence: float | None,
    max_confidence: float | None,
) -> Select:
    stmt = stmt.where(PseudoLabel.run_id == run_id, PseudoLabel.round == round)
    if min_weight is not None:
        stmt = stmt.where(PseudoLabel.meta_weight >= min_weight)
    if max_weight is not None:
        stmt = stmt.where(PseudoLabel.meta_weight <= max_weight)
    if min_confidence is not None:
        stmt = stmt.where(PseudoLabel.confidence >= min_confidence)
    if max_confidence is not None:
        stmt = stmt.where(PseudoLabel.confidence <= max_confidence)
    if label is not None:
        stmt = stmt.where(PseudoLabel.label == label)
    if disagrees_with_gold is True:
        stmt = stmt.where(Document.gold_label.is_not(None), Document.gold_label != PseudoLabel.label)
    elif disagrees_with_gold is False:
        stmt = stmt.where(Document.gold_label == PseudoLabel.label)
    return stmt


def pseudo_labels(
    session: Session,
    run_id: int,
    round: int,
    *,
    min_weight: float | None = None,
    max_weight: float | None = None,
    label: str | None = None,
    disagrees_with_gold: bool | None = None,
    min_confidence: float | None = None,
    max_confidence: float | None = None,
    sort: str = "-weight",
    limit: int = 100,
    offset: int = 0,
) -> list[PseudoLabelView]:
    """Pseudo-labels of one round with their documents, filtered and sorted (`sort` is one
    of PSEUDO_LABEL_SORTS: weight, -weight, confidence, -confidence, document).
    `disagrees_with_gold=True` keeps documents whose gold label differs from the pseudo
    label; False keeps those that agree; None ignores gold."""
    if sort not in PSEUDO_LABEL_SORTS:
        raise ValueError(f"sort {sort!r} is not one of {sorted(PSEUDO_LABEL_SORTS)}")
    stmt = select(PseudoLabel, Document).join(Document, Document.id == PseudoLabel.document_id)
    stmt = _pseudo_label_filter(stmt, run_id, round, min_weight, max_weight, label,
                                disagrees_with_gold, min_confidence, max_confidence)
    stmt = stmt.order_by(*PSEUDO_LABEL_SORTS[sort]).limit(limit).offset(offset)
    return [
        PseudoLabelView(
            document_id=pl.document_id, round=pl.round, label=pl.label,
            confidence=pl.confidence, meta_weight=pl.meta_weight, probs=pl.probs,
            text=doc.text, text_b=doc.text_b, gold_label=doc.gold_label,
        )
        for pl, doc in session.execute(stmt)
    ]


def count_pseudo_labels(
    session: Session,
    run_id: int,
    round: int,
    *,
    min_weight: float | None = None,
    max_weight: float | None = None,
    label: str | None = None,
    disagrees_with_gold: bool | None = None,
    min_confidence: float | None = None,
    max_confidence: float | None = None,
) -> int:
    """How many rows `pseudo_labels` would page through with the same filters."""
    stmt = select(func.count()).select_from(PseudoLabel).join(
        Document, Document.id == PseudoLabel.document_id
    )
    stmt = _pseudo_label_filter(stmt, run_id, round, min_weight, max_weight, label,
                                disagrees_with_gold, min_confidence, max_confidence)
    return int(session.scalar(stmt))


def pseudo_label_weights(session: Session, run_id: int, round: int | None = None) -> list[dict]:
    """Compact rows for the weight plots: round, document_id, label, confidence, meta_weight,
    correct (pseudo label == gold; None without gold)."""
    stmt = select(
        PseudoLabel.round, PseudoLabel.document_id, PseudoLabel.label, PseudoLabel.confidence,
        PseudoLabel.meta_weight, Document.gold_label,
    ).join(Document, Document.id == PseudoLabel.document_id).where(PseudoLabel.run_id == run_id)
    if round is not None:
        stmt = stmt.where(PseudoLabel.round == round)
    return [
        {
            "round": r, "document_id": d, "label": lab, "confidence": c, "meta_weight": w,
            "correct": None if gold is None else gold == lab,
        }
        for r, d, lab, c, w, gold in session.execute(stmt.order_by(PseudoLabel.round, PseudoLabel.id))
    ]


def live_workers(session: Session, *, stale_seconds: float | None = None) -> list[Worker]:
    """Workers that have not stopped and whose heartbeat is fresh."""
    stale_seconds = stale_seconds or get_settings().stale_seconds
    cutoff = utcnow() - timedelta(seconds=stale_seconds)
    return list(session.scalars(
        select(Worker).where(Worker.stopped_at.is_(None), Worker.heartbeat_at >= cutoff)
        .order_by(Worker.started_at).execution_options(populate_existing=True)
    ))


def list_workers(session: Session, *, limit: int = 50) -> list[Worker]:
    """All workers ever registered, newest first."""
    return list(session.scalars(
        select(Worker).order_by(Worker.started_at.desc()).limit(limit)
        .execution_options(populate_existing=True)
    ))


def run_artifacts(session: Session, run_id: int, kind: str | None = None) -> list[Artifact]:
    stmt = select(Artifact).where(Artifact.run_id == run_id)
    if kind is not None:
        stmt = stmt.where(Artifact.kind == kind)
    return list(session.scalars(stmt.order_by(Artifact.kind, Artifact.round, Artifact.id)))


def model_artifact(session: Session, run_id: int) -> Artifact | None:
    """The final model directory of a train run (PromptClassifier.from_pretrained(path))."""
    return session.scalars(
        select(Artifact).where(Artifact.run_id == run_id, Artifact.kind == "model")
        .order_by(Artifact.id.desc()).limit(1)
    ).first()


def can_retry(session: Session, run_id: int) -> bool:
    run = get_run(session, run_id)
    return run is not None and run.status in (FAILED, CANCELLED)


def can_resume(session: Session, run_id: int) -> bool:
    return (
        can_retry(session, run_id)
        and get_run(session, run_id).kind == "train"
        and latest_checkpoint(session, run_id) is not None
    )
