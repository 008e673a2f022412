"""By default a run is evaluated on documents it never sees (issue 16): "auto" sets aside a
share of the gold-labelled documents when the run starts; the worker keeps them out of the
self-training pool; the progress page says what accuracy was measured on."""

from __future__ import annotations

from app.services import runs as run_service
from app.services import training
from db.models import Document, Label
from tests.app2.conftest import TINY_CONFIG, app_test
from worker.data import build_datasets

LABELS = ["positive", "negative"]


def test_auto_sets_aside_gold_documents_the_run_never_sees(db, labelled_project):
    project, config = labelled_project
    counts = training.data_counts(db, project.id)
    assert counts.gold_unlabelled == 18
    auto = training.resolve_evaluation(counts, "auto")
    assert (auto.source, auto.size, auto.reserved) == ("unseen_gold", 3, 3)
    assert "never sees them" in auto.message
    pool = training.resolve_evaluation(counts, "gold")
    assert (pool.source, pool.size, pool.reserved) == ("gold", 18, 0)
    assert "self-trains on these texts" in pool.message

    run = training.start_training(db, project.id, config.id, eval_source="auto",
                                  list_config=training.build_list_config("custom", TINY_CONFIG))
    reserved = run.config["eval_documents"]
    assert len(reserved) == 3
    labelled = {d for (d,) in db.query(Label.document_id)}
    docs = {d.id: d for d in db.query(Document).filter(Document.id.in_(reserved))}
    assert all(d.gold_label in LABELS and d.id not in labelled for d in docs.values())
    assert "never sees them" in run.config["evaluation"]["message"]

    data = build_datasets(db, project.id, LABELS, "auto", reserved)
    pool_ids = {ex.id for ex in data.unlabeled}
    assert len(pool_ids) == 15 and not pool_ids & set(reserved)
    assert sorted(ex.id for ex in data.eval) == reserved

    # runs queued before set-asides existed (no eval_documents) keep the old behaviour
    old = build_datasets(db, project.id, LABELS, "auto")
    assert len(old.unlabeled) == 18 and len(old.eval) == 18
    assert build_datasets(db, project.id, LABELS, "none", reserved).eval == []


def test_progress_page_says_what_accuracy_was_measured_on(trained, trained_db):
    run = run_service.get_run(trained_db, trained.run_id)
    assert "never sees them" in run_service.evaluation_text(run)
    at = app_test("progress.py", trained.project_id).run()
    assert not at.exception, at.exception
    assert any("Accuracy measured on" in c.value and "never sees them" in c.value
               for c in at.caption)
