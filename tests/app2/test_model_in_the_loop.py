"""The model in the labelling loop, on a run a real worker trained and real predict and embed
runs: the guess with a one-key accept, "most uncertain", "uncertain + diverse", bulk accept
with a confirmation, similar documents."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from app.services import suggestions
from db.models import ACCEPTED_PSEUDO, HUMAN, Label, LabelClass, Run
from list_engine.selection import neighbourhood_uncertainty, uncertainty
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

    # The labelling page lists the shown document's neighbours; "Label these next" queues them.
    at = app_test("labelling.py", trained.project_id).run()
    assert not at.exception, at.exception
    nav = at.session_state["labelling_nav"][trained.project_id]
    shown = nav["history"][nav["pos"]]
    five = [d for d, _ in suggestions.similar_documents(trained_db, trained.project_id, model,
                                                        shown, k=5)]
    assert five and at.button(key="lab_similar_next").label == f"Label these {len(five)} next"
    at.button(key="lab_similar_next").click().run()
    assert not at.exception, at.exception
    for expected in five:  # they come next, in order of similarity
        at.button(key="lab_next").click().run()
        assert not at.exception, at.exception
        nav = at.session_state["labelling_nav"][trained.project_id]
        assert nav["history"][nav["pos"]] == expected


def test_region_uncertainty_averages_within_each_cluster():
    from app.services.labelling import Clusters

    # cluster 0: documents 1, 2, 3 (3 is far from 1 and 2); cluster 1: documents 4, 5
    ids = np.array([5, 4, 3, 2, 1])  # the embedding cache's own order
    vectors = np.array([[0.0, 1.0], [0.1, 1.0], [1.0, 0.9], [1.0, 0.1], [1.0, 0.0]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    preds = suggestions.Predictions(source_run_id=1, predict_run_id=2, labels=["a", "b"],
                                    doc_ids=np.array([1, 2, 3, 4, 5, 6]),  # 6: no embedding
                                    probs=np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0],
                                                    [0.7, 0.3], [0.6, 0.4], [0.55, 0.45]]))
    clusters = Clusters(ids=np.array([1, 2, 3, 4, 5]), assignment=np.array([0, 0, 0, 1, 1]),
                        members=[[2, 1, 3], [4, 5]])
    own = uncertainty(preds.probs)
    regions = suggestions.region_uncertainty(preds, clusters, ids, vectors, k=1)
    assert regions[:2].tolist() == pytest.approx([(own[0] + own[1]) / 2] * 2)  # 1 and 2 pair
    assert regions[2] == pytest.approx((own[2] + own[1]) / 2)  # 3's nearest in its cluster: 2
    assert regions[3:5].tolist() == pytest.approx([(own[3] + own[4]) / 2] * 2)
    assert regions[5] == own[5]  # no embedding: its own score
    same = neighbourhood_uncertainty(own[:3], vectors[[4, 3, 2]], k=1)
    assert regions[:3].tolist() == pytest.approx(same.tolist())


def test_uncertain_diverse_covers_clusters_then_picks_the_confusing_region(
        trained, trained_db, predicted, tiny_bert_dir):
    from app.services import labelling as label_service
    from app.services.prompts import latest_prompt_config

    model = latest_prompt_config(trained_db, trained.project_id).model  # as the page does
    label_service.start_embedding(trained_db, trained.project_id, model)
    _work(trained, tiny_bert_dir)
    trained_db.rollback()  # end the read snapshot: see what the worker wrote
    trained_db.expire_all()
    at = app_test("labelling.py", trained.project_id).run()
    at.sidebar.radio(key="lab_strategy").set_value("uncertain_diverse").run()
    assert not at.exception, at.exception
    nav = at.session_state["labelling_nav"][trained.project_id]
    shown = nav["history"][nav["pos"]]

    ids, vectors = label_service.load_embeddings(trained_db, trained.project_id, model)
    k = label_service.default_k(2, int(at.sidebar.number_input(key="lab_target").value))
    clusters = label_service.cluster_documents(ids, vectors, k)
    regions = suggestions.region_uncertainty(predicted, clusters, ids, vectors)
    pick = suggestions.next_uncertain_diverse(trained_db, trained.project_id, predicted,
                                              clusters, regions,
                                              exclude=nav["history"][:nav["pos"]])
    assert shown == pick
    labelled = {d for (d,) in trained_db.query(Label.document_id)}
    covered = [sum(d in labelled for d in docs) for docs in clusters.members]
    cluster = next(c for c, docs in enumerate(clusters.members) if pick in docs)
    open_ = [c for c, docs in enumerate(clusters.members) if set(docs) - labelled]
    assert covered[cluster] == min(covered[c] for c in open_)  # the least-covered cluster
    score = dict(zip(predicted.doc_ids.tolist(), regions.tolist(), strict=True))
    assert score[pick] == max(score[d] for d in clusters.members[cluster] if d not in labelled)
