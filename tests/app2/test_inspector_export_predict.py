"""Service tests of the inspector, export and predict services on a run trained by a real
worker."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from app.services import ServiceError, training
from app.services import export as export_service
from app.services import inspector as insp
from app.services import predict as predict_service
from db.models import ACCEPTED_PSEUDO, HUMAN, Artifact, Label, LabelClass, Run


def test_pseudo_label_table_filters_and_sorts(trained, trained_db):
    s, run_id = trained_db, trained.run_id
    rounds = insp.rounds_with_pseudo_labels(s, run_id)
    assert rounds and rounds == sorted(rounds)
    r = rounds[-1]
    overview = insp.round_overview(s, run_id, r)
    # every unlabelled doc but the 3 set aside for evaluation
    assert overview["total"] == 15 and overview["with_gold"] == 15
    df = insp.pseudo_label_table(s, run_id, r)
    assert len(df) == 15 and set(df["pseudo_label"]) <= {"positive", "negative"}
    weights = df["meta_weight"].dropna().tolist()
    assert weights == sorted(weights)
    high = insp.pseudo_label_table(s, run_id, r, sort="weight (highest first)")
    assert high["meta_weight"].dropna().tolist() == sorted(weights, reverse=True)
    one = df["pseudo_label"].iloc[0]
    assert set(insp.pseudo_label_table(s, run_id, r, insp.Filters(label=one))["pseudo_label"]) == {one}
    low = insp.pseudo_label_table(s, run_id, r, insp.Filters(low_weight=0.5))
    mean = insp.mean_weight(s, run_id, r)
    assert all(w < 0.5 * mean for w in low["meta_weight"])
    dis = insp.pseudo_label_table(s, run_id, r, insp.Filters(disagree_with_gold=True))
    assert all(dis["gold_label"] != dis["pseudo_label"])
    assert len(dis) == overview["with_gold"] - overview["agree"]
    first = int(df["document_id"].iloc[0])
    skipped = insp.pseudo_label_table(s, run_id, r, insp.Filters(exclude_ids=(first,)))
    assert first not in skipped["document_id"].tolist()


def test_accept_correct_and_they_count_for_the_next_run(trained, trained_db):
    s, run_id, pid = trained_db, trained.run_id, trained.project_id
    r = insp.rounds_with_pseudo_labels(s, run_id)[-1]
    df = insp.pseudo_label_table(s, run_id, r)
    before = training.data_counts(s, pid)
    doc_a, label_a = int(df["document_id"].iloc[0]), df["pseudo_label"].iloc[0]
    insp.accept(s, run_id, r, doc_a)
    label = s.query(Label).filter_by(document_id=doc_a).one()
    assert label.source == ACCEPTED_PSEUDO
    assert s.get(LabelClass, label.label_class_id).name == label_a
    doc_b = int(df["document_id"].iloc[1])
    other = "negative" if df["pseudo_label"].iloc[1] == "positive" else "positive"
    insp.correct(s, run_id, r, doc_b, other)
    label_b = s.query(Label).filter_by(document_id=doc_b).one()
    assert label_b.source == HUMAN and s.get(LabelClass, label_b.label_class_id).name == other
    after = training.data_counts(s, pid)
    assert after.train_total == before.train_total + 2
    assert after.unlabelled == before.unlabelled - 2
    # labelled documents drop out of the default view; the accepted count shows
    remaining = insp.pseudo_label_table(s, run_id, r)["document_id"].tolist()
    assert doc_a not in remaining and doc_b not in remaining
    assert insp.accepted_count(s, pid) == 1
    with pytest.raises(ServiceError):
        insp.correct(s, run_id, r, doc_b, "no such class")
    with pytest.raises(ServiceError):
        insp.accept(s, run_id, 99, doc_a)


def test_export_zip_reloads_with_the_same_predictions(trained, trained_db, tmp_path):
    from list_engine import PromptClassifier

    s, run_id = trained_db, trained.run_id
    assert [r.id for r in export_service.exportable_runs(s, trained.project_id)] == [run_id]
    result = export_service.build_export(s, run_id)
    names = {n.split("/", 1)[1] for n in result.files}
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md"} <= names
    assert s.query(Artifact).filter_by(run_id=run_id, kind="export").count() == 1
    with zipfile.ZipFile(result.path) as zf:
        card = zf.read(f"run-{run_id}/README.md").decode()
    for needle in ("Base model", "{text} It was {mask}.", "`positive` -> `great`", "Seed: 7",
                   "| teacher (0) |", "Training labels: 6", "from_pretrained",
                   "Data (when the run started)",
                   "Unlabelled documents: 15 (the self-training pool; 3 more with gold labels",
                   "Prompt head: MLM head", "Max length: ", "chosen by 2-fold"):
        assert needle in card, needle
    folder = export_service.unpack(result.path, tmp_path / "unzipped")
    texts = ["great film, loved it", "boring and awful", "a joy"]
    reloaded = PromptClassifier.from_pretrained(folder, device="cpu")
    original = predict_service.load_classifier(export_service.model_dir(s, run_id))
    assert reloaded.labels == original.labels == ["positive", "negative"]
    np.testing.assert_allclose(reloaded.predict_proba(texts), original.predict_proba(texts),
                               atol=1e-6)


def test_card_pseudo_label_accuracy_is_the_pages(trained, trained_db):
    """The card's pseudo-label column shows the figures the Live progress page charts."""
    from app.services import runs as run_service
    from db.models import Run

    s, run_id = trained_db, trained.run_id
    page = {p["round"]: p["accuracy"] for p in run_service.pseudo_label_accuracy(s, run_id)}
    assert any(v is not None for k, v in page.items() if k > 0)  # the pool has gold labels
    card = export_service.model_card(s, s.get(Run, run_id))
    for m in run_service.round_metrics(s, run_id):
        name = "teacher (0)" if m["round"] == 0 else str(m["round"])
        row = next(line for line in card.splitlines() if line.startswith(f"| {name} |"))
        shown = page.get(m["round"])
        assert row.rstrip(" |").endswith("-" if shown is None else f"{100 * shown:.1f} %"), row


def test_export_matches_the_in_memory_classifier(db, labelled_project, tmp_path):
    """Round trip against the classifier as it was in memory (not a reload of the same
    files): the exported folder gives the same probabilities for the same label names."""
    from list_engine import PromptClassifier

    project, config = labelled_project
    from db.settings import get_settings

    clf = PromptClassifier.create(model=get_settings().model, template=config.template,
                                  verbalizer=dict(config.verbalizer), device="cpu")
    model_dir = clf.save_pretrained(tmp_path / "model")
    run = Run(project_id=project.id, kind="train", status="succeeded", config={
        "template": config.template, "verbalizer": dict(config.verbalizer), "model": "tiny",
        "list_config": {"seed": 3}})
    db.add(run)
    db.flush()
    db.add(Artifact(run_id=run.id, kind="model", path=str(model_dir), sha256="x", bytes=1))
    db.commit()
    result = export_service.build_export(db, run.id)
    folder = export_service.unpack(result.path, tmp_path / "unzipped")
    reloaded = PromptClassifier.from_pretrained(folder, device="cpu")
    texts = ["great film", "terrible plot", "so so"]
    expected = clf.predict_proba(texts)
    got = reloaded.predict_proba(texts)
    order = [reloaded.labels.index(name) for name in clf.labels]
    np.testing.assert_allclose(got[:, order], expected, atol=1e-5)
    assert reloaded.labels == clf.labels
    assert "No evaluation set" in (folder / "README.md").read_text()


def test_export_with_merged_model(trained, trained_db):
    result = export_service.build_export(trained_db, trained.run_id, merged=True)
    names = {n.split("/", 1)[1] for n in result.files}
    assert "merged/config.json" in names and "merged/list_prompt.json" in names
    with zipfile.ZipFile(result.path) as zf:
        assert "Merged model" in zf.read(f"run-{trained.run_id}-merged/README.md").decode()


def test_export_without_model_is_refused(db, labelled_project):
    project, _ = labelled_project
    run = Run(project_id=project.id, kind="train", status="succeeded", config={})
    db.add(run)
    db.commit()
    assert export_service.exportable_runs(db, project.id) == []
    with pytest.raises(ServiceError, match="no saved model"):
        export_service.build_export(db, run.id)


def test_predict_one_text(trained, trained_db):
    path = predict_service.classifier_path(trained_db, trained.run_id)
    clf = predict_service.load_classifier(path)
    df = predict_service.probabilities(clf, "a great film")
    assert list(df.columns) == ["label", "probability"]
    assert set(df["label"]) == {"positive", "negative"}
    assert df["probability"].sum() == pytest.approx(1.0, abs=1e-5)
    assert df["probability"].is_monotonic_decreasing
    with pytest.raises(ServiceError, match="Type or paste"):
        predict_service.probabilities(clf, "   ")


def test_upload_checks(trained):
    with pytest.raises(ServiceError, match="empty"):
        predict_service.read_upload(b"", "x.csv")
    with pytest.raises(ServiceError, match="UTF-8"):
        predict_service.read_upload(b"text\n\xff\xfe bad", "x.csv")
    with pytest.raises(ServiceError, match="no column 'text'"):
        predict_service.save_upload(trained.project_id, b"body\nhello\n", "x.csv", "text")
    path = predict_service.save_upload(trained.project_id, b"text\nhello\nworld\n", "../../x.csv",
                                       "text")
    assert path.is_file() and path.is_relative_to(trained.data_dir)


def test_start_predict_enqueues(trained, trained_db):
    s = trained_db
    run = predict_service.start_predict(s, trained.project_id, trained.run_id)
    assert run.kind == "predict" and run.status == "queued"
    assert run.config == {"source_run_id": trained.run_id, "input": "corpus", "text_column": "text"}
    assert [r.id for r in predict_service.predict_runs(s, trained.project_id)] == [run.id]
    assert predict_service.predictions_file(s, run.id) is None
    with pytest.raises(ServiceError, match="missing"):
        predict_service.start_predict(s, trained.project_id, trained.run_id, input="/nope.csv")
