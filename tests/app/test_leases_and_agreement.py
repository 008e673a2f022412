"""Document leases (two labelling sessions never see the same document at once) and the
agreement of two annotators (Cohen's kappa), through the services on a real SQLite file."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from sqlalchemy import select

from app.services import agreement, labelling, users
from app.services.corpus import import_documents
from app.services.projects import create_project
from app.services.users import act_as
from db.models import Document, DocumentLease


@pytest.fixture()
def two_annotators(db):
    alice = users.create_user(db, "alice", "alice-password")
    bob = users.create_user(db, "bob", "bob-password")
    act_as(db, alice.id)
    project = create_project(db, "Pair")
    import_documents(db, project.id, pd.DataFrame({"text": [f"text {i}" for i in range(10)]}),
                     text_column="text")
    a = labelling.add_label_class(db, project.id, "a")
    b = labelling.add_label_class(db, project.id, "b")
    users.share(db, project.id, "bob", "annotator")
    docs = list(db.scalars(select(Document.id).where(Document.project_id == project.id)
                           .order_by(Document.id)))
    return project, alice, bob, a, b, docs


def test_a_leased_document_is_not_given_to_another_session(db, two_annotators):
    project, alice, bob, *_ , docs = two_annotators
    act_as(db, alice.id)
    assert labelling.claim_document(db, project.id, docs[0], "session-1")
    act_as(db, bob.id)
    assert not labelling.claim_document(db, project.id, docs[0], "session-2")
    assert labelling.leased_elsewhere(db, project.id, "session-2") == {docs[0]}
    assert labelling.next_keyword(db, project.id, "text",
                                  labelling.leased_elsewhere(db, project.id, "session-2")) == docs[1]
    # the same session renews; moving on releases the previous document
    act_as(db, alice.id)
    assert labelling.claim_document(db, project.id, docs[0], "session-1")
    assert labelling.claim_document(db, project.id, docs[2], "session-1")
    assert labelling.leased_elsewhere(db, project.id, "session-2") == {docs[2]}
    # a lease runs out: an idle session does not hold a document for ever
    lease = db.get(DocumentLease, docs[2])
    lease.expires_at -= timedelta(seconds=labelling.LEASE_SECONDS + 1)
    db.commit()
    assert labelling.leased_elsewhere(db, project.id, "session-2") == set()
    act_as(db, bob.id)
    assert labelling.claim_document(db, project.id, docs[2], "session-2")
    labelling.release_documents(db, "session-2")
    assert labelling.leased_elsewhere(db, project.id, "session-1") == set()


def test_second_opinion_picks_what_others_labelled(db, two_annotators):
    project, alice, bob, a, _, docs = two_annotators
    act_as(db, alice.id)
    labelling.set_label(db, project.id, docs[3], a.id)
    labelling.set_label(db, project.id, docs[1], a.id)
    assert labelling.next_second_opinion(db, project.id) is None  # only her own labels
    act_as(db, bob.id)
    assert labelling.next_second_opinion(db, project.id) == docs[1]
    assert labelling.next_second_opinion(db, project.id, exclude=[docs[1]]) == docs[3]
    labelling.set_label(db, project.id, docs[1], a.id)
    assert labelling.next_second_opinion(db, project.id) == docs[3]


def test_cohens_kappa_on_documents_labelled_by_both(db, two_annotators):
    project, alice, bob, a, b, docs = two_annotators
    alice_says = [a, a, b, b, a, b, a]
    bob_says = [a, b, b, b, a, a, a]
    act_as(db, alice.id)
    for d, c in zip(docs, alice_says, strict=False):
        labelling.set_label(db, project.id, d, c.id)
    labelling.set_label(db, project.id, docs[8], a.id)  # alice only: not compared
    act_as(db, bob.id)
    for d, c in zip(docs, bob_says, strict=False):
        labelling.set_label(db, project.id, d, c.id)
    labelling.set_label(db, project.id, docs[9], b.id)
    labelling.undo(db, project.id)  # bob takes back docs[9]: not his opinion any more
    (pair,) = agreement.pairs(db, project.id)
    assert (pair.name_a, pair.name_b, pair.documents, pair.agreed) == ("alice", "bob", 7, 5)
    expected = cohen_kappa_score([c.id for c in alice_says], [c.id for c in bob_says])
    assert pair.kappa == pytest.approx(expected)
    table = agreement.both_table(db, project.id, alice.id, bob.id)
    assert len(table) == 7 and table["agree"].tolist() == [False] * 2 + [True] * 5
    assert set(table.columns) == {"document", "text", "alice", "bob", "agree"}


def test_kappa_not_defined_edge_cases(db, two_annotators):
    assert agreement.kappa([1], [1]) is None  # one document
    assert agreement.kappa([1, 1, 1], [1, 1, 1]) is None  # one class used by both
    assert agreement.kappa([1, 2], [1, 2]) == pytest.approx(1.0)
    project, *_ = two_annotators
    assert agreement.pairs(db, project.id) == []
