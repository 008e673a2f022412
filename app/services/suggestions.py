"""The model in the labelling loop: after a training run succeeds, its predictions over the
corpus (a background predict run, reused until the next training run) give the labelling
page the model's guess for each document, the "most uncertain" and "uncertain + diverse"
strategies, a bulk accept of the most confident guesses, and similar documents by the
cached embeddings."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import ServiceError, users
from app.services import labelling as label_service
from db.models import (
    ACCEPTED_PSEUDO,
    CANCELLED,
    FAILED,
    OWNER,
    SUCCEEDED,
    Artifact,
    Label,
    LabelClass,
    Run,
)
from list_engine.selection import neighbourhood_uncertainty, uncertainty

STRATEGIES = ("uncertain", "uncertain_diverse")
STRATEGY_NAMES = {"uncertain": "Most uncertain (model)",
                  "uncertain_diverse": "Uncertain + diverse (model)"}
NEIGHBOURS = 10  # uncertain + diverse: a document's uncertainty is averaged with this many


@dataclass(frozen=True)
class Predictions:
    """The model's probabilities for the corpus, from one predict run."""

    source_run_id: int  # the training run whose model made them
    predict_run_id: int
    labels: list[str]
    doc_ids: np.ndarray  # (N,)
    probs: np.ndarray  # (N, C)

    def row(self, doc_id: int) -> int | None:
        hit = np.flatnonzero(self.doc_ids == doc_id)
        return int(hit[0]) if len(hit) else None

    def guess(self, doc_id: int) -> tuple[str, float] | None:
        """(label, probability) of the model's top class for a document; None if unseen."""
        i = self.row(doc_id)
        if i is None:
            return None
        j = int(self.probs[i].argmax())
        return self.labels[j], float(self.probs[i, j])


def model_run(session: Session, project_id: int) -> Run | None:
    """The newest succeeded training run whose model folder exists."""
    runs = session.scalars(
        select(Run).where(Run.project_id == project_id, Run.kind == "train",
                          Run.status == SUCCEEDED).order_by(Run.finished_at.desc(), Run.id.desc())
    )
    for run in runs:
        art = session.scalar(select(Artifact).where(Artifact.run_id == run.id,
                                                    Artifact.kind == "model").limit(1))
        if art is not None and Path(art.path).is_dir():
            return run
        break  # the newest run lost its model: do not suggest with an older one silently
    return None


def corpus_predict_run(session: Session, project_id: int, source_run_id: int) -> Run | None:
    """The newest predict run of that model over the whole corpus (any status)."""
    for run in session.scalars(
        select(Run).where(Run.project_id == project_id, Run.kind == "predict")
        .order_by(Run.id.desc())
    ):
        cfg = run.config or {}
        if cfg.get("source_run_id") == source_run_id and cfg.get("input", "corpus") == "corpus":
            return run
    return None


def ensure_predictions(session: Session, project_id: int) -> tuple[Run | None, Run | None]:
    """(model run, its corpus predict run). Starts the predict run when there is none (or
    the last one failed or was cancelled) and the user may start runs (owner)."""
    from app.services.predict import start_predict

    source = model_run(session, project_id)
    if source is None:
        return None, None
    run = corpus_predict_run(session, project_id, source.id)
    if (run is None or run.status in (FAILED, CANCELLED)) and users.can(session, project_id,
                                                                         OWNER):
        with contextlib.suppress(ServiceError):  # the model folder vanished: no suggestions
            run = start_predict(session, project_id, source.id, input="corpus")
    return source, run


def predictions_path(session: Session, predict_run: Run | None) -> Path | None:
    if predict_run is None or predict_run.status != SUCCEEDED:
        return None
    art = session.scalar(select(Artifact).where(Artifact.run_id == predict_run.id,
                                                Artifact.kind == "predictions")
                         .order_by(Artifact.id.desc()).limit(1))
    return Path(art.path) if art is not None and Path(art.path).is_file() else None


def read_predictions(path: Path, source_run_id: int, predict_run_id: int) -> Predictions:
    """The predict run's CSV (list_engine.predictions' columns): document_id and one
    probability column per class."""
    from list_engine.predictions import prob_column

    prefix = prob_column("")
    frame = pd.read_csv(path, usecols=lambda c: c == "document_id" or c.startswith(prefix))
    cols = [c for c in frame.columns if c.startswith(prefix)]
    if not cols:
        raise ServiceError(f"{path.name} has no probability columns ({prefix}<label>): "
                           "run the prediction again.")
    return Predictions(source_run_id, predict_run_id, [c[len(prefix):] for c in cols],
                       frame["document_id"].to_numpy(dtype=np.int64),
                       frame[cols].to_numpy(dtype=np.float64))


def _unlabelled_rows(session: Session, project_id: int, preds: Predictions,
                     exclude: Iterable[int]) -> np.ndarray:
    """Rows of `preds` whose documents are unlabelled and not excluded."""
    labelled = set(session.scalars(select(Label.document_id).where(Label.project_id == project_id)))
    skip = labelled | set(exclude)
    return np.array([i for i, d in enumerate(preds.doc_ids) if int(d) not in skip], dtype=int)


def next_uncertain(session: Session, project_id: int, preds: Predictions,
                   exclude: Iterable[int] = (), kind: str = "margin") -> int | None:
    """The unlabelled document the model is least sure about (smallest margin between its
    two best classes, or highest entropy)."""
    rows = _unlabelled_rows(session, project_id, preds, exclude)
    if not len(rows):
        return None
    scores = uncertainty(preds.probs[rows], kind)
    return int(preds.doc_ids[rows[int(np.argmax(scores))]])


def region_uncertainty(preds: Predictions, clusters: label_service.Clusters, ids: np.ndarray,
                       vectors: np.ndarray, kind: str = "margin", k: int = NEIGHBOURS) -> np.ndarray:
    """(N,) one score per row of `preds`: the model's uncertainty about the document averaged
    with its k nearest neighbours' within its cluster (cosine over the cached embeddings;
    within the cluster, so a large corpus needs no all-pairs comparison). A document without
    an embedding keeps its own score. On MR, picking by this beat picking by each document's
    own uncertainty on every seed (bench/results/NOTES.md): a lone ambiguous text teaches a
    30-label model less than a typical text from a region it confuses."""
    own = uncertainty(preds.probs, kind)
    out = own.copy()
    row_of = {int(d): i for i, d in enumerate(preds.doc_ids)}
    vector_of = {int(d): i for i, d in enumerate(ids)}
    for members in clusters.members:
        docs = [d for d in members if d in row_of and d in vector_of]
        if docs:
            rows = [row_of[d] for d in docs]
            out[rows] = neighbourhood_uncertainty(own[rows], vectors[[vector_of[d] for d in docs]], k)
    return out


def next_uncertain_diverse(session: Session, project_id: int, preds: Predictions,
                           clusters: label_service.Clusters, regions: np.ndarray,
                           exclude: Iterable[int] = ()) -> int | None:
    """Coverage first, then uncertainty: in the cluster with the fewest labelled (or already
    shown) documents, the unlabelled document with the highest `regions` score (from
    `region_uncertainty`); among equally covered clusters, the most uncertain pick wins."""
    labelled = set(session.scalars(select(Label.document_id).where(Label.project_id == project_id)))
    seen = labelled | set(exclude)
    score_of = {int(d): float(r) for d, r in zip(preds.doc_ids, regions, strict=True)}
    best, best_key = None, None
    for docs in clusters.members:
        candidates = [d for d in docs if d not in seen and d in score_of]
        if not candidates:
            continue
        pick = max(candidates, key=score_of.__getitem__)  # ties: the nearer the centroid
        key = (sum(1 for d in docs if d in seen), -score_of[pick])
        if best_key is None or key < best_key:
            best, best_key = pick, key
    if best is None:  # every clustered document is done: any unlabelled one
        return next_uncertain(session, project_id, preds, exclude)
    return best


def most_confident(session: Session, project_id: int, preds: Predictions, per_class: int,
                   exclude: Iterable[int] = ()) -> pd.DataFrame:
    """The `per_class` unlabelled documents the model is surest about, for each class it
    predicts: columns document_id, label, confidence (most confident first per class)."""
    rows = _unlabelled_rows(session, project_id, preds, exclude)
    if not len(rows) or per_class < 1:
        return pd.DataFrame(columns=["document_id", "label", "confidence"])
    top = preds.probs[rows].argmax(1)
    conf = preds.probs[rows].max(1)
    frame = pd.DataFrame({"document_id": preds.doc_ids[rows], "label": [preds.labels[j] for j in top],
                          "confidence": conf})
    frame = frame.sort_values(["label", "confidence"], ascending=[True, False], kind="stable")
    return frame.groupby("label", sort=False).head(per_class).reset_index(drop=True)


def accept(session: Session, project_id: int, choices: pd.DataFrame) -> int:
    """Label each document with the model's guess (source "accepted_pseudo": the model
    proposed, a person confirmed in bulk). Returns how many labels were written."""
    users.require(session, project_id, "annotator")
    classes = {c.name: c.id for c in session.scalars(
        select(LabelClass).where(LabelClass.project_id == project_id))}
    unknown = sorted(set(choices["label"]) - set(classes))
    if unknown:
        raise ServiceError(f"The model predicts classes that are no longer in the label set "
                           f"({', '.join(unknown)}): train again first.")
    written = 0
    for doc_id, label in zip(choices["document_id"], choices["label"], strict=True):
        if label_service.label_of(session, int(doc_id)) is not None:
            continue  # labelled meanwhile (another annotator): theirs stands
        if label_service.set_label(session, project_id, int(doc_id), classes[label],
                                   source=ACCEPTED_PSEUDO) is not None:
            written += 1
    return written


def similar_documents(session: Session, project_id: int, model: str, doc_id: int,
                      k: int = 5, unlabelled_only: bool = True) -> list[tuple[int, float]]:
    """The k nearest documents to `doc_id` by cosine similarity of the cached embeddings
    (those of diverse selection): [(document id, similarity)], nearest first. Empty when the
    document has no embedding yet."""
    ids, vectors = label_service.load_embeddings(session, project_id, model)
    hit = np.flatnonzero(ids == doc_id)
    if not len(hit):
        return []
    sims = vectors @ vectors[hit[0]]  # embeddings are L2-normalised: dot = cosine
    sims[hit[0]] = -np.inf
    if unlabelled_only:
        labelled = set(session.scalars(select(Label.document_id)
                                       .where(Label.project_id == project_id)))
        sims[[i for i, d in enumerate(ids) if int(d) in labelled]] = -np.inf
    order = [i for i in np.argsort(-sims, kind="stable")[:k] if np.isfinite(sims[i])]
    return [(int(ids[i]), float(sims[i])) for i in order]
