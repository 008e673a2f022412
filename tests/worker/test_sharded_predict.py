"""Sharded batch prediction: one corpus split into shards that two workers label in
parallel, merged into one CSV equal to the unsharded run's."""

from __future__ import annotations

import pandas as pd

from db import jobs, queries
from db.models import SUCCEEDED
from tests.worker.conftest import fresh, wait_for
from tests.worker.helpers import sentiment_project
from tests.worker.test_queue_with_workers import _saved_model_run


def test_two_workers_label_three_shards_into_one_csv(session, start_worker, tiny_bert_dir,
                                                      tmp_path):
    project = sentiment_project(session, n_unlabelled=20)  # 32 documents
    source = _saved_model_run(session, project, tiny_bert_dir, tmp_path)
    config = {"source_run_id": source.id, "input": "corpus"}
    whole = jobs.enqueue(session, project.id, config, kind="predict")
    shards = jobs.enqueue_sharded_predict(session, project.id, config, 3)
    workers = [start_worker("--poll", "0.1") for _ in range(2)]
    ids = [whole.id] + [r.id for r in shards]
    wait_for(lambda: all(jobs.run_status(session, i) == SUCCEEDED for i in ids), 240,
             what="the predict runs")
    logs = "".join(w.log() for w in workers)
    assert all(f"run {r.id} (predict, attempt 1 of 3) claimed" in logs for r in shards)
    assert all(w.log().count("(predict, attempt") >= 1 for w in workers), logs  # both worked
    fresh(session)
    merged = queries.run_artifacts(session, shards[0].id, kind="predictions")
    wait_for(lambda: queries.run_artifacts(fresh(session), shards[0].id, kind="predictions"), 60,
             what="the merged CSV")
    (merged,) = queries.run_artifacts(session, shards[0].id, kind="predictions")
    (single,) = queries.run_artifacts(session, whole.id, kind="predictions")
    got = pd.read_csv(merged.path, dtype=str, keep_default_na=False)
    want = pd.read_csv(single.path, dtype=str, keep_default_na=False)
    assert len(got) == 32
    assert got["document_id"].tolist() == want["document_id"].tolist()
    assert got["prediction"].tolist() == want["prediction"].tolist()
    parts = [queries.run_artifacts(session, r.id, kind="predictions-part") for r in shards]
    assert [len(p) for p in parts] == [1, 1, 1]
