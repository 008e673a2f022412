"""The embedding cache (db/embeddings.py) with a fake embedder and with the engine's real
mean-pooled embeddings of the tiny BERT."""

from __future__ import annotations

import numpy as np
from sqlalchemy import delete

from db.embeddings import compute_embeddings, load_embeddings, missing_embeddings
from db.models import Document
from tests.db.helpers import make_project


def ones(batch: list[str]) -> np.ndarray:
    return np.ones((len(batch), 4), dtype=np.float32)


def test_embedding_stops_between_batches_and_keeps_its_work(session):
    project = make_project(session, docs=[(f"doc {i}", "negative") for i in range(10)],
                           labelled={}, held_out={})
    seen = []
    done = compute_embeddings(session, project.id, "m", embed=ones, batch_size=4,
                              progress=lambda d, t: seen.append((d, t)),
                              should_stop=lambda: len(seen) >= 2)
    assert done == 8 and seen == [(4, 10), (8, 10)]
    assert missing_embeddings(session, project.id, "m") == 2  # the two batches done are kept
    assert compute_embeddings(session, project.id, "m", embed=ones) == 2
    assert missing_embeddings(session, project.id, "m") == 0
    assert missing_embeddings(session, project.id, "other-model") == 10  # cached per model


def test_documents_deleted_while_embedding_are_skipped(session):
    project = make_project(session, docs=[(f"doc {i}", "negative") for i in range(4)],
                           labelled={}, held_out={})

    def embed_then_delete(batch):  # a re-import deletes a document mid-run
        session.execute(delete(Document).where(Document.text == "doc 1"))
        session.commit()
        return ones(batch)

    assert compute_embeddings(session, project.id, "m", embed=embed_then_delete) == 4
    ids, vectors = load_embeddings(session, project.id, "m")
    assert len(ids) == 3 and vectors.shape == (3, 4)


def test_embeddings_with_the_tiny_model(session, tiny_bert_dir):
    from list_engine import mean_pooled_embeddings

    project = make_project(session, docs=[("one doc", "negative"), ("another doc", "positive")],
                           labelled={}, held_out={})
    model = str(tiny_bert_dir)

    def embed(texts):
        return mean_pooled_embeddings(texts, model=model, device="cpu", max_length=32)

    assert compute_embeddings(session, project.id, model, embed=embed) == 2
    ids, vectors = load_embeddings(session, project.id, model)
    assert len(ids) == 2 and vectors.shape == (2, 32)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert np.allclose(vectors, embed(["one doc", "another doc"]), atol=1e-6)  # stored as computed
