"""What a worker writes about a run it holds: progress, sampled losses, per-round metrics,
pseudo-labels and artifacts. Each call is one short write transaction; rows keyed by round
are upserted, so a resumed run never duplicates what an earlier attempt wrote."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.orm import Session

from db.jobs import ACTIVE_STATUSES, db_now
from db.models import (
    ARTIFACT_KEY_ROUND,
    Artifact,
    ArtifactBlob,
    PseudoLabel,
    RoundMetric,
    Run,
    RunStep,
    artifact_key,
    utcnow,
)
from db.session import write_transaction

_CHUNK = 500  # rows per INSERT (SQLite's limit on bound parameters)
PROGRESS_FIELDS = frozenset(
    {"current_round", "total_rounds", "phase", "step", "total_steps", "progress", "device"}
)


def _dialect_insert(session: Session, model):
    name = session.get_bind().dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        raise NotImplementedError(f"upsert is implemented for sqlite and postgresql, not {name}")
    return dialect_insert(model)


def _upsert(session: Session, model, rows: Sequence[dict], keys: list) -> None:
    for start in range(0, len(rows), _CHUNK):
        stmt = _dialect_insert(session, model).values(list(rows[start:start + _CHUNK]))
        update_cols = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
        session.execute(stmt.on_conflict_do_update(index_elements=keys, set_=update_cols))


def update_progress(
    session: Session,
    run_id: int,
    worker_id: str | None,
    *,
    steps: Iterable[dict] = (),
    **fields,
) -> str | None:
    """Write progress fields (+ heartbeat) and sampled step losses of a held run. Returns the
    run's status afterwards (e.g. "cancelling"), or None when the worker no longer holds it."""
    bad = set(fields) - PROGRESS_FIELDS
    if bad:
        raise ValueError(f"not progress fields: {sorted(bad)}")
    cond = [Run.id == run_id, Run.status.in_(ACTIVE_STATUSES)]
    if worker_id is not None:
        cond.append(Run.worker_id == worker_id)
    steps = [dict(s, run_id=run_id) for s in steps]
    with write_transaction(session):
        if not session.execute(
            update(Run).where(*cond).values(heartbeat_at=db_now(session), **fields)
        ).rowcount:
            return None
        for start in range(0, len(steps), _CHUNK):
            session.execute(insert(RunStep), steps[start:start + _CHUNK])
        return session.scalar(select(Run.status).where(Run.id == run_id))


def record_metrics(session: Session, run_id: int, round: int, metrics: dict) -> None:
    """Upsert the evaluation of one round (accuracy, macro_f1, pseudo-label accuracy, details)."""
    row = {
        "run_id": run_id,
        "round": round,
        "accuracy": _num(metrics.get("accuracy")),
        "macro_f1": _num(metrics.get("macro_f1")),
        "pseudo_label_accuracy": _num(metrics.get("pseudo_label_accuracy")),
        "details": _json_safe(metrics),
        "created_at": utcnow(),
    }
    with write_transaction(session):
        _upsert(session, RoundMetric, [row], ["run_id", "round"])


def record_environment(session: Session, run_id: int, environment: dict) -> None:
    """Keep the software versions and the device a run trains with in its config (the
    model card and the runs table read them from there)."""
    with write_transaction(session):
        run = session.get(Run, run_id)
        if run is not None:
            run.config = {**(run.config or {}), "environment": dict(environment)}


def record_eval_predictions(session: Session, run_id: int, round: int, gold: Sequence[int],
                            probs: Sequence[Sequence[float]]) -> bool:
    """Keep the per-example evaluation of one round (class index of each gold label and the
    predicted probabilities, in label order) in its metrics row's details, for the
    reliability diagram and the bootstrap intervals. False when the round has no row."""
    with write_transaction(session):
        row = session.scalar(select(RoundMetric).where(RoundMetric.run_id == run_id,
                                                       RoundMetric.round == round))
        if row is None:
            return False
        details = dict(row.details or {})
        details["eval_predictions"] = {
            "gold": [int(g) for g in gold],
            "probs": [[float(f"{float(x):.5f}") for x in p] for p in probs],  # 5 decimals: small JSON
        }
        row.details = details
    return True


def record_pseudo_labels(
    session: Session,
    run_id: int,
    round: int,
    document_ids: Sequence[int],
    probs: Sequence[Sequence[float]],
    labels: Sequence[str],
    weights: Sequence[float | None] | None = None,
) -> int:
    """Upsert one round's pseudo-labels (teacher probabilities, argmax label, confidence,
    mean meta weight or None). Returns the number of rows written."""
    rows = []
    for i, doc_id in enumerate(document_ids):
        p = [float(x) for x in probs[i]]
        rows.append({
            "run_id": run_id,
            "round": round,
            "document_id": int(doc_id),
            "probs": p,
            "label": str(labels[i]),
            "confidence": max(p) if p else 0.0,
            "meta_weight": _num(weights[i]) if weights is not None else None,
        })
    if rows:
        with write_transaction(session):
            _upsert(session, PseudoLabel, rows, ["run_id", "round", "document_id"])
    return len(rows)


def record_meta_weights(session: Session, run_id: int, round: int,
                        weights: dict[int, float | None]) -> int:
    """Set the running mean meta weight of pseudo-labels already recorded for the round
    (document id -> weight), while the student trains. Returns the number of rows given."""
    if not weights:
        return 0
    table = PseudoLabel.__table__
    stmt = (
        update(table)
        .where(table.c.run_id == run_id, table.c.round == round,
               table.c.document_id == bindparam("doc"))
        .values(meta_weight=bindparam("weight"))
    )
    rows = [{"doc": int(d), "weight": _num(w)} for d, w in weights.items()]
    with write_transaction(session):
        session.execute(stmt, rows)
    return len(rows)


def add_artifact(
    session: Session,
    run_id: int,
    kind: str,
    path: str,
    *,
    sha256: str,
    bytes: int,
    round: int | None = None,
) -> Artifact:
    """Record a file or directory of a run; replaces an earlier record of the same
    (kind, round), e.g. the checkpoint of a round that a resumed run wrote again. One upsert
    on the unique key (run_id, kind, round): two writers never leave two rows."""
    row = {"run_id": run_id, "kind": kind, "round": round, "path": artifact_key(path),
           "sha256": sha256, "bytes": int(bytes), "created_at": utcnow()}
    same_round = Artifact.round.is_(None) if round is None else Artifact.round == round
    with write_transaction(session):
        _upsert(session, Artifact, [row], ["run_id", "kind", ARTIFACT_KEY_ROUND])
        artifact = session.scalars(
            select(Artifact).where(Artifact.run_id == run_id, Artifact.kind == kind, same_round)
            .execution_options(populate_existing=True)
        ).one()
    return artifact


def forget_missing_artifacts(session: Session, run_id: int) -> list[str]:
    """Delete the run's artifact rows whose files are gone from disk (someone deleted the
    run's folder); returns their paths. Rows never point at nothing afterwards."""
    from pathlib import Path

    from db.settings import get_settings

    data_dir = Path(get_settings().data_dir)
    with write_transaction(session):
        rows = session.scalars(select(Artifact).where(Artifact.run_id == run_id)).all()
        in_db = set(session.scalars(select(ArtifactBlob.artifact_id).where(
            ArtifactBlob.artifact_id.in_([a.id for a in rows]))))
        gone = [a for a in rows  # absolute paths stay absolute; a copy in the database is not gone
                if not (data_dir / a.path).exists() and a.id not in in_db]
        for a in gone:
            session.delete(a)
    return [a.path for a in gone]


def truncate_after_round(
    session: Session, run_id: int, round: int, *, resumed: bool = True
) -> None:
    """Before resuming from the checkpoint of `round`: drop what an interrupted attempt wrote
    for later rounds (metrics, losses, pseudo-labels, checkpoints, the final model).
    `round=-1, resumed=False`: a start from scratch, dropping everything."""
    with write_transaction(session):
        for model in (RoundMetric, RunStep, PseudoLabel):
            session.execute(delete(model).where(model.run_id == run_id, model.round > round))
        session.execute(
            delete(Artifact).where(
                Artifact.run_id == run_id,
                or_(Artifact.kind != "checkpoint", Artifact.round > round),
            )
        )
        session.execute(
            update(Run).where(Run.id == run_id)
            .values(resumed_from_round=round if resumed else None)
        )


def _num(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _json_safe(value):
    """Metrics as plain JSON: numpy scalars/arrays -> Python numbers/lists, NaN -> None."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):
        return _json_safe(value.tolist())
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, bool | int | str) or value is None:
        return value
    try:
        return _num(float(value))
    except (TypeError, ValueError):
        return str(value)
