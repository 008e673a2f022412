"""Train runs in real worker processes with the tiny model: cancel while running, SIGTERM
(graceful hand-back) with app reads and writes going on, kill -9 and resume."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from db import jobs, queries
from db.models import (
    CANCELLED,
    CANCELLING,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    Artifact,
    Document,
    Label,
    LabelClass,
    PseudoLabel,
    RoundMetric,
    Run,
)
from db.session import get_session, write_transaction
from tests.db.helpers import make_project
from tests.worker.conftest import fresh, wait_for
from tests.worker.helpers import sentiment_project, train_config

N_UNLABELLED = 24


def _run(session, run_id) -> Run:
    return fresh(session).get(Run, run_id)


def _in_round(session, run_id, round_: int) -> bool:
    run = _run(session, run_id)
    assert run.status in (QUEUED, RUNNING), run.error
    return run.status == RUNNING and (run.current_round or 0) >= round_ and (run.step or 0) > 0


def _counts(session, project_id) -> tuple[int, int]:
    fresh(session)
    docs = session.scalar(select(func.count()).select_from(Document)
                          .where(Document.project_id == project_id))
    labels = session.scalar(select(func.count()).select_from(Label)
                            .where(Label.project_id == project_id))
    return docs, labels


def _assert_complete(session, run_id, rounds: int) -> None:
    """Every round evaluated once, pseudo-labels of every student round exactly once per
    document, one checkpoint per round and the final model."""
    metrics = queries.round_metrics(fresh(session), run_id)
    assert [m.round for m in metrics] == list(range(rounds + 1))
    assert all(m.accuracy is not None and "confusion" in m.details for m in metrics)
    assert all(m.pseudo_label_accuracy is not None for m in metrics[1:])
    per_round = dict(session.execute(
        select(PseudoLabel.round, func.count()).where(PseudoLabel.run_id == run_id)
        .group_by(PseudoLabel.round)).all())
    assert per_round == {r: N_UNLABELLED for r in range(1, rounds + 1)}
    ckpts = queries.run_artifacts(session, run_id, kind="checkpoint")
    assert [a.round for a in ckpts] == list(range(rounds + 1))
    assert all(Path(a.path).is_dir() and len(a.sha256) == 64 and a.bytes > 0 for a in ckpts)
    model = queries.model_artifact(session, run_id)
    assert model is not None and (Path(model.path) / "adapter_config.json").is_file()


def test_cancel_a_running_run(session, start_worker, tiny_bert_dir):
    project = sentiment_project(session, n_unlabelled=N_UNLABELLED)
    queued = jobs.enqueue(session, project.id, train_config(str(tiny_bert_dir)))
    assert jobs.request_cancel(session, queued.id) == CANCELLED
    run = jobs.enqueue(session, project.id, train_config(str(tiny_bert_dir), teacher_steps=5000))
    worker = start_worker("--max-runs", "1")
    wait_for(lambda: _in_round(session, run.id, 0), 90, what="training to start")
    assert jobs.request_cancel(session, run.id) == CANCELLING
    assert worker.wait(60) == 0, worker.log()
    run = _run(session, run.id)
    assert run.status == CANCELLED and run.finished_at is not None
    assert run.step < 5000  # stopped at a step boundary, long before the end
    assert f"run {run.id} cancelled" in worker.log()
    queued = _run(session, queued.id)
    assert (queued.status, queued.attempts, queued.worker_id) == (CANCELLED, 0, None)


def _app_activity(stop: threading.Event, run_id: int, errors: list, reads: list) -> None:
    """What the Streamlit pages do while a run trains: poll the read API, and write
    (labelling in another project) in short transactions."""
    with get_session() as s:
        other = make_project(s, name="other-project", docs=[(f"text {i}", None) for i in range(60)],
                             labelled={}, held_out={})
        cls = s.scalars(select(LabelClass).where(LabelClass.project_id == other.id)).first()
        doc_ids = list(s.scalars(select(Document.id).where(Document.project_id == other.id)))
    i = 0
    while not stop.is_set():
        try:
            with get_session() as s:
                p = queries.run_progress(s, run_id)
                queries.round_metrics(s, run_id)
                queries.step_losses(s, run_id)
                for r in queries.pseudo_label_rounds(s, run_id):
                    queries.pseudo_labels(s, run_id, r, min_weight=0.0, sort="-weight", limit=20)
                    queries.count_pseudo_labels(s, run_id, r, disagrees_with_gold=True)
                queries.live_workers(s)
                if i < len(doc_ids):
                    with write_transaction(s):
                        s.add(Label(project_id=other.id, document_id=doc_ids[i],
                                    label_class_id=cls.id))
                reads.append((p.status, p.progress))
            i += 1
        except OperationalError as e:  # "database is locked" would land here
            errors.append(e)
        time.sleep(0.05)


@pytest.mark.sqlite_only  # the app's reads and writes beside a worker: SQLite's locking
def test_sigterm_hands_the_run_back_while_the_app_reads_and_writes(
        session, start_worker, tiny_bert_dir):
    project = sentiment_project(session, n_unlabelled=N_UNLABELLED)
    config = train_config(str(tiny_bert_dir), rounds=2, teacher_steps=10, unlabeled_steps=150,
                          labeled_steps=20)
    run = jobs.enqueue(session, project.id, config)
    stop, errors, reads = threading.Event(), [], []
    app = threading.Thread(target=_app_activity, args=(stop, run.id, errors, reads))
    app.start()
    try:
        first = start_worker()
        wait_for(lambda: _in_round(session, run.id, 2), 120, what="round 2")
        first.signal(signal.SIGTERM)
        assert first.wait(60) == 0, first.log()
        handed_back = _run(session, run.id)
        assert (handed_back.status, handed_back.attempts, handed_back.phase) == (
            QUEUED, 0, "interrupted")  # not counted as a failed attempt
        assert f"run {run.id} handed back to the queue (queued)" in first.log()
        assert [m.round for m in queries.round_metrics(fresh(session), run.id)] == [0, 1]

        # New labels since the checkpoint: the engine refuses to resume on other data, so
        # the next worker starts the run over (and still finishes it).
        with write_transaction(session):
            doc = session.scalars(select(Document).where(
                Document.project_id == project.id, ~Document.id.in_(select(Label.document_id)))
                .order_by(Document.id)).first()
            cls = session.scalars(select(LabelClass).where(
                LabelClass.project_id == project.id, LabelClass.name == doc.gold_label)).one()
            session.add(Label(project_id=project.id, document_id=doc.id, label_class_id=cls.id))
        second = start_worker("--max-runs", "1")
        assert second.wait(120) == 0, second.log()
        assert "starting over" in second.log()
    finally:
        stop.set()
        app.join(30)
    assert errors == []
    assert len(reads) > 20 and any(status == RUNNING for status, _ in reads)
    done = _run(session, run.id)
    assert (done.status, done.attempts, done.resumed_from_round) == (SUCCEEDED, 1, None)
    metrics = queries.round_metrics(fresh(session), run.id)
    assert [m.round for m in metrics] == [0, 1, 2]
    per_round = dict(session.execute(
        select(PseudoLabel.round, func.count()).where(PseudoLabel.run_id == run.id)
        .group_by(PseudoLabel.round)).all())
    assert per_round == {1: N_UNLABELLED - 1, 2: N_UNLABELLED - 1}


def test_kill_9_mid_round_2_resumes_from_the_round_1_checkpoint(
        session, start_worker, tiny_bert_dir):
    project = sentiment_project(session, n_unlabelled=N_UNLABELLED)
    before = _counts(session, project.id)
    config = train_config(str(tiny_bert_dir), rounds=3, teacher_steps=10, unlabeled_steps=150,
                          labeled_steps=20)
    run = jobs.enqueue(session, project.id, config)
    first = start_worker()
    wait_for(lambda: _in_round(session, run.id, 2), 120, what="round 2")
    first.signal(signal.SIGSTOP)  # freeze it mid round 2, look, then kill -9
    assert jobs.latest_checkpoint(fresh(session), run.id).round == 1
    first.kill()  # SIGKILL: no clean-up, the heartbeat just stops
    early = {m.round: (m.id, m.accuracy, m.details) for m in queries.round_metrics(session, run.id)}
    assert sorted(early) == [0, 1]
    assert _run(session, run.id).status == RUNNING  # nobody knows yet

    second = start_worker("--max-runs", "2")  # the train run, then a predict run
    wait_for(lambda: _run(session, run.id).status == SUCCEEDED, 120, what="resumed run")
    log = second.log()
    assert f"re-queued runs of silent workers: [{run.id}]" in log
    assert "resuming from the round-1 checkpoint" in log
    done = _run(session, run.id)
    assert (done.attempts, done.resumed_from_round, done.progress) == (2, 1, 1.0)
    _assert_complete(session, run.id, rounds=3)
    later = {m.round: (m.id, m.accuracy, m.details) for m in queries.round_metrics(session, run.id)}
    # Earlier rounds untouched (but for the per-example evaluation of the kept round).
    later = {r: (i, a, {k: v for k, v in d.items() if k != "eval_predictions"})
             for r, (i, a, d) in later.items()}
    assert {r: later[r] for r in (0, 1)} == early
    assert _counts(session, project.id) == before
    assert session.scalar(select(func.count()).select_from(RoundMetric)
                          .where(RoundMetric.run_id == run.id)) == 4

    predict = jobs.enqueue(session, project.id, {"source_run_id": run.id, "input": "corpus"},
                           kind="predict")
    assert second.wait(60) == 0, second.log()
    assert _run(session, predict.id).status == SUCCEEDED
    (csv_artifact,) = queries.run_artifacts(fresh(session), predict.id, kind="predictions")
    assert session.scalar(select(func.count()).select_from(Artifact)
                          .where(Artifact.run_id == predict.id)) == 1
    lines = Path(csv_artifact.path).read_text().splitlines()
    assert lines[0] == "document_id,text,prediction,prob_negative,prob_positive"
    assert len(lines) == 1 + before[0]
