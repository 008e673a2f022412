"""Service tests of app/services/runs.py against a run trained by a real worker, plus the
queue actions (cancel, retry, resume) and the chart builders."""

from __future__ import annotations

import pytest

from app import charts
from app.services import ServiceError, training
from app.services import runs as run_service
from db.models import Artifact, Run, utcnow
from tests.app2.conftest import TINY_CONFIG


def test_chart_data_of_a_trained_run(trained, trained_db):
    s, run_id = trained_db, trained.run_id
    rows = run_service.list_runs(s, trained.project_id)
    row = next(r for r in rows if r.id == run_id)
    assert row.status == "succeeded" and row.progress == pytest.approx(1.0)
    assert row.device == "cpu" and row.duration_s is not None and row.eta_s is None
    metrics = run_service.round_metrics(s, run_id)
    assert [m["round"] for m in metrics] == [0, 1, 2]
    assert all(m["accuracy"] is not None for m in metrics)
    losses = run_service.step_losses(s, run_id)
    assert losses and {"teacher"} <= {r["phase"] for r in losses}
    weights = run_service.meta_weights(s, run_id)
    assert weights and all(w >= 0 for ws in weights.values() for w in ws)
    pseudo_acc = run_service.pseudo_label_accuracy(s, run_id)
    assert pseudo_acc and all(0 <= r["accuracy"] <= 1 for r in pseudo_acc if r["accuracy"] is not None)
    run = run_service.get_run(s, run_id)
    dist = run_service.class_distribution(s, run)
    assert set(dist["labels"]) == {"positive", "negative"} and sum(dist["pseudo"].values()) > 0
    conf = run_service.latest_confusion(s, run_id)
    assert conf["labels"] == ["positive", "negative"] and len(conf["matrix"]) == 2
    assert run_service.model_artifact(s, run_id) is not None
    assert run_service.allowed_actions(s, row) == []
    # every chart builds with real data and has traces
    figs = [
        charts.metrics_figure(metrics), charts.loss_figure(losses),
        charts.weights_figure(weights), charts.pseudo_accuracy_figure(pseudo_acc),
        charts.class_distribution_figure(dist), charts.confusion_figure(conf),
        charts.compare_figure({"a": metrics, "b": metrics}),
    ]
    assert all(len(f.data) >= 1 for f in figs)


def test_empty_charts_say_no_data():
    for fig in (charts.metrics_figure([]), charts.loss_figure([]), charts.weights_figure({}),
                charts.pseudo_accuracy_figure([]), charts.confusion_figure(None),
                charts.class_distribution_figure({}), charts.compare_figure({"a": []})):
        assert not fig.data and fig.layout.annotations


def _queue(db, labelled_project):
    project, config = labelled_project
    cfg = training.build_list_config("custom", TINY_CONFIG)
    return project, training.start_training(db, project.id, config.id, list_config=cfg)


def test_cancel_a_queued_run(db, labelled_project):
    project, run = _queue(db, labelled_project)
    row = run_service.list_runs(db, project.id)[0]
    assert row.status == "queued" and run_service.allowed_actions(db, row) == ["cancel"]
    assert run_service.progress_text(row) == "Waiting for a worker"
    assert run_service.cancel_run(db, run.id).status == "cancelled"
    with pytest.raises(ServiceError, match="already finished"):
        run_service.cancel_run(db, run.id)


def test_cancel_a_running_run_asks_the_worker(db, labelled_project):
    _, run = _queue(db, labelled_project)
    r = db.get(Run, run.id)
    r.status, r.started_at, r.progress = "running", utcnow(), 0.5
    db.commit()
    assert run_service.eta_s(db, r) is None  # no step measured yet: no guess
    r.current_round, r.phase = 0, "select_lr"
    assert ("Teacher (round 0) · choosing the learning rate (cross-validation on your labels)"
            in run_service.progress_text(r))
    assert run_service.cancel_run(db, run.id).status == "cancelling"


def test_retry_and_resume(db, labelled_project):
    project, run = _queue(db, labelled_project)
    with pytest.raises(ServiceError, match="Only failed or cancelled"):
        run_service.retry_run(db, run.id)
    r = db.get(Run, run.id)
    r.status, r.error, r.finished_at = "failed", "Traceback: boom", utcnow()
    db.commit()
    row = run_service.list_runs(db, project.id)[0]
    assert row.error == "Traceback: boom"
    assert run_service.allowed_actions(db, row) == ["retry"]
    with pytest.raises(ServiceError, match="no finished round"):
        run_service.resume_run(db, run.id)
    db.add(Artifact(run_id=run.id, kind="checkpoint", round=1, path="/nowhere", sha256="0", bytes=0))
    db.commit()
    assert run_service.allowed_actions(db, row) == ["retry", "resume"]
    resumed = run_service.resume_run(db, run.id)
    assert resumed.status == "queued" and resumed.error is None
    r = db.get(Run, run.id)
    r.status = "cancelled"
    db.commit()
    assert run_service.retry_run(db, run.id).status == "queued"
