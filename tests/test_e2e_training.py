"""End to end, through the app's service functions and a REAL worker subprocess with the tiny
model: import a CSV -> label -> save a prompt -> train 2 rounds -> progress reaches
"succeeded" -> inspect pseudo-labels -> accept one -> export -> reload the export and
predict -> label the corpus in the background (predict run) -> CSV.

Nothing is mocked: the worker is `python -m worker`, the engine trains for real (a few
steps, so the accuracy means nothing; the plumbing is what is tested).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from tests.app2.conftest import BAD, GOOD, ROOT, TEMPLATE, TINY_CONFIG, WORDS, worker_env
from tests.conftest import both_engines

pytestmark = pytest.mark.slow


def pytest_generate_tests(metafunc):
    both_engines(metafunc)  # SQLite and PostgreSQL


def _wait(session, run_id: int, timeout: float, seen: list | None = None):
    from db import queries

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session.rollback()
        p = queries.run_progress(session, run_id)
        if seen is not None:
            seen.append((p.status, p.progress, p.current_round, p.phase))
        if p.status in ("succeeded", "failed", "cancelled"):
            return p
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not finish in {timeout}s: last {p}")


@pytest.fixture()
def worker(data_env, tiny_bert_dir, tmp_path):
    from db.migrate import upgrade_to_head

    upgrade_to_head()
    with open(tmp_path / "worker.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "worker", "--poll", "0.3"], cwd=ROOT,
                                env=dict(worker_env(data_env.data_dir, tiny_bert_dir),
                                         LIST_DATABASE_URL=data_env.database_url), stdout=log,
                                stderr=subprocess.STDOUT)
        yield proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_import_label_prompt_train_inspect_accept_export_predict(data_env, worker, tmp_path):
    from app.services import export as export_service
    from app.services import inspector, labelling, prompts, training
    from app.services import predict as predict_service
    from app.services import runs as run_service
    from app.services.corpus import import_documents, read_table
    from app.services.projects import create_project
    from db.session import get_session

    s = get_session()
    # --- import a CSV with a gold label column (evaluation only)
    project = create_project(s, "E2E reviews")
    csv = pd.DataFrame({"text": GOOD + BAD,
                        "sentiment": ["positive"] * len(GOOD) + ["negative"] * len(BAD)})
    df = read_table(csv.to_csv(index=False).encode(), "reviews.csv")
    report = import_documents(s, project.id, df, text_column="text", label_column="sentiment",
                              filename="reviews.csv", file_format="csv")
    assert report.imported == 24

    # --- label set and 3 labels per class
    pos = labelling.add_label_class(s, project.id, "positive", "Liked it", "great")
    neg = labelling.add_label_class(s, project.id, "negative", "Did not", "terrible")
    from db.models import Document

    docs = {d.text: d.id for d in s.query(Document).filter_by(project_id=project.id)}
    for text in GOOD[:3]:
        labelling.set_label(s, project.id, docs[text], pos.id)
    for text in BAD[:3]:
        labelling.set_label(s, project.id, docs[text], neg.id)

    # --- prompt, validated with the model's tokenizer
    tokenizer = prompts.load_tokenizer(data_env.model)
    config = prompts.save_prompt_config(s, project.id, template=TEMPLATE, verbalizer=dict(WORDS),
                                        model="default", tokenizer=tokenizer)

    # --- the train page's summary: the worker is alive (fresh heartbeat), nothing refused
    deadline = time.monotonic() + 60
    while not training.fresh_workers(s) and time.monotonic() < deadline:
        time.sleep(0.3)
        s.rollback()
    summary = training.training_summary(s, project.id, config.id, tokenizer=tokenizer)
    assert summary.can_start, summary.problems
    assert summary.workers and summary.workers[0].device == "cpu"
    assert not any("python -m worker" in w for w in summary.warnings)

    # --- train 2 rounds
    cfg = training.build_list_config("custom", TINY_CONFIG)
    run = training.start_training(s, project.id, config.id, list_config=cfg, tokenizer=tokenizer,
                                  preset="custom")
    seen: list = []
    final = _wait(s, run.id, timeout=180, seen=seen)
    assert final.status == "succeeded", final.error
    assert final.progress == pytest.approx(1.0)
    progress = [p for st, p, *_ in seen if st == "running"]
    assert progress == sorted(progress)  # never goes backwards
    metrics = run_service.round_metrics(s, run.id)
    assert [m["round"] for m in metrics] == [0, 1, 2]
    assert all(0.0 <= m["accuracy"] <= 1.0 for m in metrics)
    assert run_service.step_losses(s, run.id)

    # --- inspect the pseudo-labels of the last round and accept one
    rounds = inspector.rounds_with_pseudo_labels(s, run.id)
    assert rounds and max(rounds) <= 2
    table = inspector.pseudo_label_table(s, run.id, rounds[-1])
    # The pool: the 18 unlabelled documents less those set aside for evaluation.
    from db.models import Run

    set_aside = len(s.get(Run, run.id).config.get("eval_documents") or [])
    assert set_aside > 0 and len(table) == 18 - set_aside
    assert table["meta_weight"].notna().any()
    doc_id, pseudo = int(table["document_id"].iloc[0]), table["pseudo_label"].iloc[0]
    before = training.data_counts(s, project.id)
    inspector.accept(s, run.id, rounds[-1], doc_id)
    after = training.data_counts(s, project.id)
    assert after.train_per_class[pseudo] == before.train_per_class[pseudo] + 1
    assert after.unlabelled == before.unlabelled - 1  # counts for the next run

    # --- export, reload the export and predict
    result = export_service.build_export(s, run.id)
    folder = export_service.unpack(result.path, tmp_path / "export")
    from list_engine import PromptClassifier

    reloaded = PromptClassifier.from_pretrained(folder, device="cpu")
    served = predict_service.load_classifier(export_service.model_dir(s, run.id))
    texts = ["great film, loved it", "terrible and boring", "an ending"]
    assert reloaded.labels == served.labels == list(WORDS)
    np.testing.assert_allclose(reloaded.predict_proba(texts), served.predict_proba(texts), atol=1e-6)
    assert reloaded.predict(texts) == served.predict(texts)
    assert "Seed: 7" in (folder / "README.md").read_text()

    # --- label the whole corpus in the background and get the CSV
    prun = predict_service.start_predict(s, project.id, run.id)
    final = _wait(s, prun.id, timeout=120)
    assert final.status == "succeeded", final.error
    path = predict_service.predictions_file(s, prun.id)
    out = pd.read_csv(path)
    assert len(out) == 24 and set(out["prediction"]) <= set(WORDS)
    expected = served.predict(out["text"].tolist())
    raw = PromptClassifier.from_pretrained(export_service.model_dir(s, run.id), device="cpu")
    s.close()
    # The worker's predict run and a plain from_pretrained agree with the app's loading
    # (the class order survives the sorted keys of adapter_config.json).
    assert raw.labels == served.labels
    assert out["prediction"].tolist() == expected
