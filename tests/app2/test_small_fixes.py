"""Smaller things from issue 16: one predictions CSV scheme (CLI and app), the batch-predict
button's words, the run numbers a user sees."""

from __future__ import annotations

import numpy as np

from list_engine.predictions import PREDICTION, prediction_columns
from tests.app2.conftest import app_test


def test_one_prediction_column_scheme():
    cols = prediction_columns(["neg", "pos"], np.array([[0.2, 0.8], [0.9, 0.1]]))
    assert list(cols) == [PREDICTION, "prob_neg", "prob_pos"]
    assert cols[PREDICTION] == ["pos", "neg"] and cols["prob_pos"] == [0.8, 0.1]
    assert prediction_columns(["a", "b"], np.zeros((0, 2))) == {
        PREDICTION: [], "prob_a": [], "prob_b": []}


def test_batch_predict_button_says_predict(trained):
    at = app_test("predict.py", trained.project_id).run()
    assert not at.exception, at.exception
    assert at.button(key="predict_start").label == "Start predicting"
    assert not any("labelling" in b.label.lower() for b in at.button)


def test_export_zip_entries_are_readable_by_all(trained, trained_db):
    import stat
    import zipfile

    from app.services import export as export_service

    result = export_service.build_export(trained_db, trained.run_id)
    with zipfile.ZipFile(result.path) as zf:
        modes = {info.filename: stat.S_IMODE(info.external_attr >> 16) for info in zf.infolist()}
        assert zf.testzip() is None
    assert modes and set(modes.values()) == {0o644}, modes


def test_a_probability_comes_with_how_often_such_ones_were_right(trained, trained_db):
    from app.services import evaluation
    from app.services import runs as run_service
    from app.services.confidence import confidence_note

    kept = evaluation.kept_round(run_service.round_metrics(trained_db, trained.run_id))
    assert kept is not None  # the worker stored the kept round's per-example evaluation
    bins = [b for b in evaluation.report(kept)["bins"] if b["count"]]
    b = bins[0]
    note = confidence_note(trained_db, trained.run_id, (b["lo"] + b["hi"]) / 2)
    assert f"were right {100 * b['accuracy']:.0f} % of the time ({b['count']} of" in note
    empty = next((x for x in evaluation.report(kept)["bins"] if not x["count"]), None)
    if empty is not None:
        assert "not known" in confidence_note(trained_db, trained.run_id,
                                              (empty["lo"] + empty["hi"]) / 2)


def test_predict_page_says_what_its_probability_has_meant(trained):
    at = app_test("predict.py", trained.project_id).run()
    assert not at.exception, at.exception
    at.text_area(key="predict_text").input("a great film, loved it")
    at.button(key="predict_one").click().run()
    assert not at.exception, at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "On its evaluation set" in captions or "not known" in captions
