"""Issue 26, smaller items: downloaded files are named by what the page shows ("Prediction
#1" -> predictions-prediction-1.csv), not by database ids; the inspector marks a missing
value "-" like the model card, never "None"."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import streamlit as st

from app.services import inspector as insp
from app.services import predict as predict_service
from tests.app2.conftest import app_test


@pytest.fixture()
def download_names(monkeypatch) -> list[str]:
    """The file names the pages give their download buttons (AppTest runs the pages in this
    process, so the real button is wrapped, not replaced)."""
    names: list[str] = []
    real = st.download_button

    def recording(*args, **kwargs):
        names.append(kwargs.get("file_name"))
        return real(*args, **kwargs)

    monkeypatch.setattr(st, "download_button", recording)
    return names


def test_predictions_are_downloaded_under_the_title_the_page_shows(trained, trained_db,
                                                                   download_names):
    from worker.main import WorkerProcess

    path = predict_service.save_upload(trained.project_id, b"text\na great film\nso dull\n",
                                       "docs.csv", "text")
    run = predict_service.start_predict(trained_db, trained.project_id, trained.run_id,
                                        input=str(path), text_column="text")
    WorkerProcess(poll=0.1, device="cpu").serve(once=True)
    trained_db.rollback()
    assert predict_service.predictions_file(trained_db, run.id) is not None
    assert run.title == "Prediction #1" and run.id != 1  # the id is not what people see
    at = app_test("predict.py", trained.project_id).run()
    assert not at.exception, at.exception
    assert "predictions-prediction-1.csv" in download_names, download_names
    assert f"predictions-run-{run.id}.csv" not in download_names


def test_the_export_zip_is_downloaded_under_the_run_title(trained, trained_db,
                                                          download_names):
    from db.models import Run

    title = trained_db.get(Run, trained.run_id).title
    at = app_test("export.py", trained.project_id).run()
    at.button(key="export_build").click().run()
    assert not at.exception, at.exception
    stem = predict_service.file_stem(trained_db.get(Run, trained.run_id))
    assert stem == "-".join(title.lower().replace("#", "").split())
    assert download_names == [f"model-{stem}.zip"]
    assert any(f"model-{stem}.zip" in s.value for s in at.success)


def test_file_stem_is_the_title_in_file_name_form():
    from db.models import Run

    assert predict_service.file_stem(Run(id=7, kind="predict", number=1)) == "prediction-1"
    assert predict_service.file_stem(Run(id=7, kind="train", number=3)) == "run-3"


# ---------------------------------------------------------------- "-" for a missing value


def test_display_table_marks_missing_values_like_the_card():
    df = pd.DataFrame([
        (1, "a", "pos", 0.91234, None, None, None, None, None),
        (2, "b", "neg", 0.5, 0.12345, "neg", True, "neg", "human"),
        (3, "c", "neg", 0.6, math.nan, "pos", False, None, None),
    ], columns=insp.COLUMNS)
    shown = insp.display_table(df)
    assert shown.loc[0, "meta_weight"] == "-" and shown.loc[0, "gold_label"] == "-"
    assert shown.loc[0, "agrees_with_gold"] == "-" and shown.loc[0, "current_label"] == "-"
    assert shown.loc[2, "meta_weight"] == "-" and shown.loc[2, "current_label"] == "-"
    assert shown.loc[1, "meta_weight"] == "0.1235" and shown.loc[0, "confidence"] == "0.912"
    assert list(shown["agrees_with_gold"]) == ["-", "yes", "no"]
    assert "None" not in shown.astype(str).to_numpy().ravel().tolist()
    assert "nan" not in shown.astype(str).to_numpy().ravel().tolist()
    assert insp.shown(None) == insp.shown(math.nan) == "-"


def test_the_inspector_page_shows_a_dash_not_none(trained):
    at = app_test("inspector.py", trained.project_id).run()
    assert not at.exception, at.exception
    table = at.dataframe[-1].value
    # the documents shown have no label yet: their current label is missing
    assert len(table) and (table["current_label"] == "-").all(), table["current_label"]
    cells = table.drop(columns=["text"]).astype(str).to_numpy().ravel().tolist()
    assert "None" not in cells and "nan" not in cells
