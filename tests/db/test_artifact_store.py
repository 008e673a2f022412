"""Artifacts any machine can reach: relative paths, database copies, fetching them back."""

from __future__ import annotations

import shutil

from db import jobs
from db.artifact_store import keep_copy, materialize
from db.models import ArtifactBlob
from db.progress import add_artifact, forget_missing_artifacts


def test_paths_are_relative_and_small_artifacts_travel_through_the_database(
        session, project, db_settings, database_url, monkeypatch):
    run = jobs.enqueue(session, project.id, {})
    folder = jobs.run_dir(run.id) / "checkpoints" / "round-1"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"\x00weights" * 100)
    (folder / "state.json").write_text('{"round": 1}')
    art = add_artifact(session, run.id, "checkpoint", str(folder), sha256="0" * 64, bytes=816,
                       round=1)
    assert art.stored_path == f"artifacts/run-{run.id}/checkpoints/round-1"  # never absolute
    assert art.path == str(folder)  # where it is on this machine

    copied = keep_copy(session, art)
    assert copied == (database_url is not None)  # auto: database copies off SQLite only
    if not copied:
        monkeypatch.setenv("LIST_ARTIFACT_STORE", "database")
        assert keep_copy(session, art)
    assert session.get(ArtifactBlob, art.id) is not None

    # Another machine: the folder is not there; it is fetched from the database.
    shutil.rmtree(jobs.run_dir(run.id))
    assert forget_missing_artifacts(session, run.id) == []  # a copy in the database: not gone
    fetched = materialize(session, art)
    assert fetched == folder
    assert (fetched / "adapter_model.safetensors").read_bytes() == b"\x00weights" * 100
    assert (fetched / "state.json").read_text() == '{"round": 1}'
    assert materialize(session, art) == folder  # already here: nothing to do

    monkeypatch.setenv("LIST_ARTIFACT_STORE", "disk")
    other = add_artifact(session, run.id, "model", str(jobs.run_dir(run.id) / "model"),
                         sha256="", bytes=0)
    assert not keep_copy(session, other)
    assert materialize(session, other) is None  # neither here nor in the database
    assert forget_missing_artifacts(session, run.id) == [other.path]
