"""Worker-side writes (upserts, truncation on resume) and the app's read API."""

from __future__ import annotations

from db import jobs, queries
from db.models import Document, PseudoLabel, RoundMetric, RunStep
from db.progress import (
    add_artifact,
    record_metrics,
    record_pseudo_labels,
    truncate_after_round,
    update_progress,
)


def _running_run(session, project):
    worker = jobs.register_worker(session, device="cpu").id
    run = jobs.enqueue(session, project.id, {})
    jobs.claim(session, worker)
    return run, worker


def test_progress_steps_and_ownership(session, project):
    run, worker = _running_run(session, project)
    steps = [{"round": 0, "phase": "teacher", "step": i, "global_step": i, "loss": 1.0 / (i + 1),
              "lr": 1e-4} for i in range(3)]
    assert update_progress(session, run.id, worker, steps=steps, current_round=0,
                           total_rounds=2, progress=0.25, phase="teacher") == "running"
    p = queries.run_progress(session, run.id)
    assert (p.status, p.current_round, p.progress, p.heartbeat_fresh) == ("running", 0, 0.25, True)
    losses = queries.step_losses(session, run.id)
    assert [s.step for s in losses] == [0, 1, 2]
    assert queries.step_losses(session, run.id, after_id=losses[-1].id) == []
    jobs.request_cancel(session, run.id)
    assert update_progress(session, run.id, worker, progress=0.3) == "cancelling"
    assert update_progress(session, run.id, "someone-else", progress=0.3) is None


def test_upserts_do_not_duplicate_and_truncate_drops_later_rounds(session, project):
    run, worker = _running_run(session, project)
    docs = [d.id for d in session.query(Document).order_by(Document.id)]
    for rnd in (0, 1, 2):
        record_metrics(session, run.id, rnd, {"accuracy": 0.5, "macro_f1": float("nan"),
                                              "per_class": {"a": {"f1": 0.1}}})
    record_metrics(session, run.id, 1, {"accuracy": 0.9})  # the same round again: replaced
    for rnd in (1, 2):
        for _ in range(2):
            record_pseudo_labels(session, run.id, rnd, docs[3:], [[0.2, 0.8]] * 3,
                                 ["positive"] * 3, [0.5, float("nan"), 0.1])
        update_progress(session, run.id, worker, steps=[
            {"round": rnd, "phase": "kd", "step": 1, "global_step": 1, "loss": 0.1, "lr": None}])
    metrics = queries.round_metrics(session, run.id)
    assert [(m.round, m.accuracy) for m in metrics] == [(0, 0.5), (1, 0.9), (2, 0.5)]
    assert metrics[0].macro_f1 is None and metrics[0].details["per_class"]["a"]["f1"] == 0.1
    assert session.query(PseudoLabel).filter_by(run_id=run.id).count() == 6

    truncate_after_round(session, run.id, 1)
    assert [m.round for m in queries.round_metrics(session, run.id)] == [0, 1]
    assert queries.pseudo_label_rounds(session, run.id) == [1]
    assert session.query(RunStep).filter(RunStep.round > 1).count() == 0
    assert session.query(RoundMetric).filter_by(run_id=run.id).count() == 2
    assert queries.run_progress(session, run.id).resumed_from_round == 1


def test_pseudo_label_filters_sorting_and_counts(session, project):
    run, _ = _running_run(session, project)
    docs = session.query(Document).order_by(Document.id).all()  # gold: n p n p n p
    ids = [d.id for d in docs]
    labels = ["negative", "negative", "positive", "positive", "negative", "positive"]
    probs = [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.55, 0.45], [0.1, 0.9]]
    weights = [0.4, 0.1, 0.3, float("nan"), 0.2, 0.5]
    record_pseudo_labels(session, run.id, 1, ids, probs, labels, weights)

    rows = queries.pseudo_labels(session, run.id, 1)  # default: heaviest first, None last
    assert [r.meta_weight for r in rows] == [0.5, 0.4, 0.3, 0.2, 0.1, None]
    assert rows[0].text == docs[5].text and rows[0].agrees_with_gold is True
    wrong = queries.pseudo_labels(session, run.id, 1, disagrees_with_gold=True, sort="document")
    assert [r.document_id for r in wrong] == [ids[1], ids[2]]
    assert queries.count_pseudo_labels(session, run.id, 1, disagrees_with_gold=True) == 2
    some = queries.pseudo_labels(session, run.id, 1, min_weight=0.2, max_weight=0.4,
                                 label="negative", sort="weight")
    assert [r.meta_weight for r in some] == [0.2, 0.4]
    page = queries.pseudo_labels(session, run.id, 1, sort="-confidence", limit=2, offset=1)
    assert [r.confidence for r in page] == [0.9, 0.8]
    assert len(queries.pseudo_label_weights(session, run.id)) == 6


def test_workers_artifacts_and_run_lists(session, project):
    run, worker = _running_run(session, project)
    assert [w.id for w in queries.live_workers(session)] == [worker]
    jobs.unregister_worker(session, worker)
    assert queries.live_workers(session) == []
    add_artifact(session, run.id, "checkpoint", "/x/round-0", sha256="a" * 64, bytes=3, round=0)
    add_artifact(session, run.id, "checkpoint", "/x/round-0", sha256="b" * 64, bytes=4, round=0)
    add_artifact(session, run.id, "model", "/x/model", sha256="c" * 64, bytes=5)
    assert [(a.kind, a.sha256[0]) for a in queries.run_artifacts(session, run.id)] == [
        ("checkpoint", "b"), ("model", "c")]
    assert queries.model_artifact(session, run.id).path == "/x/model"
    queued = jobs.enqueue(session, project.id, {}, kind="predict")
    assert [r.id for r in queries.list_runs(session, project.id)] == [queued.id, run.id]
    assert queries.queue_position(session, queued.id) == 1
    assert [r.id for r in queries.active_runs(session, project.id)] == [run.id, queued.id]
