"""Dangling state after someone deletes or damages files under the data folder: a run
whose newest round checkpoint is damaged resumes from the newest complete round (not from
scratch); artifact rows whose files were deleted are dropped instead of pointing at nothing."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pytest

from db import jobs, queries
from db.models import SUCCEEDED, Run
from tests.worker.conftest import fresh, wait_for
from tests.worker.helpers import sentiment_project, train_config


@pytest.fixture(autouse=True)
def _artifacts_on_disk_only(monkeypatch):
    """Files here live on disk only: with PostgreSQL, small artifacts also have a copy in
    the database (db/artifact_store.py) that a deleted folder is fetched back from."""
    monkeypatch.setenv("LIST_ARTIFACT_STORE", "disk")


def _run(session, run_id) -> Run:
    return fresh(session).get(Run, run_id)


def _in_round(session, run_id, round_: int) -> bool:
    run = _run(session, run_id)
    assert run.status in ("queued", "running"), run.error
    return run.status == "running" and (run.current_round or 0) >= round_ and (run.step or 0) > 0


@pytest.mark.parametrize("damage", ["state_cut_short", "folder_deleted"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_round_before(
        session, start_worker, tiny_bert_dir, damage):
    project = sentiment_project(session, n_unlabelled=24)
    config = train_config(str(tiny_bert_dir), rounds=3, teacher_steps=10, unlabeled_steps=80,
                          labeled_steps=20)
    run = jobs.enqueue(session, project.id, config)
    first = start_worker()
    wait_for(lambda: _in_round(session, run.id, 3), 240, what="round 3")
    first.signal(signal.SIGSTOP)
    newest = jobs.latest_checkpoint(fresh(session), run.id)
    assert newest.round == 2
    first.kill()
    folder = Path(newest.path)
    if damage == "state_cut_short":  # e.g. the disk filled up while it was written
        state = folder / "state.safetensors"
        state.write_bytes(state.read_bytes()[:100])
    else:
        shutil.rmtree(folder)

    second = start_worker("--max-runs", "1")
    wait_for(lambda: _run(session, run.id).status == SUCCEEDED, 240, what="resumed run")
    log = second.log()
    assert "resuming from the round-1 checkpoint" in log, log[-3000:]
    if damage == "state_cut_short":
        assert "is damaged" in log and "trying an older round" in log, log[-3000:]
    else:
        assert "missing on disk" in log, log[-3000:]
    assert _run(session, run.id).resumed_from_round == 1
    rounds = sorted(a.round for a in queries.run_artifacts(fresh(session), run.id, kind="checkpoint"))
    assert rounds == [0, 1, 2, 3]  # round 2 was trained and saved again
    assert all(Path(a.path).exists() for a in queries.run_artifacts(session, run.id))


def test_a_deleted_model_folder_is_a_clear_message_and_leaves_no_dangling_row(
        session, start_worker, tiny_bert_dir):
    from app.services import ServiceError
    from app.services.export import exportable_runs, model_dir

    project = sentiment_project(session, n_unlabelled=12)
    run = jobs.enqueue(session, project.id, train_config(str(tiny_bert_dir), rounds=1))
    worker = start_worker("--max-runs", "1")
    assert worker.wait(240) == 0, worker.log()
    assert [r.id for r in exportable_runs(fresh(session), project.id)] == [run.id]
    import torch
    import transformers

    env = _run(session, run.id).config["environment"]  # every run records what it ran on
    assert (env["torch"], env["transformers"], env["device"]) == (
        torch.__version__, transformers.__version__, "cpu")
    shutil.rmtree(jobs.run_dir(run.id))  # someone cleans up the disk by hand

    assert exportable_runs(session, project.id) == []
    with pytest.raises(ServiceError, match="deleted from disk.*Retry the run"):
        model_dir(session, run.id)
    assert queries.run_artifacts(fresh(session), run.id) == []
