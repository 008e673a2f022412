"""Label set, labels with undo, counts/balance, next-document strategies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from app.services import ServiceError
from app.services import labelling as L
from app.services.corpus import import_documents
from db.embeddings import compute_embeddings
from db.models import Document, DocumentEmbedding, Label, LabelEvent


def doc_ids(db, project_id):
    return db.scalars(select(Document.id).where(Document.project_id == project_id)
                      .order_by(Document.id)).all()


def test_label_set_crud(db, project):
    a = L.add_label_class(db, project.id, "Positive review", "liked it")
    assert a.verbalizer_word == "positive"  # suggested from the name
    with pytest.raises(ServiceError, match="already a label"):
        L.add_label_class(db, project.id, "positive REVIEW")
    with pytest.raises(ServiceError, match="needs a name"):
        L.add_label_class(db, project.id, "  ")
    b = L.add_label_class(db, project.id, "neg", verbalizer_word="bad")
    assert [c.name for c in L.list_label_classes(db, project.id)] == ["Positive review", "neg"]
    L.update_label_class(db, b.id, name="negative", description="disliked", verbalizer_word="awful")
    assert (b.name, b.description, b.verbalizer_word) == ("negative", "disliked", "awful")
    with pytest.raises(ServiceError, match="already a label"):
        L.update_label_class(db, b.id, name="positive review")
    assert L.delete_label_class(db, a.id) == 0
    assert [c.name for c in L.list_label_classes(db, project.id)] == ["negative"]


def test_set_label_change_remove_and_undo(db, sentiment_project):
    pid = sentiment_project.id
    pos, neg = L.list_label_classes(db, pid)
    d1, d2 = doc_ids(db, pid)[:2]
    L.set_label(db, pid, d1, pos.id)
    L.set_label(db, pid, d2, neg.id)
    assert L.set_label(db, pid, d2, neg.id) is None  # no change, no event
    L.set_label(db, pid, d1, neg.id)  # change
    L.remove_label(db, pid, d2)  # delete
    assert L.label_of(db, d1).label_class_id == neg.id and L.label_of(db, d2) is None
    assert db.scalar(select(func.count()).select_from(LabelEvent)) == 4

    assert L.undo(db, pid).document_id == d2
    assert L.label_of(db, d2).label_class_id == neg.id
    assert L.undo(db, pid).document_id == d1
    assert L.label_of(db, d1).label_class_id == pos.id
    L.undo(db, pid)
    L.undo(db, pid)
    assert db.scalar(select(func.count()).select_from(Label)) == 0
    assert L.undo(db, pid) is None


def test_set_label_rejects_other_projects(db, sentiment_project):
    from app.services.projects import create_project

    other = create_project(db, "Other")
    cls = L.add_label_class(db, other.id, "x")
    d = doc_ids(db, sentiment_project.id)[0]
    with pytest.raises(ServiceError, match="not in this project"):
        L.set_label(db, sentiment_project.id, d, cls.id)
    with pytest.raises(ServiceError, match="not in this project"):
        L.set_label(db, other.id, d, cls.id)


def test_counts_targets_and_balance(db, sentiment_project):
    pid = sentiment_project.id
    pos, neg = L.list_label_classes(db, pid)
    assert L.class_targets(3, 30) == [10, 10, 10] and L.class_targets(4, 30) == [8, 8, 7, 7]
    ids = doc_ids(db, pid)
    for d in ids[:6]:
        L.set_label(db, pid, d, pos.id)
    counts = L.class_counts(db, pid)
    assert [(c.name, c.count, c.target) for c in counts] == [("positive", 6, 15), ("negative", 0, 15)]
    assert "negative" in L.balance_warning(counts)
    L.set_label(db, pid, ids[6], neg.id)
    assert "Unbalanced" in L.balance_warning(L.class_counts(db, pid))
    for d in ids[7:11]:
        L.set_label(db, pid, d, neg.id)
    assert L.balance_warning(L.class_counts(db, pid)) is None
    table = L.labels_table(db, pid)
    assert len(table) == 11 and set(table["label"]) == {"positive", "negative"}


def test_random_and_keyword(db, sentiment_project):
    pid = sentiment_project.id
    pos = L.list_label_classes(db, pid)[0]
    ids = doc_ids(db, pid)
    for d in ids[:11]:
        L.set_label(db, pid, d, pos.id)
    assert L.next_random(db, pid) == ids[11]
    assert L.next_random(db, pid, exclude=[ids[11]]) is None
    L.remove_label(db, pid, ids[0])  # "great film"
    assert L.next_keyword(db, pid, "GREAT") == ids[0]
    assert L.next_keyword(db, pid, "100%") is None  # LIKE wildcards are escaped
    with pytest.raises(ServiceError, match="keyword"):
        L.keyword_matches(db, pid, " ")


def test_diverse_selection_returns_distinct_clusters(db, project):
    """Three well-separated groups: three consecutive picks come from three clusters."""
    texts = [f"{topic} item {i}" for topic in ("alpha", "beta", "gamma") for i in range(10)]
    import_documents(db, project.id, pd.DataFrame({"text": texts}), text_column="text")
    L.add_label_class(db, project.id, "a")
    L.add_label_class(db, project.id, "b")
    centres = {"alpha": [1, 0, 0], "beta": [0, 1, 0], "gamma": [0, 0, 1]}
    rng = np.random.default_rng(0)

    def fake_embed(batch):
        return np.array([np.array(centres[t.split()[0]]) + 0.01 * rng.standard_normal(3)
                         for t in batch], dtype=np.float32)

    assert L.missing_embeddings(db, project.id, "m") == 30
    assert compute_embeddings(db, project.id, "m", embed=fake_embed, batch_size=7) == 30
    assert compute_embeddings(db, project.id, "m", embed=fake_embed) == 0  # cached
    assert db.scalar(select(func.count()).select_from(DocumentEmbedding)) == 30
    ids, vectors = L.load_embeddings(db, project.id, "m")
    assert vectors.shape == (30, 3)
    clusters = L.cluster_documents(ids, vectors, k=3)
    topic_of = {d.id: d.text.split()[0] for d in db.scalars(select(Document))}
    picked = []
    for _ in range(3):
        picked.append(L.next_diverse(db, project.id, clusters, exclude=picked))
    assert len({topic_of[d] for d in picked}) == 3
    cls = L.list_label_classes(db, project.id)[0]
    L.set_label(db, project.id, picked[0], cls.id)  # labelled docs count as covered too
    nxt = L.next_diverse(db, project.id, clusters)
    assert topic_of[nxt] != topic_of[picked[0]]


def test_start_embedding_queues_one_run_per_project_and_model(db, project):
    first = L.start_embedding(db, project.id, "m")
    assert (first.kind, first.status, first.config) == ("embed", "queued", {"model": "m"})
    assert L.start_embedding(db, project.id, "m").id == first.id  # not a second one
    other = L.start_embedding(db, project.id, "other-model")
    assert other.id != first.id
    assert L.embedding_run(db, project.id, "m").id == first.id
    from db import jobs

    jobs.request_cancel(db, first.id)
    db.rollback()
    assert L.embedding_run(db, project.id, "m") is None
    assert L.last_embedding_run(db, project.id, "m").status == "cancelled"
    assert L.start_embedding(db, project.id, "m").id not in (first.id, other.id)
