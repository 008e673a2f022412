"""The embedding cache behind diverse selection: which documents still lack a vector for a
model, filling the cache batch by batch, reading it back.

The vectors come from the caller's `embed` function (the worker passes the engine's
`mean_pooled_embeddings`), so the database layer needs no model code.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from db.models import Document, DocumentEmbedding
from db.session import write_transaction

Embedder = Callable[[list[str]], np.ndarray]  # texts -> (N, H) vectors


def _cached(project_id: int, model: str):
    return select(DocumentEmbedding.document_id).where(
        DocumentEmbedding.project_id == project_id, DocumentEmbedding.model == model
    )


def missing_embeddings(session: Session, project_id: int, model: str) -> int:
    """How many of the project's documents have no cached vector for `model`."""
    return session.scalar(
        select(func.count()).select_from(Document)
        .where(Document.project_id == project_id, Document.id.not_in(_cached(project_id, model)))
    ) or 0


def compute_embeddings(
    session: Session, project_id: int, model: str, embed: Embedder, batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> int:
    """Embed the project's documents that have no cached vector for `model`; returns how
    many were computed. Each batch is its own short write transaction, so an interrupted
    run keeps its work and labelling in the app is never locked out for long.
    `progress(done, total)` is called after each batch; `should_stop()` before each."""
    todo = session.execute(
        select(Document.id, Document.text, Document.text_b)
        .where(Document.project_id == project_id, Document.id.not_in(_cached(project_id, model)))
        .order_by(Document.id)
    ).all()
    session.rollback()  # end the read snapshot before the long embedding work
    done = 0
    for start in range(0, len(todo), batch_size):
        if should_stop and should_stop():
            break
        part = todo[start : start + batch_size]
        texts = [t if not b else f"{t} {b}" for _, t, b in part]
        vectors = np.asarray(embed(texts), dtype=np.float32)  # (B, H)
        with write_transaction(session):
            # Documents deleted meanwhile (a re-import) are skipped, not an error.
            alive = set(session.scalars(
                select(Document.id).where(Document.id.in_([d for d, _, _ in part]))))
            rows = [{"project_id": project_id, "document_id": doc_id, "model": model,
                     "vector": vec.tobytes()}
                    for (doc_id, _, _), vec in zip(part, vectors, strict=True) if doc_id in alive]
            if rows:
                session.execute(insert(DocumentEmbedding), rows)
        done += len(part)
        if progress:
            progress(done, len(todo))
    return done


def load_embeddings(session: Session, project_id: int, model: str) -> tuple[np.ndarray, np.ndarray]:
    """(document ids (N,), vectors (N, H)) of the cached embeddings."""
    rows = session.execute(
        select(DocumentEmbedding.document_id, DocumentEmbedding.vector)
        .where(DocumentEmbedding.project_id == project_id, DocumentEmbedding.model == model)
        .order_by(DocumentEmbedding.document_id)
    ).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    vectors = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    return ids, vectors
