"""Small builders for database tests (also used by the worker tests)."""

from __future__ import annotations

import hashlib

from sqlalchemy.orm import Session

from db.models import Document, Label, LabelClass, Project
from db.session import write_transaction


def make_project(
    session: Session,
    *,
    name: str = "p",
    docs: list[tuple[str, str]] | None = None,
    labelled: dict[int, str] | None = None,
    held_out: dict[int, str] | None = None,
    classes: tuple[str, ...] = ("negative", "positive"),
) -> Project:
    """docs: (text, gold label) pairs; labelled/held_out: index in docs -> label name."""
    docs = docs if docs is not None else [
        ("bad awful film", "negative"), ("great fun movie", "positive"),
        ("boring and sad", "negative"), ("love this, great", "positive"),
        ("terrible story", "negative"), ("good good good", "positive"),
    ]
    labelled = labelled if labelled is not None else {0: "negative", 1: "positive"}
    held_out = held_out if held_out is not None else {2: "negative"}
    with write_transaction(session):
        project = Project(name=name, description="")
        session.add(project)
        session.flush()
        by_name = {}
        for i, c in enumerate(classes):
            by_name[c] = LabelClass(project_id=project.id, name=c, position=i)
            session.add(by_name[c])
        documents = []
        for text, gold in docs:
            d = Document(project_id=project.id, text=text, gold_label=gold,
                         content_hash=hashlib.sha256(text.encode()).hexdigest())
            documents.append(d)
            session.add(d)
        session.flush()
        for idx, lab in list(labelled.items()) + list(held_out.items()):
            session.add(Label(project_id=project.id, document_id=documents[idx].id,
                              label_class_id=by_name[lab].id, held_out=idx in held_out))
    return project
