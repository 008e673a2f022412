"""The model in the labelling loop, on a run a real worker trained and real predict and embed
runs: the guess with a one-key accept, "most uncertain", bulk accept with a confirmation,
similar documents."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from app.services import suggestions
from db.models import ACCEPTED_PSEUDO, HUMAN, Label, LabelClass, Run
from list_engine.selection import uncertainty
from tests.app2.conftest import ROOT, app_test, worker_env
from tests.browser import patience


def _work(trained, tiny_bert_dir) -> None:
    """A real worker takes the queued runs (predict, embed) one by one until none is left."""
    proc = subprocess.run([sys.executable, "-m", "worker", "--once"], cwd=ROOT,
                          env=worker_env(trained.data_dir, tiny_bert_dir), capture_output=True,
                          text=True, timeout=patience(180))
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture()
def predicted(trained, trained_db, tiny_bert_dir):
    """The trained project after its model labelled the corpus in the background."""
    source, run = suggestions.ensure_predictions(trained_db, trained.project_id)
    assert source.id == trained.run_id and run.kind == "predict" and run.status == "queued"
    assert suggestions.ensure_predictions(trained_db, trained.project_id)[1].id == run.id  # reused
    _work(trained, tiny_bert_dir)
    trained_db.rollback()  # end the read snapshot: see what the worker wrote
    trained_db.expire_all()
    done = trained_db.get(Run, run.id)
    assert done.status == "succeeded", done.error
    path = suggestions.predictions_path(trained_db, done)
    assert path is not None
    return suggestions.read_predictions(path, source.id, run.id)


def test_most_uncertain_is_the_smallest_margin(trained, trained_db, predicted):
    labelled = {d for (d,) in trained_db.query(Label.document_id)}
    rows = [i for i, d in enumerate(predicted.doc_ids) if int(d) not in labelled]
    margins = uncertainty(predicted.probs[rows])
    expected = int(predicted.doc_ids[rows[int(np.argmax(margins))]])
    assert suggestions.next_uncertain(trained_db, trained.project_id, predicted) == expected
    top = suggestions.most_confident(trained_db, trained.project_id, predicted, 2)
    assert len(top) <= 4 and set(top["label"]) <= {"positive", "negative"}
    assert all(top.groupby("label")["confidence"].apply(lambda c: c.is_monotonic_decreasing))


def test_labelling_page_guess_accept_and_uncertain(trained, trained_db, predicted):
    at = app_test("labelling.py", trained.project_id)
    at.run()
    assert not at.exception, at.exception
    at.sidebar.radio(key="lab_strategy").set_value("uncertain").run()
    assert not at.exception, at.exception
    nav = at.session_state["labelling_nav"][trained.project_id]
    doc_id = nav["history"][nav["pos"]]
    assert doc_id == suggestions.next_uncertain(trained_db, trained.project_id, predicted,
                                                exclude=nav["history"][:nav["pos"]])
    name, confidence = predicted.guess(doc_id)
    assert any(f"**{name}** · {100 * confidence:.0f} % sure" in m.value for m in at.markdown)
    at.button(key="lab_accept").click().run()
    assert not at.exception, at.exception
    trained_db.rollback()  # end the read snapshot: see what the worker wrote
    trained_db.expire_all()
    label = trained_db.query(Label).filter_by(document_id=doc_id).one()
    assert trained_db.get(LabelClass, label.label_class_id).name == name
    assert label.source == HUMAN  # a person looked and accepted: a label like any other


def test_bulk_accept_needs_a_confirmation(trained, trained_db, predicted):
    at = app_test("labelling.py", trained.project_id).run()
    before = trained_db.query(Label).count()
    at.sidebar.number_input(key="lab_bulk_n").set_value(2)
    at.sidebar.button(key="lab_bulk_review").click().run()
    assert not at.exception, at.exception
    assert trained_db.query(Label).count() == before  # nothing written before the yes
    assert any("Label these" in w.value for w in at.sidebar.warning)
    at.sidebar.button(key="lab_bulk_confirm").click().run()
    assert not at.exception, at.exception
    trained_db.rollback()  # end the read snapshot: see what the worker wrote
    trained_db.expire_all()
    accepted = trained_db.query(Label).filter_by(source=ACCEPTED_PSEUDO).count()
    assert 1 <= accepted <= 4 and trained_db.query(Label).count() == before + accepted


def test_similar_documents_by_the_cached_embeddings(trained, trained_db, tiny_bert_dir):
    from app.services import labelling as label_service
    from app.services.prompts import latest_prompt_config

    model = latest_prompt_config(trained_db, trained.project_id).model  # as the page does
    label_service.start_embedding(trained_db, trained.project_id, model)
    _work(trained, tiny_bert_dir)
    trained_db.rollback()  # end the read snapshot: see what the worker wrote
    trained_db.expire_all()
    doc = trained_db.query(Label).first().document_id
    near = suggestions.similar_documents(trained_db, trained.project_id, model, doc, k=3)
    assert len(near) == 3 and doc not in [d for d, _ in near]
    assert [s for _, s in near] == sorted((s for _, s in near), reverse=True)
