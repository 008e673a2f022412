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
