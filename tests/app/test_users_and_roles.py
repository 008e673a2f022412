"""Users, sign-in sessions, roles, who-did-what and per-user undo, on a real SQLite file
through the service functions the pages call (a session acts for a user via `act_as`)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.services import labelling, users
from app.services.projects import create_project, delete_project, get_project, list_projects
from app.services.users import PermissionDenied, act_as
from db.models import Document, Label, LabelEvent, User, UserSession


@pytest.fixture()
def team(db):
    """An admin, and alice / bob / carol without projects."""
    admin = users.create_user(db, "admin", "admin-password", is_admin=True)
    people = {n: users.create_user(db, n, f"{n}-password") for n in ("alice", "bob", "carol")}
    return {"admin": admin, **people}


def docs_of(session, project_id) -> list[int]:
    return list(session.scalars(select(Document.id).where(Document.project_id == project_id)
                                .order_by(Document.id)))


def shared_project(db, team):
    """alice owns a sentiment project; bob annotates; carol views."""
    import pandas as pd

    from app.services.corpus import import_documents

    act_as(db, team["alice"].id)
    project = create_project(db, "Shared reviews")
    texts = [f"review number {i}" for i in range(8)]
    import_documents(db, project.id, pd.DataFrame({"text": texts}), text_column="text")
    pos = labelling.add_label_class(db, project.id, "positive", "", "great")
    neg = labelling.add_label_class(db, project.id, "negative", "", "terrible")
    users.share(db, project.id, "bob", "annotator")
    users.share(db, project.id, "carol", "viewer")
    act_as(db, None)
    return project, pos, neg


def test_passwords_are_salted_scrypt_hashes_and_checked(db, team):
    stored = db.get(User, team["alice"].id).password_hash
    assert stored.startswith("scrypt$") and "alice-password" not in stored
    assert users.check_password("alice-password", stored)
    assert not users.check_password("alice-passwore", stored)
    assert users.hash_password("same") != users.hash_password("same")  # salted
    assert users.authenticate(db, "ALICE", "alice-password").id == team["alice"].id
    for name, pw in (("alice", "wrong-password"), ("nobody", "alice-password")):
        with pytest.raises(PermissionDenied, match="Wrong user name or password"):
            users.authenticate(db, name, pw)


def test_user_rules_clear_messages(db, team):
    with pytest.raises(Exception, match="at least 8 characters"):
        users.create_user(db, "dave", "short")
    with pytest.raises(Exception, match="already a user"):
        users.create_user(db, "Alice", "long-enough")
    with pytest.raises(Exception, match="spaces or control"):
        users.create_user(db, "da ve", "long-enough")
    act_as(db, team["alice"].id)  # not an admin
    with pytest.raises(PermissionDenied, match="administrator"):
        users.create_user(db, "eve", "long-enough")
    act_as(db, team["admin"].id)
    users.create_user(db, "eve", "long-enough")
    assert users.find_user(db, "eve") is not None


def test_sessions_expire_and_end(db, team):
    token = users.start_session(db, team["alice"], hours=1)
    assert users.user_for_token(db, token).id == team["alice"].id
    assert users.user_for_token(db, token + "x") is None
    row = db.scalar(select(UserSession))
    assert row.token_hash != token  # only a hash is stored
    row.expires_at = row.expires_at - timedelta(hours=2)
    db.commit()
    assert users.user_for_token(db, token) is None  # expired
    token2 = users.start_session(db, team["alice"], hours=1)
    users.end_session(db, token2)
    assert users.user_for_token(db, token2) is None  # signed out
    token3 = users.start_session(db, team["bob"], hours=1)
    act_as(db, team["admin"].id)
    users.set_disabled(db, team["bob"].id)
    assert users.user_for_token(db, token3) is None  # disabled users are out at once
    with pytest.raises(PermissionDenied, match="disabled"):
        users.authenticate(db, "bob", "bob-password")


def test_roles_are_enforced_in_the_services(db, team):
    project, pos, neg = shared_project(db, team)
    doc = docs_of(db, project.id)[0]
    # carol (viewer) sees the project but cannot label, import, or manage it
    act_as(db, team["carol"].id)
    assert [p.name for p in list_projects(db)] == ["Shared reviews"]
    with pytest.raises(PermissionDenied, match="viewer.*annotator"):
        labelling.set_label(db, project.id, doc, pos.id)
    with pytest.raises(PermissionDenied):
        labelling.add_label_class(db, project.id, "neutral")
    # bob (annotator) labels, but cannot change the label set, share or delete
    act_as(db, team["bob"].id)
    labelling.set_label(db, project.id, doc, pos.id)
    with pytest.raises(PermissionDenied, match="owner"):
        labelling.add_label_class(db, project.id, "neutral")
    with pytest.raises(PermissionDenied):
        users.share(db, project.id, "carol", "owner")
    with pytest.raises(PermissionDenied):
        delete_project(db, project.id)
    from app.services.prompts import save_prompt_config

    with pytest.raises(PermissionDenied):
        save_prompt_config(db, project.id, template="{text} It was {mask}.",
                           verbalizer={"positive": "great", "negative": "terrible"}, model="x")
    # a user without a role does not even see it
    act_as(db, users.create_user(act_as(db, None), "zed", "zed-password").id)
    assert list_projects(db) == [] and get_project(db, project.id) is None
    with pytest.raises(PermissionDenied, match="no access"):
        labelling.set_label(db, project.id, doc, neg.id)
    # the admin sees and may do everything
    act_as(db, team["admin"].id)
    assert get_project(db, project.id) is not None
    labelling.add_label_class(db, project.id, "neutral")
    # nothing the refused calls tried was stored
    assert db.scalar(select(Label.label_class_id).where(Label.document_id == doc)) == pos.id
    assert db.scalar(select(Label.user_id).where(Label.document_id == doc)) == team["bob"].id


def test_a_project_keeps_an_owner(db, team):
    project, _, _ = shared_project(db, team)
    act_as(db, team["alice"].id)
    with pytest.raises(Exception, match="at least one owner"):
        users.share(db, project.id, "alice", "viewer")
    users.share(db, project.id, "bob", "owner")
    users.share(db, project.id, "alice", "viewer")  # now fine: bob owns it
    assert dict((u.username, r) for u, r in users.members(db, project.id)) == {
        "alice": "viewer", "bob": "owner", "carol": "viewer"}
    with pytest.raises(Exception, match="no user called"):
        act_as(db, team["bob"].id)
        users.share(db, project.id, "nobody", "viewer")


def test_labels_and_events_record_who_and_undo_is_per_user(db, team):
    project, pos, neg = shared_project(db, team)
    d1, d2, d3 = docs_of(db, project.id)[:3]
    act_as(db, team["alice"].id)
    labelling.set_label(db, project.id, d1, pos.id)
    act_as(db, team["bob"].id)
    labelling.set_label(db, project.id, d2, neg.id)
    # alice undoes: her label on d1 goes, bob's newer label on d2 stays
    act_as(db, team["alice"].id)
    event = labelling.undo(db, project.id)
    assert event.document_id == d1 and event.user_id == team["alice"].id
    assert labelling.label_of(db, d1) is None
    assert labelling.label_of(db, d2).label_class_id == neg.id
    assert labelling.undo(db, project.id) is None  # nothing more of alice's
    # alice labels d3, bob relabels it: alice's change no longer stands, undo passes it over
    labelling.set_label(db, project.id, d3, pos.id)
    act_as(db, team["bob"].id)
    labelling.set_label(db, project.id, d3, neg.id)
    act_as(db, team["alice"].id)
    assert labelling.undo(db, project.id) is None
    assert labelling.label_of(db, d3).label_class_id == neg.id
    # bob undoes his relabel: d3 goes back to alice's label, with alice as its author
    act_as(db, team["bob"].id)
    assert labelling.undo(db, project.id).document_id == d3
    back = labelling.label_of(db, d3)
    assert (back.label_class_id, back.user_id) == (pos.id, team["alice"].id)
    # the events say who did what; the labels table shows who labelled what
    who = {e.id: e.user_id for e in db.scalars(select(LabelEvent))}
    assert set(who.values()) == {team["alice"].id, team["bob"].id}
    table = labelling.labels_table(db, project.id)
    assert dict(zip(table["document"], table["labelled by"], strict=True)) == {
        d2: "bob", d3: "alice"}


def test_same_label_from_a_second_annotator_is_recorded(db, team):
    project, pos, _ = shared_project(db, team)
    d1 = docs_of(db, project.id)[0]
    act_as(db, team["alice"].id)
    labelling.set_label(db, project.id, d1, pos.id)
    assert labelling.set_label(db, project.id, d1, pos.id) is None  # same user: no change
    act_as(db, team["bob"].id)
    assert labelling.set_label(db, project.id, d1, pos.id) is not None  # bob's vote counts


def test_local_user_and_trusted_callers(db):
    local = users.local_user(db)
    assert local.is_admin and local.password_hash is None
    assert users.local_user(db).id == local.id  # one, reused
    with pytest.raises(PermissionDenied):  # no password: cannot sign in with one
        users.authenticate(db, "local", "")
    # a session with no acting user (CLI, worker, tests) is trusted and records no one
    project = create_project(db, "Trusted")
    assert users.members(db, project.id) == []
    act_as(db, local.id)
    mine = create_project(db, "Mine")
    assert [(u.username, r) for u, r in users.members(db, mine.id)] == [("local", "owner")]


def test_oidc_users_are_created_at_first_sign_in(db):
    u = users.oidc_user(db, "Ann@Example.org", "Ann", admins=("ann@example.org",))
    assert u.is_admin and u.password_hash is None and users.display(u) == "Ann"
    assert users.oidc_user(db, "ann@example.org", "Ann").id == u.id
    other = users.oidc_user(db, "bo@example.org", "")
    assert not other.is_admin
    act_as(db, other.id)
    assert list_projects(db) == []  # no project until someone shares one
