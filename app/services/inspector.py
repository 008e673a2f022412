"""Pseudo-label inspector: the teacher's labels of one round, with filters, and turning a
pseudo-label into a human label (accept as is, or correct it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import ServiceError, labelling
from db import queries
from db.models import ACCEPTED_PSEUDO, HUMAN, Label, LabelClass, PseudoLabel, Run
from db.writes import user_write

SORTS = {  # label shown -> db.queries sort key
    "weight (lowest first)": "weight",
    "weight (highest first)": "-weight",
    "confidence (lowest first)": "confidence",
    "confidence (highest first)": "-confidence",
    "document": "document",
}
COLUMNS = [
    "document_id", "text", "pseudo_label", "confidence", "meta_weight", "gold_label",
    "agrees_with_gold", "current_label", "current_source",
]


@dataclass(frozen=True)
class Filters:
    label: str | None = None  # only this pseudo-label class
    low_weight: float | None = None  # only weights below this fraction of the round's mean
    disagree_with_gold: bool = False
    hide_labelled: bool = True  # hide documents that have a label by now
    exclude_ids: tuple[int, ...] = ()  # skipped in this session


def rounds_with_pseudo_labels(session: Session, run_id: int) -> list[int]:
    return queries.pseudo_label_rounds(session, run_id)


def mean_weight(session: Session, run_id: int, round_: int) -> float | None:
    weights = [
        r["meta_weight"] for r in queries.pseudo_label_weights(session, run_id, round_)
        if r["meta_weight"] is not None and math.isfinite(r["meta_weight"])
    ]
    return sum(weights) / len(weights) if weights else None


def pseudo_label_table(session: Session, run_id: int, round_: int, filters: Filters = Filters(),
                       sort: str = "weight (lowest first)", limit: int = 200) -> pd.DataFrame:
    """One row per pseudo-labelled document of the round, filtered and sorted.

    `low_weight` is a fraction of the round's mean weight (0.5 = "less than half the mean
    weight"): the meta weights are normalised per batch, so absolute values mean little."""
    max_weight = None
    if filters.low_weight is not None:
        mean = mean_weight(session, run_id, round_)
        if mean is not None and mean <= 0:  # every weight 0: none is below a share of it
            return pd.DataFrame([], columns=COLUMNS)
        max_weight = None if mean is None else filters.low_weight * mean
    views = queries.pseudo_labels(
        session, run_id, round_, label=filters.label, max_weight=max_weight,
        disagrees_with_gold=True if filters.disagree_with_gold else None,
        sort=SORTS.get(sort, "weight"), limit=limit + len(filters.exclude_ids) + 1000,
    )
    current = {}
    if views:
        current = {
            doc: (name, source)
            for doc, name, source in session.execute(
                select(Label.document_id, LabelClass.name, Label.source)
                .join(LabelClass, LabelClass.id == Label.label_class_id)
                .where(Label.document_id.in_([v.document_id for v in views]))
            )
        }
    excluded = set(filters.exclude_ids)
    rows = []
    for v in views:
        if v.document_id in excluded:
            continue
        cur_label, cur_source = current.get(v.document_id, (None, None))
        if filters.hide_labelled and cur_label is not None:
            continue
        rows.append((v.document_id, v.text, v.label, v.confidence, v.meta_weight, v.gold_label,
                     v.agrees_with_gold, cur_label, cur_source))
        if len(rows) >= limit:
            break
    return pd.DataFrame(rows, columns=COLUMNS)


MISSING = "-"  # what the model card shows for a value that is not there


def shown(value, fmt: str = "{}") -> str:
    """One value as the page shows it: "-" when missing (None, NaN), yes/no for a bool."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    return fmt.format(value)


def display_table(df: pd.DataFrame) -> pd.DataFrame:
    """The pseudo-label table as the page shows it: every cell a string, a missing value "-"
    (the model card's mark; the grid would write "None"), numbers with fixed decimals."""
    formats = {"confidence": "{:.3f}", "meta_weight": "{:.4f}"}
    out = df.astype(object).copy()
    for column in out.columns:
        if column in ("document_id", "text"):
            continue
        fmt = formats.get(column, "{}")
        out[column] = [shown(v, fmt) for v in df[column].tolist()]
    return out


def round_overview(session: Session, run_id: int, round_: int) -> dict:
    """Counts for the inspector header: total, with a weight, with gold, agreeing with gold."""
    rows = queries.pseudo_label_weights(session, run_id, round_)
    gold = [r for r in rows if r["correct"] is not None]
    return {
        "total": len(rows),
        "weighted": sum(1 for r in rows if r["meta_weight"] is not None),
        "with_gold": len(gold),
        "agree": sum(1 for r in gold if r["correct"]),
    }


def _class_id(session: Session, project_id: int, name: str) -> int:
    cid = session.scalar(
        select(LabelClass.id).where(LabelClass.project_id == project_id, LabelClass.name == name)
    )
    if cid is None:
        raise ServiceError(f"The label {name!r} is not in this project's label set any more.")
    return cid


def _pseudo(session: Session, run_id: int, round_: int, document_id: int) -> tuple[Run, PseudoLabel]:
    run = session.get(Run, run_id)
    pl = session.scalar(
        select(PseudoLabel).where(
            PseudoLabel.run_id == run_id, PseudoLabel.round == round_,
            PseudoLabel.document_id == document_id,
        )
    )
    if run is None or pl is None:
        raise ServiceError("That pseudo-label no longer exists (was the run retried?).")
    return run, pl


@user_write
def accept(session: Session, run_id: int, round_: int, document_id: int) -> None:
    """Keep the teacher's label as the document's label (source "accepted_pseudo"): it
    counts as a training label for the next run."""
    run, pl = _pseudo(session, run_id, round_, document_id)
    class_id = _class_id(session, run.project_id, pl.label)
    labelling.set_label(session, run.project_id, document_id, class_id, source=ACCEPTED_PSEUDO)


@user_write
def correct(session: Session, run_id: int, round_: int, document_id: int, label_name: str) -> None:
    """The teacher was wrong: give the document the user's label (a human label)."""
    run, _ = _pseudo(session, run_id, round_, document_id)
    class_id = _class_id(session, run.project_id, label_name)
    labelling.set_label(session, run.project_id, document_id, class_id, source=HUMAN)


def accepted_count(session: Session, project_id: int) -> int:
    return len(
        session.scalars(
            select(Label.id).where(Label.project_id == project_id, Label.source == ACCEPTED_PSEUDO)
        ).all()
    )
