"""Build the engine's examples from a project's documents and labels.

- labelled:   documents with a Label that is not held out (label name via its LabelClass);
- evaluation: held-out labels (unless "none"), plus
              - `eval_documents` (what "auto" sets aside when a run starts): these gold-
                labelled documents are evaluated on and kept out of the unlabelled pool,
                so the run never sees them;
              - for "gold" (and "auto" of runs started before set-asides existed): the gold
                labels of the unlabelled pool itself;
- unlabelled: documents without a Label (minus the set-aside ones); their gold label rides
              along in `Example.label` only so the engine can report pseudo-label accuracy
              (it never trains on it).
Example.id = Document.id, which is how pseudo-labels find their documents again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Document, Label, LabelClass

log = logging.getLogger(__name__)

EVAL_SOURCES = ("auto", "gold", "held_out", "none")


class RunConfigError(ValueError):
    """The run cannot work as configured (retrying would not help)."""


@dataclass
class Datasets:
    labeled: list
    eval: list
    unlabeled: list


def build_datasets(session: Session, project_id: int, labels: list[str], eval_source: str,
                   eval_documents: list[int] | None = None):
    """The three example lists of a train run; labels outside `labels` (the verbalizer's)
    are left out with a warning."""
    from list_engine import Example

    if eval_source not in EVAL_SOURCES:
        raise RunConfigError(f"eval_source {eval_source!r} is not one of {EVAL_SOURCES}")
    known = set(labels)
    labelled = session.execute(
        select(Document, LabelClass.name, Label.held_out)
        .join(Label, Label.document_id == Document.id)
        .join(LabelClass, LabelClass.id == Label.label_class_id)
        .where(Document.project_id == project_id)
        .order_by(Document.id)
    ).all()
    train, evaluation, skipped = [], [], 0
    for doc, name, held_out in labelled:
        if name not in known:
            skipped += 1
            continue
        example = Example(text=doc.text, text_b=doc.text_b, label=name, id=doc.id)
        if not held_out:
            train.append(example)
        elif eval_source != "none":
            evaluation.append(example)
    if skipped:
        log.warning("%d labelled documents have a label outside the verbalizer; left out", skipped)
    if not train:
        raise RunConfigError("the project has no labelled (non-held-out) documents to train on")

    unlabelled_docs = session.scalars(
        select(Document)
        .where(Document.project_id == project_id, ~Document.id.in_(select(Label.document_id)))
        .order_by(Document.id)
    ).all()
    set_aside = set(eval_documents or ()) if eval_source != "none" else set()
    pool_gold = eval_source == "gold" or (eval_source == "auto" and eval_documents is None)
    unlabeled = []
    for doc in unlabelled_docs:
        gold = doc.gold_label if doc.gold_label in known else None
        example = Example(text=doc.text, text_b=doc.text_b, label=gold, id=doc.id)
        if doc.id in set_aside:
            if gold is not None:
                evaluation.append(example)
            continue  # never seen by the run, not even unlabelled
        unlabeled.append(example)
        if gold is not None and pool_gold:
            evaluation.append(example)
    return Datasets(labeled=train, eval=evaluation, unlabeled=unlabeled)
