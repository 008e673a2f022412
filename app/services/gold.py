"""What an import's gold labels offer the label set: their distinct values, with counts."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.services import labelling
from db.models import Document, LabelClass

MAX_OFFERED = 100  # more distinct values than this is not a label set (free text, ids)


def gold_label_values(session: Session, project_id: int) -> list[tuple[str, int]]:
    """(value, documents) of the imported gold labels, most frequent first."""
    return [(v, int(n)) for v, n in session.execute(
        select(Document.gold_label, func.count())
        .where(Document.project_id == project_id, Document.gold_label.is_not(None))
        .group_by(Document.gold_label)
        .order_by(func.count().desc(), Document.gold_label)
        .limit(MAX_OFFERED + 1)
    )]


def missing_classes(session: Session, project_id: int) -> list[tuple[str, int]]:
    """Gold label values that are not a class of the label set yet (none when there are
    more than MAX_OFFERED distinct values)."""
    values = gold_label_values(session, project_id)
    if len(values) > MAX_OFFERED:
        return []
    have = {name.lower() for name in session.scalars(
        select(LabelClass.name).where(LabelClass.project_id == project_id))}
    return [(v, n) for v, n in values
            if v.strip() and v.strip().lower() not in have and len(v.strip()) <= 200]


def add_classes_from_gold(session: Session, project_id: int) -> list[str]:
    """Add every missing gold label value as a class (label word: its first word).
    Returns the names added."""
    added = []
    for value, _ in missing_classes(session, project_id):
        labelling.add_label_class(session, project_id, value.strip())
        added.append(value.strip())
    return added
