"""Worker processes and the queue without training: claiming races, failures and retries,
predict runs (on a saved, untrained classifier)."""

from __future__ import annotations

import csv
import signal

from db import jobs, queries
from db.models import FAILED, QUEUED, SUCCEEDED, Artifact, Document, Run, Worker
from db.session import write_transaction
from tests.worker.conftest import fresh, wait_for
from tests.worker.helpers import sentiment_project, train_config


def _saved_model_run(session, project, model_dir, tmp_path):
    """A succeeded train run whose model artifact is an untrained classifier."""
    from list_engine import PromptClassifier

    cfg = train_config(str(model_dir))
    clf = PromptClassifier.create(model=str(model_dir), template=cfg["template"],
                                  verbalizer=cfg["verbalizer"], max_length=32, device="cpu")
    path = clf.save_pretrained(tmp_path / "model")
    with write_transaction(session):
        run = Run(project_id=project.id, kind="train", config=cfg, status=SUCCEEDED)
        session.add(run)
        session.flush()
        session.add(Artifact(run_id=run.id, kind="model", path=str(path), sha256="0" * 64,
                             bytes=1))
    return run


def test_two_workers_race_for_one_predict_run(session, start_worker, tiny_bert_dir, tmp_path):
    project = sentiment_project(session, n_unlabelled=4)
    source = _saved_model_run(session, project, tiny_bert_dir, tmp_path)
    workers = [start_worker("--max-runs", "1", "--poll", "0.05") for _ in range(2)]
    # Both idle and polling every 50 ms before the run appears: a real race.
    wait_for(lambda: fresh(session).query(Worker).count() == 2, 60, what="2 workers")
    run = jobs.enqueue(session, project.id, {"source_run_id": source.id, "input": "corpus"},
                       kind="predict")
    wait_for(lambda: jobs.run_status(session, run.id) == SUCCEEDED, 60, what="predict run")
    claimed = [w for w in workers if f"run {run.id} (predict, attempt 1 of 3) claimed" in w.log()]
    assert len(claimed) == 1, [w.log() for w in workers]
    winner, = claimed
    assert winner.wait(30) == 0
    loser = next(w for w in workers if w is not winner)
    assert loser.alive()
    loser.signal(signal.SIGTERM)  # idle worker: stops at once, cleanly
    assert loser.wait(30) == 0
    fresh(session)
    run = session.get(Run, run.id)
    assert run.attempts == 1 and run.progress == 1.0
    assert queries.live_workers(session) == []  # both unregistered

    (artifact,) = queries.run_artifacts(session, run.id, kind="predictions")
    with open(artifact.path) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == session.query(Document).filter_by(project_id=project.id).count()
    assert set(rows[0]) == {"document_id", "text", "prediction", "prob_negative", "prob_positive"}
    assert all(abs(float(r["prob_negative"]) + float(r["prob_positive"]) - 1) < 1e-4 for r in rows)


def test_failing_runs_are_retried_per_policy(session, start_worker, tiny_bert_dir, tmp_path):
    project = sentiment_project(session, n_unlabelled=4)
    broken_model = jobs.enqueue(session, project.id, train_config(str(tmp_path / "no-model")),
                                max_attempts=2)
    bad_config = jobs.enqueue(session, project.id,
                              {**train_config("default"), "eval_source": "bogus"})
    no_mask = jobs.enqueue(session, project.id,
                           {**train_config("default"), "template": "{text} has no mask."})
    # An error the worker cannot call permanent (damaged weights): retried after a pause.
    damaged = _saved_model_run(session, project, tiny_bert_dir, tmp_path)
    for weights in (tmp_path / "model").glob("*.safetensors"):
        weights.write_bytes(weights.read_bytes()[:100])
    transient = jobs.enqueue(session, project.id, {"source_run_id": damaged.id, "input": "corpus"},
                             kind="predict", max_attempts=2)
    worker = start_worker("--max-runs", "5")
    assert worker.wait(120) == 0, worker.log()
    log = worker.log()
    # A model that cannot be loaded is a permanent error: no second attempt (it used to
    # burn all of them within seconds).
    assert f"run {broken_model.id} failed (failed; permanent error, not retried)" in log
    assert f"run {bad_config.id} failed (failed; permanent error" in log  # configuration error
    assert f"run {transient.id} failed (queued; transient error)" in log
    assert f"run {transient.id} failed (failed; transient error)" in log
    fresh(session)
    first, second = session.get(Run, broken_model.id), session.get(Run, bad_config.id)
    assert (first.status, first.attempts) == (FAILED, 1)
    assert first.error.startswith("attempt 1 of 2: ") and "Traceback" in first.error
    assert "no-model" in first.error and "fix the model name or path" in first.error
    retried = session.get(Run, transient.id)
    assert (retried.status, retried.attempts) == (FAILED, 2)
    # The second attempt waited out the back-off (LIST_RETRY_DELAY_SECONDS=0.5).
    assert retried.not_before is not None and retried.started_at >= retried.not_before
    assert (second.status, second.attempts) == (FAILED, 1)
    assert "eval_source 'bogus'" in second.error
    third = session.get(Run, no_mask.id)
    assert (third.status, third.attempts) == (FAILED, 1)
    assert "RunConfigError: PromptError" in third.error and "{mask}" in third.error
    jobs.retry(session, broken_model.id)
    assert jobs.run_status(session, broken_model.id) == QUEUED
