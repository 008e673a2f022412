"""Predict with a trained run: one text at once in the app, a corpus or an uploaded file in
the background (a `Run(kind="predict")` for the worker, which writes a CSV artifact)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.services import ServiceError, users
from app.services.corpus import UPLOAD_LIMIT_MB
from app.services.export import model_dir
from db.artifact_store import materialize
from db.models import OWNER, Artifact, Run
from db.settings import get_settings
from db.writes import retry_busy

MAX_UPLOAD_BYTES = UPLOAD_LIMIT_MB * 1024 * 1024  # Streamlit's MB: 2**20 bytes


def file_stem(run: Run) -> str:
    """A run's title as a file name: "Prediction #1" -> "prediction-1", "Run #3" -> "run-3".
    Downloads are named by what the page shows (the number), never by the database id (the
    id stays inside the files)."""
    return "-".join(run.title.lower().replace("#", " ").split())


def load_classifier(path: str | Path, device: str = "cpu"):
    """The classifier saved in a model folder (cache it: loading takes seconds)."""
    from list_engine import PromptClassifier

    return PromptClassifier.from_pretrained(Path(path), device=device)


def classifier_path(session: Session, run_id: int) -> Path:
    return model_dir(session, run_id)


def probabilities(classifier, text: str) -> pd.DataFrame:
    """Class probabilities of one text, most likely first."""
    text = (text or "").strip()
    if not text:
        raise ServiceError("Type or paste some text first.")
    probs = classifier.predict_proba([text])[0]
    df = pd.DataFrame({"label": list(classifier.labels), "probability": [float(p) for p in probs]})
    return df.sort_values("probability", ascending=False).reset_index(drop=True)


def _safe_name(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name or "upload.csv").name)[:80]
    return stem or "upload.csv"


def read_upload(data: bytes, filename: str) -> pd.DataFrame:
    """Parse an uploaded file for prediction with the same reader as the corpus import (the
    same formats, the same messages for bad files)."""
    from app.services.corpus import read_table

    if len(data) > MAX_UPLOAD_BYTES:
        raise ServiceError(f"The file is larger than {UPLOAD_LIMIT_MB} MB.")
    return read_table(data, filename)


def save_upload(project_id: int, data: bytes, filename: str, text_column: str) -> Path:
    """Check the upload has the text column and store it under the data directory as CSV."""
    df = read_upload(data, filename)
    if text_column not in df.columns:
        raise ServiceError(
            f"The file has no column {text_column!r}; its columns are: {', '.join(map(str, df.columns))}."
        )
    folder = get_settings().data_dir / "uploads" / f"project-{project_id}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex[:8]}-{Path(_safe_name(filename)).stem}.csv"
    df.to_csv(path, index=False)
    return path


def start_predict(session: Session, project_id: int, source_run_id: int, *,
                  input: str = "corpus", text_column: str = "text") -> Run:
    """Enqueue a predict run over the project's corpus or a saved upload."""
    from db import jobs

    users.require(session, project_id, OWNER)
    source = session.get(Run, source_run_id)
    if source is None or source.project_id != project_id:
        raise ServiceError(f"Run #{source_run_id} is not a run of this project.")
    model_dir(session, source_run_id)  # raises when there is no model
    if input != "corpus" and not Path(input).is_file():
        raise ServiceError("The uploaded file is missing: upload it again.")
    config = {"source_run_id": source_run_id, "input": input, "text_column": text_column}
    if session.in_transaction():
        session.commit()
    try:
        return retry_busy(
            lambda: jobs.enqueue(session, project_id=project_id, kind="predict", config=config),
            "start prediction",
        )
    except jobs.JobError as exc:
        raise ServiceError(str(exc)) from exc


def predict_runs(session: Session, project_id: int) -> list[Run]:
    return list(
        session.scalars(
            select(Run)
            .where(Run.project_id == project_id, Run.kind == "predict")
            .order_by(Run.id.desc())
        )
    )


def predictions_file(session: Session, run_id: int) -> Path | None:
    art = session.scalar(
        select(Artifact)
        .where(Artifact.run_id == run_id, Artifact.kind == "predictions")
        .order_by(Artifact.id.desc())
        .limit(1)
    )
    path = materialize(session, art) if art is not None else None  # maybe from the database
    return path if path is not None and path.is_file() else None
