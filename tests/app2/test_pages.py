"""AppTest tests of the part-2 pages: train, runs, live progress, inspector, export, predict."""

from __future__ import annotations

from app.services import training
from db.models import ACCEPTED_PSEUDO, Label, Run, utcnow
from tests.app2.conftest import TINY_CONFIG, app_test


def _texts(at) -> str:
    """Everything the page wrote, as one string."""
    kinds = ("markdown", "error", "warning", "info", "success", "caption", "text", "code")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def _fresh(session) -> None:
    """See what the app wrote: end the read snapshot (WAL) and forget loaded objects."""
    session.rollback()
    session.expire_all()


def _button(at, key):
    return at.button(key=key)


# ----------------------------------------------------------------------------- train


def test_train_page_without_project_shows_empty_state(db):
    at = app_test("train.py", None).run()
    assert not at.exception
    assert any("No project selected" in i.value for i in at.info)


def test_train_page_without_prompt(db):
    from app.services.projects import create_project

    project = create_project(db, "p")
    at = app_test("train.py", project.id).run()
    assert not at.exception
    assert any("No prompt yet" in i.value for i in at.info)


def test_train_page_summary_and_start(db, labelled_project):
    project, _ = labelled_project
    at = app_test("train.py", project.id).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Training labels"] == "6"
    assert metrics["Unlabelled pool"] == "15"  # 18 unlabelled, 3 set aside for evaluation
    assert metrics["Trainable parameters"] != "-"
    assert "–" in metrics["Estimated time"]
    text = _texts(at)
    assert "python -m worker" in text  # no worker: says how to start one
    assert "3 documents with an imported gold label, set aside" in text
    start = _button(at, "start_training")
    assert not start.disabled
    at.radio(key="train_mode").set_value("classic").run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["Trainable parameters"] != "-"
    at.radio(key="train_mode").set_value("prompt").run()
    at.radio(key="train_preset").set_value("paper").run()
    assert not at.exception
    at.radio(key="train_preset").set_value("custom").run()
    assert not at.exception
    at.number_input(key="k_rounds").set_value(1).run()
    _button(at, "start_training").click().run()
    assert not at.exception
    assert any("queued" in s.value for s in at.success)
    run = db.query(Run).filter_by(project_id=project.id).one()
    assert run.status == "queued" and run.config["list_config"]["rounds"] == 1
    assert run.config["preset"] == "custom"


def test_train_page_refuses_with_reasons(db, labelled_project):
    from app.services import labelling

    project, _ = labelled_project
    labelling.add_label_class(db, project.id, "neutral", "", "okay")
    at = app_test("train.py", project.id).run()
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert "No training label yet for" in errors and "neutral" in errors
    assert _button(at, "start_training").disabled


def test_train_page_hold_out_offer(db, labelled_project):
    project, _ = labelled_project
    at = app_test("train.py", project.id).run()
    at.radio(key="eval_source").set_value("held_out").run()
    assert any("cannot be measured" in w.value for w in at.warning)
    at.number_input(key="holdout_n").set_value(1).run()
    _button(at, "holdout_btn").click().run()
    assert not at.exception
    assert db.query(Label).filter_by(project_id=project.id, held_out=True).count() == 2
    assert any("2 held-out labels" in i.value for i in at.info)


# ----------------------------------------------------------------------------- runs


def test_runs_page_lists_and_acts(db, labelled_project):
    project, config = labelled_project
    cfg = training.build_list_config("custom", TINY_CONFIG)
    queued = training.start_training(db, project.id, config.id, list_config=cfg)
    failed = training.start_training(db, project.id, config.id, list_config=cfg)
    r = db.get(Run, failed.id)
    r.status, r.error, r.finished_at = "failed", "RuntimeError: out of memory\nTraceback...", utcnow()
    db.commit()
    at = app_test("runs.py", project.id).run()
    assert not at.exception, at.exception
    assert len(at.dataframe) == 2  # all runs, and the table of training runs
    assert any("out of memory" in c.value for c in at.code)  # the error, as text
    assert any("python -m worker" in w.value for w in at.warning)
    _button(at, f"retry_{failed.id}").click().run()
    assert not at.exception
    _fresh(db)
    assert db.get(Run, failed.id).status == "queued"
    assert any("retry done" in s.value for s in at.success)
    _button(at, f"cancel_{queued.id}").click().run()  # asks first
    assert not at.exception
    assert any(f"Cancel {queued.title}?" in w.value for w in at.warning)
    _button(at, f"cancel_no_{queued.id}").click().run()
    _fresh(db)
    assert db.get(Run, queued.id).status == "queued"
    assert not any(f"Cancel {queued.title}?" in w.value for w in at.warning)
    _button(at, f"cancel_{queued.id}").click().run()
    _button(at, f"cancel_yes_{queued.id}").click().run()
    assert not at.exception
    _fresh(db)
    assert db.get(Run, queued.id).status == "cancelled"


def test_runs_page_empty(db, labelled_project):
    project, _ = labelled_project
    at = app_test("runs.py", project.id).run()
    assert not at.exception
    assert any("No run yet" in i.value for i in at.info)


# ----------------------------------------------------------------------------- progress


def test_progress_page_of_a_trained_run(trained):
    at = app_test("progress.py", trained.project_id).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 7  # with the reliability diagram
    metrics = {m.label: m.value for m in at.metric}
    assert "succeeded" in metrics["Status"] and metrics["Device"] == "cpu"
    assert "Accuracy" in metrics
    assert at.get("progress")


def test_progress_page_live_and_compare(trained, trained_db):
    # a second, queued run: the live view (fragment) shows it waiting; compare offers both
    cfg = training.build_list_config("custom", TINY_CONFIG)
    run = training.start_training(trained_db, trained.project_id, trained.prompt_config_id,
                                  list_config=cfg)
    at = app_test("progress.py", trained.project_id).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="progress_run_id").value == run.id
    assert any("Waiting for a worker" in i.value for i in at.info)
    assert at.selectbox(key="cmp_a") is not None
    charts = at.get("plotly_chart")
    assert len(charts) >= 6 + 1  # live view + comparison figures
    at.selectbox(key="progress_run_id").set_value(trained.run_id).run()
    assert not at.exception


def test_progress_page_empty(db, labelled_project):
    project, _ = labelled_project
    at = app_test("progress.py", project.id).run()
    assert any("No training run yet" in i.value for i in at.info)


# ----------------------------------------------------------------------------- inspector


def test_inspector_accept_correct_skip(trained, trained_db):
    at = app_test("inspector.py", trained.project_id).run()
    assert not at.exception, at.exception
    first = at.subheader[0].value
    assert first.startswith("Document ")
    doc_id = int(first.split()[1])
    _button(at, "insp_accept").click().run()
    assert not at.exception
    _fresh(trained_db)
    label = trained_db.query(Label).filter_by(document_id=doc_id).one()
    assert label.source == ACCEPTED_PSEUDO
    nxt = int(at.subheader[0].value.split()[1])
    assert nxt != doc_id
    _button(at, "insp_skip").click().run()
    after_skip = int(at.subheader[0].value.split()[1])
    assert after_skip != nxt
    assert trained_db.query(Label).filter_by(document_id=nxt).count() == 0
    _button(at, "insp_correct").click().run()
    assert not at.exception
    _fresh(trained_db)
    assert trained_db.query(Label).filter_by(document_id=after_skip).one().source == "human"
    # filters
    at.checkbox(key="insp_disagree").check().run()
    assert not at.exception
    at.selectbox(key="insp_class").set_value("positive").run()
    at.selectbox(key="insp_sort").set_value("confidence (highest first)").run()
    assert not at.exception


def test_inspector_shows_document_text_as_text(trained, trained_db):
    from db.models import Document, PseudoLabel

    pl = trained_db.query(PseudoLabel).filter_by(run_id=trained.run_id).first()
    doc = trained_db.get(Document, pl.document_id)
    doc.text = "<b>bold</b> **stars** <script>alert(1)</script>"
    trained_db.commit()
    at = app_test("inspector.py", trained.project_id)
    at.run()
    at.selectbox(key="insp_sort").set_value("document").run()
    for _ in range(30):
        if at.subheader[0].value == f"Document {doc.id}":
            break
        _button(at, "insp_skip").click().run()
    assert at.subheader[0].value == f"Document {doc.id}"
    assert any(t.value == doc.text for t in at.text)  # st.text: shown verbatim, not rendered
    assert all("<script>" not in m.value for m in at.markdown)


def test_inspector_empty(db, labelled_project):
    project, _ = labelled_project
    at = app_test("inspector.py", project.id).run()
    assert any("No pseudo-labels yet" in i.value for i in at.info)


# ----------------------------------------------------------------------------- export


def test_export_page_builds_a_download(trained):
    at = app_test("export.py", trained.project_id).run()
    assert not at.exception, at.exception
    assert any("Base model" in c.value for c in at.code)  # the model card, as source
    _button(at, "export_build").click().run()
    assert not at.exception, at.exception
    assert any("Export ready" in s.value for s in at.success)
    assert at.get("download_button")
    assert (trained.data_dir / "exports" / f"run-{trained.run_id}.zip").is_file()


def test_export_page_empty(db, labelled_project):
    project, _ = labelled_project
    at = app_test("export.py", project.id).run()
    assert any("No trained model yet" in i.value for i in at.info)


# ----------------------------------------------------------------------------- predict


def test_predict_page_one_text_and_background(trained, trained_db):
    at = app_test("predict.py", trained.project_id).run()
    assert not at.exception, at.exception
    at.text_area(key="predict_text").input("a great film").run()
    _button(at, "predict_one").click().run()
    assert not at.exception, at.exception
    assert at.metric[0].label == "Predicted label"
    assert at.metric[0].value in ("positive", "negative")
    assert len(at.dataframe) == 1  # the probabilities of each class
    _button(at, "predict_start").click().run()
    assert not at.exception
    runs = trained_db.query(Run).filter_by(kind="predict").all()
    assert len(runs) == 1 and runs[0].config["input"] == "corpus"
    assert any(f"{runs[0].title} queued" in s.value for s in at.success)
    assert runs[0].title == "Prediction #1"


def test_predict_page_empty_text_and_no_model(db, labelled_project, trained=None):
    project, _ = labelled_project
    at = app_test("predict.py", project.id).run()
    assert any("No trained model yet" in i.value for i in at.info)


def test_predict_page_uploaded_file(trained, trained_db):
    at = app_test("predict.py", trained.project_id).run()
    at.radio(key="predict_source").set_value("file").run()
    assert _button(at, "predict_start").disabled
    at.file_uploader(key="predict_upload").upload(
        "new.csv", b"id,body\n1,a great film\n2,so boring\n", "text/csv").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="predict_column").options == ["id", "body"]
    at.selectbox(key="predict_column").set_value("body").run()
    _button(at, "predict_start").click().run()
    assert not at.exception, at.exception
    _fresh(trained_db)
    run = trained_db.query(Run).filter_by(kind="predict").one()
    assert run.config["text_column"] == "body"
    assert run.config["input"].startswith(str(trained.data_dir))


def test_predict_page_bad_upload(trained):
    at = app_test("predict.py", trained.project_id).run()
    at.radio(key="predict_source").set_value("file").run()
    at.file_uploader(key="predict_upload").upload("bad.csv", b"text\ncaf\xe9\n", "text/csv").run()
    assert not at.exception
    assert any("not valid UTF-8" in e.value.replace("\\", "") for e in at.error)  # md-escaped


def test_progress_page_warns_about_a_silent_worker(db, labelled_project):
    from datetime import timedelta

    project, config = labelled_project
    cfg = training.build_list_config("custom", TINY_CONFIG)
    run = training.start_training(db, project.id, config.id, list_config=cfg)
    r = db.get(Run, run.id)
    r.status, r.started_at, r.progress, r.current_round, r.total_rounds = (
        "running", utcnow() - timedelta(minutes=5), 0.4, 1, 2)
    r.heartbeat_at = utcnow() - timedelta(minutes=4)
    db.commit()
    at = app_test("progress.py", project.id).run()
    assert not at.exception, at.exception
    assert any("gone silent" in w.value for w in at.warning)
    assert at.get("progress")[0].proto.text.startswith("Round 1 of 2")
    # no step time measured: no guess from the elapsed time (test_eta.py has the measured case)
    assert {m.label: m.value for m in at.metric}["Time left (ETA)"] == "measuring…"
