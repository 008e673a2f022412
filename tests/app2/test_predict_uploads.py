"""Prediction uploads use the same reader as the corpus import (issue 15): any format, long
documents, the same clear errors; the worker reads the saved upload with it too."""

from __future__ import annotations

import json

import pytest

from app.services import ServiceError
from app.services import predict as predict_service
from list_engine.reading import read_table

LONG_DOC = ("a great film " * 23_077)[:300_000]


def test_upload_formats_and_errors_match_the_corpus_import():
    jsonl = "\n".join(json.dumps({"body": t}) for t in ["a great film", "so boring"]).encode()
    assert predict_service.read_upload(jsonl, "x.jsonl")["body"].tolist() == \
        ["a great film", "so boring"]
    utf16 = "text\ncafé\n".encode("utf-16-le")
    assert predict_service.read_upload(utf16, "x.csv")["text"].tolist() == ["café"]
    with pytest.raises(ServiceError, match="line 3 has 1"):
        predict_service.read_upload(b"text,id\na,1\nb\n", "ragged.csv")
    with pytest.raises(ServiceError, match="not a text file"):
        predict_service.read_upload(bytes(range(256)) * 20, "junk.csv")


def test_worker_predicts_an_uploaded_jsonl_with_a_300000_character_document(trained,
                                                                             trained_db):
    from worker.main import WorkerProcess

    data = "\n".join(json.dumps({"text": t}) for t in [LONG_DOC, "so boring"]).encode()
    path = predict_service.save_upload(trained.project_id, data, "docs.jsonl", "text")
    run = predict_service.start_predict(trained_db, trained.project_id, trained.run_id,
                                        input=str(path), text_column="text")
    WorkerProcess(poll=0.1, device="cpu").serve(once=True)
    trained_db.rollback()
    out = predict_service.predictions_file(trained_db, run.id)
    assert out is not None, trained_db.get(type(run), run.id).error
    predictions = read_table(out)
    assert predictions["text"].tolist() == [LONG_DOC, "so boring"]
    assert set(predictions["prediction"]) <= {"positive", "negative"}
