"""What the live views say while a run is young (issue 16): the pseudo-label accuracy chart
says why it is empty, and says it right."""

from __future__ import annotations

from app import charts
from app.services import runs as run_service
from app.services import training
from db.models import Document
from tests.app2.conftest import TINY_CONFIG


def test_pseudo_accuracy_chart_says_why_it_is_empty(trained, trained_db):
    finished = run_service.get_run(trained_db, trained.run_id)
    rows = run_service.pseudo_label_accuracy(trained_db, finished.id)
    assert rows and all(r["accuracy"] is not None for r in rows)  # gold on the pool

    cfg = training.build_list_config("custom", TINY_CONFIG)
    young = training.start_training(trained_db, trained.project_id, trained.prompt_config_id,
                                     list_config=cfg)
    note = run_service.pseudo_accuracy_note(trained_db, young)
    assert note.startswith("No pseudo-labels yet") and "gold" not in note
    fig = charts.pseudo_accuracy_figure(run_service.pseudo_label_accuracy(trained_db, young.id),
                                        empty_note=note)
    assert fig.layout.annotations[0].text == note

    no_rounds = training.start_training(
        trained_db, trained.project_id, trained.prompt_config_id,
        list_config=training.build_list_config("custom", {**TINY_CONFIG, "rounds": 0}))
    assert "no self-training" in run_service.pseudo_accuracy_note(trained_db, no_rounds)

    # pseudo-labels without gold: that is what the note then says
    trained_db.query(Document).update({Document.gold_label: None})
    trained_db.commit()
    assert "no imported gold label" in run_service.pseudo_accuracy_note(trained_db, finished)


def test_train_page_prices_presets_and_says_a_new_run_will_wait(db, labelled_project):
    from tests.app2.conftest import app_test

    project, config = labelled_project
    first = training.start_training(db, project.id, config.id,
                                    list_config=training.build_list_config("custom", TINY_CONFIG))
    at = app_test("train.py", project.id).run()
    assert not at.exception, at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "On this corpus and this machine: quick preset" in captions
    assert "paper preset" in captions
    assert "a few minutes" not in at.radio(key="train_preset").help
    at.button(key="start_training").click().run()
    assert not at.exception, at.exception
    infos = " ".join(i.value for i in at.info)
    assert f"This run waits in the queue behind {first.title} (queued)" in infos


def test_wait_message_names_the_runs_ahead(db, labelled_project):
    project, config = labelled_project
    cfg = training.build_list_config("custom", TINY_CONFIG)
    assert run_service.wait_message(db) is None  # an empty queue: starts at once
    a = training.start_training(db, project.id, config.id, list_config=cfg)
    b = training.start_training(db, project.id, config.id, list_config=cfg)
    assert run_service.wait_message(db, a) is None  # first in line
    assert f"behind {a.title} (queued)" in run_service.wait_message(db, b)
    assert (a.title, b.title) == ("Run #1", "Run #2")
    assert run_service.wait_message(db, b, workers=2) is None  # a second worker takes it


def test_runs_signature_changes_when_a_run_is_resumed_elsewhere(db, labelled_project):
    """What the Live progress page's watcher compares: a resume, retry or new run in another
    tab changes it, so a page showing finished runs redraws by itself."""
    from db.models import Run, utcnow

    project, config = labelled_project
    run = training.start_training(db, project.id, config.id,
                                  list_config=training.build_list_config("custom", TINY_CONFIG))
    r = db.get(Run, run.id)
    r.status, r.error, r.finished_at = "failed", "boom", utcnow()
    db.commit()
    before = run_service.runs_signature(run_service.list_runs(db, project.id, kind="train"))
    assert before == run_service.runs_signature(run_service.list_runs(db, project.id, kind="train"))
    run_service.retry_run(db, run.id)  # as the Runs page in another tab would
    after = run_service.runs_signature(run_service.list_runs(db, project.id, kind="train"))
    assert after != before and (run.id, "queued") == after[0][:2]
