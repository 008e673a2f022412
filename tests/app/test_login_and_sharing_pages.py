"""The sign-in gate in each mode, the document lease between two labelling sessions, the
Team and Agreement pages: AppTest runs of the real app (app/main.py) on a real SQLite file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from app.services import labelling, users
from app.services.corpus import import_documents
from app.services.projects import create_project
from app.services.users import act_as
from db.models import Label, UserSession
from db.settings import get_settings
from tests.browser import patience

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


def app(page: str | None = None, project_id: int | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=patience(60))
    if project_id is not None:
        at.session_state["project_id"] = project_id
    if page:
        at.switch_page(f"views/{page}.py")
    return at.run()


def texts(elements) -> str:
    return " | ".join(str(e.value) for e in elements).replace("\\", "")


@pytest.fixture()
def password_mode(db, monkeypatch):
    monkeypatch.setenv("LIST_AUTH", "password")
    get_settings.cache_clear()
    users.create_user(db, "admin", "admin-password", is_admin=True)
    users.create_user(db, "alice", "alice-password")
    yield db
    get_settings.cache_clear()


def sign_in(at: AppTest, name: str, password: str) -> AppTest:
    """Fill in and submit the sign-in form. (AppTest reruns only the current page, not
    app/main.py's gate, so tests of what the gate does start a new AppTest.)"""
    at.text_input(key="auth_username").input(name)
    at.text_input(key="auth_password").input(password)
    return at.button[0].click().run()  # the form's "Sign in"


def test_local_mode_is_the_default_and_says_so(db):
    at = app()
    assert not at.exception
    assert "Single-user local mode" in texts(at.sidebar.caption)
    assert at.title[0].value == "Projects"


def test_password_mode_sign_in_wrong_right_sign_out(password_mode):
    at = app()
    assert [t.value for t in at.title] == ["Sign in"]
    assert not at.sidebar.selectbox  # no project picker, no pages before signing in
    sign_in(at, "alice", "wrong-password")
    assert "Wrong user name or password" in texts(at.error)
    sign_in(at, "alice", "alice-password")
    assert not at.exception
    assert at.title[0].value == "Projects"
    assert "Signed in as alice" in texts(at.sidebar.caption)


def with_token(token: str) -> AppTest:
    """A new browser session that signed in earlier and holds `token`."""
    at = AppTest.from_file(MAIN, default_timeout=patience(60))
    at.session_state["auth_token"] = token
    return at.run()


def test_password_sessions_expire(password_mode):
    db = password_mode
    token = users.start_session(db, users.find_user(db, "alice"), hours=1)
    at = with_token(token)
    assert at.title[0].value == "Projects" and "Signed in as alice" in texts(at.sidebar.caption)
    db.rollback()
    for row in db.scalars(select(UserSession)):
        row.expires_at -= timedelta(hours=2)
    db.commit()
    at = with_token(token)
    assert [t.value for t in at.title] == ["Sign in"]
    assert "expired" in texts(at.info)


def test_password_mode_projects_are_private_until_shared(password_mode):
    db = password_mode
    act_as(db, users.find_user(db, "admin").id)
    project = create_project(db, "Admin's project")
    act_as(db, None)
    at = sign_in(app(), "alice", "alice-password")
    assert "No project yet" in texts(at.info) + texts(at.sidebar.caption)
    act_as(db, users.find_user(db, "admin").id)
    users.share(db, project.id, "alice", "viewer")
    at = with_token(users.start_session(db, users.find_user(db, "alice"), hours=1))
    assert at.sidebar.selectbox(key="project_picker").value == project.id
    assert "viewer" in texts(at.sidebar.caption)


def test_oidc_mode_without_and_with_a_provider(db, monkeypatch):
    monkeypatch.setenv("LIST_AUTH", "oidc")
    get_settings.cache_clear()
    try:
        at = app()
        assert "needs an [auth] section" in texts(at.error)
        at = AppTest.from_file(MAIN, default_timeout=patience(60))
        at.secrets["auth"] = {
            "redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32,
            "acme": {"client_id": "id", "client_secret": "secret",
                     "server_metadata_url": "https://id.example/.well-known/openid-configuration"},
        }
        at.run()
        assert not at.exception
        assert [b.label for b in at.button] == ["Sign in with acme"]
        assert not at.sidebar.selectbox
    finally:
        get_settings.cache_clear()


def test_two_labelling_sessions_never_get_the_same_document(db):
    project = create_project(db, "Two annotators")
    import_documents(db, project.id, pd.DataFrame({"text": [f"doc {i}" for i in range(5)]}),
                     text_column="text")
    labelling.add_label_class(db, project.id, "a")
    labelling.add_label_class(db, project.id, "b")

    def session_at_keyword() -> AppTest:
        at = app("labelling", project.id)
        at.sidebar.radio(key="lab_strategy").set_value("keyword").run()
        at.sidebar.text_input(key="lab_keyword").input("doc").run()  # oldest match first
        return at

    def shown(at: AppTest) -> int:
        nav = at.session_state["labelling_nav"][project.id]
        return nav["history"][nav["pos"]]

    one = session_at_keyword()
    two = session_at_keyword()
    assert not one.exception and not two.exception
    assert shown(one) != shown(two)  # without the lease both would get the oldest match
    seen_by_two = shown(two)
    for _ in range(3):  # one labels on; it never lands on the document two is showing
        one.button(key="lab_class_0").click().run()
        assert shown(one) != seen_by_two
    db.rollback()
    assert db.scalar(select(Label.document_id).where(Label.document_id == seen_by_two)) is None


def test_viewer_cannot_label_and_team_page_shares(password_mode):
    db = password_mode
    admin = users.find_user(db, "admin")
    act_as(db, admin.id)
    project = create_project(db, "Team project")
    import_documents(db, project.id, pd.DataFrame({"text": ["one", "two"]}), text_column="text")
    labelling.add_label_class(db, project.id, "a")
    labelling.add_label_class(db, project.id, "b")
    users.share(db, project.id, "alice", "viewer")
    act_as(db, None)

    at = sign_in(app(), "alice", "alice-password")
    at.switch_page("views/labelling.py").run()
    assert not at.exception
    assert "viewer" in texts(at.info)
    assert at.button(key="lab_class_0").disabled

    admin_at = sign_in(app(), "admin", "admin-password")
    admin_at.switch_page("views/team.py").run()
    assert not admin_at.exception
    admin_at.text_input(key="share_user").input("alice")
    admin_at.selectbox(key="share_role").set_value("annotator")
    admin_at.button(key="share_do").click().run()
    assert "alice is now annotator" in texts(admin_at.success)
    at.run()
    assert not at.button(key="lab_class_0").disabled
    at.button(key="lab_class_0").click().run()
    db.rollback()
    assert db.scalar(select(Label.user_id)) == users.find_user(db, "alice").id
