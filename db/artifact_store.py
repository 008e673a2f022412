"""Run artifacts that any machine can reach.

A run's files (round checkpoints, the model, predictions) are written under the worker's
LIST_DATA_DIR and recorded in `artifacts` with a path relative to the data dir. With a
database server (several machines), small artifacts (LiST trains adapters: checkpoints and
models of a few MB) are also copied into the database (`artifact_blobs`, a tar of the file
or folder), so a worker or the app on another machine needs only the database URL and the
base model: `materialize()` unpacks the copy into its own data dir on first use.
On SQLite (one machine) files stay on disk only.

LIST_ARTIFACT_STORE: `auto` (database copies when the database is not SQLite), `database`,
`disk`. LIST_DB_ARTIFACT_MAX_MB: larger artifacts stay on disk only (default 256).
"""

from __future__ import annotations

import io
import logging
import os
import tarfile
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session

from db.models import Artifact, ArtifactBlob
from db.session import write_transaction

log = logging.getLogger(__name__)


def _wanted(session: Session, size: int) -> bool:
    mode = os.environ.get("LIST_ARTIFACT_STORE", "auto")
    if mode == "disk":
        return False
    if mode == "auto" and session.get_bind().dialect.name == "sqlite":
        return False
    return size <= float(os.environ.get("LIST_DB_ARTIFACT_MAX_MB", "256")) * 2**20


def _pack(path: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(path, arcname=path.name)
    return buf.getvalue()


def keep_copy(session: Session, artifact: Artifact) -> bool:
    """Copy a recorded artifact's file or folder into the database when wanted (see the
    module doc). Returns whether a copy was stored."""
    path = Path(artifact.path)
    if not path.exists() or not _wanted(session, artifact.bytes):
        return False
    data = _pack(path)
    with write_transaction(session):
        blob = session.get(ArtifactBlob, artifact.id)
        if blob is None:
            session.add(ArtifactBlob(artifact_id=artifact.id, data=data))
        else:
            blob.data = data
    return True


def reachable(session: Session, artifact: Artifact) -> bool:
    """Whether this machine has the artifact's files or can fetch them from the database."""
    return Path(artifact.path).exists() or session.get(ArtifactBlob, artifact.id) is not None


def materialize(session: Session, artifact: Artifact) -> Path | None:
    """The artifact's local path on this machine; unpacked from the database copy when the
    file is not here. None when it is neither here nor in the database."""
    path = Path(artifact.path)
    if path.exists():
        return path
    blob = session.get(ArtifactBlob, artifact.id)
    if blob is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".fetch-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(blob.data), mode="r") as tar:
            tar.extractall(tmp, filter="data")  # refuses absolute paths and links out
        unpacked = Path(tmp) / path.name
        if not path.exists():  # another process may have been faster
            os.replace(unpacked, path)  # same folder, so one atomic rename (file or folder)
    log.info("artifact %d (%s) fetched from the database into %s", artifact.id, artifact.kind,
             path)
    return path
