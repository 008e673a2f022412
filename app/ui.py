"""Small shared helpers for the pages: database access, the current project, the sidebar
project picker, keyboard shortcuts, cached tokenizers/models, and safe display of user text.

User text is never rendered as HTML, and never as Markdown without `md()` escaping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.orm import Session, sessionmaker

from app.services import ServiceError
from app.services import projects as project_service
from app.services import users as user_service
from db.models import Project
from db.settings import get_settings

PROJECT_KEY = "project_id"  # the current project (plain session state, not a widget)
USER_STATE = "auth_user_id"  # the signed-in user (set by app/auth.py's gate)
PICKER_KEY = "project_picker"
# The URL carries the current project (and the run a page shows), so that a reload, a
# bookmark or a shared link opens the same view; session state wins within a session.
PROJECT_PARAM = "project"
RUN_PARAM = "run"
_PENDING = "_pending_project_id"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&])")


# ---------------------------------------------------------------- text


def md(text: object) -> str:
    """Escape user text for places that render Markdown (button labels, alerts, captions)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def error(message: object) -> None:
    st.error(md(message), icon=":material/error:")


# ---------------------------------------------------------------- database


@st.cache_resource(show_spinner="Preparing the database…")
def _sessionmaker(url: str) -> sessionmaker[Session]:
    from db.health import open_database
    from db.session import session_factory

    open_database(url)  # DatabaseUnusable is not cached: the next rerun checks again
    return session_factory(url)


@contextmanager
def session() -> Iterator[Session]:
    """A short-lived session on the process-wide engine (schema brought to head once).
    A database that cannot be used stops the page with a message that says why."""
    from db.health import DatabaseUnusable

    try:
        factory = _sessionmaker(get_settings().database_url)
    except DatabaseUnusable as exc:
        error(exc)
        st.stop()
    s = user_service.act_as(factory(), st.session_state.get(USER_STATE))  # who is acting
    try:
        yield s
    finally:
        s.close()


# ---------------------------------------------------------------- current project


def url_id(name: str) -> int | None:
    """An id from the URL's query string (None when absent or not a number)."""
    raw = st.query_params.get(name)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def remember_run(key: str, run_ids: list[int], default: int | None) -> None:
    """Before a run selectbox keyed `key`: choose its run from session state, else from the
    URL (a reload or a link), else `default`."""
    if st.session_state.get(key) not in run_ids:
        from_url = url_id(RUN_PARAM)
        st.session_state[key] = from_url if from_url in run_ids else default


def show_run_in_url(run_id: int | None) -> None:
    if run_id is None:
        st.query_params.pop(RUN_PARAM, None)
    elif st.query_params.get(RUN_PARAM) != str(run_id):
        st.query_params[RUN_PARAM] = str(run_id)


def switch_project(project_id: int | None) -> None:
    """Make `project_id` current on the next run (safe to call after the picker rendered)."""
    st.session_state[_PENDING] = project_id


def _on_pick() -> None:
    st.session_state[PROJECT_KEY] = st.session_state[PICKER_KEY]


def project_sidebar() -> Project | None:
    """The project picker: switch, create, rename, delete (with confirmation). Every page
    calls it first (directly or through `require_project`), so each page script is
    self-contained (AppTest reruns only the page script)."""
    with session() as s:
        projects = project_service.list_projects(s)
    ids = [p.id for p in projects]
    names = {p.id: p.name for p in projects}
    # The current project lives under a plain key (it survives page switches, which reset
    # widget state); the picker widget is re-synced to it on every run.
    current = st.session_state.get(PROJECT_KEY)
    if _PENDING in st.session_state:
        current = st.session_state.pop(_PENDING)
    elif current is None:  # a new session: a reload, a bookmark or a shared link
        current = url_id(PROJECT_PARAM)
    if current not in ids:
        current = ids[0] if ids else None
    st.session_state[PROJECT_KEY] = current
    if current is None:
        st.query_params.pop(PROJECT_PARAM, None)
    elif st.query_params.get(PROJECT_PARAM) != str(current):
        st.query_params[PROJECT_PARAM] = str(current)

    sb = st.sidebar
    if ids:
        st.session_state[PICKER_KEY] = current
        sb.selectbox("Project", ids, format_func=lambda i: names.get(i, "?"), key=PICKER_KEY,
                     on_change=_on_pick)
    else:
        sb.caption("No project yet.")

    with sb.expander("New project", expanded=not ids):
        name = st.text_input("Name", key="new_project_name", max_chars=200)
        if st.button("Create project", key="create_project", type="primary"):
            try:
                with session() as s:
                    project = project_service.create_project(s, name)
            except ServiceError as exc:
                error(exc)
            else:
                switch_project(project.id)
                st.session_state.pop("new_project_name", None)
                st.rerun()

    if current is None:
        return None
    with session() as s:
        role = user_service.role_of(s, current, user_service.actor_id(s))
    if role != "owner":  # only owners rename, delete or share
        sb.caption(f"Your role in this project: {role}. "
                   + ("You can label; an owner manages it." if role == "annotator"
                      else "You can look, not change."))
        with session() as s:
            return project_service.get_project(s, current)
    with sb.expander("Rename or delete"):
        new_name = st.text_input("New name", value=names[current], key=f"rename_{current}")
        if st.button("Rename", key="rename_project"):
            try:
                with session() as s:
                    project_service.rename_project(s, current, new_name)
            except ServiceError as exc:
                error(exc)
            else:
                st.rerun()
        confirming = st.session_state.get("confirm_delete") == current
        if not confirming:
            if st.button("Delete project…", key="delete_project"):
                st.session_state["confirm_delete"] = current
                st.rerun()
        else:
            st.warning("Delete this project with all its documents, labels, prompts and runs? "
                       "This cannot be undone.")
            st.text(names[current])
            c1, c2 = st.columns(2)
            if c1.button("Yes, delete", key="confirm_delete_yes", type="primary"):
                with session() as s:
                    project_service.delete_project(s, current)
                st.session_state.pop("confirm_delete", None)
                switch_project(None)
                st.rerun()
            if c2.button("Cancel", key="confirm_delete_no"):
                st.session_state.pop("confirm_delete", None)
                st.rerun()
    with session() as s:
        return project_service.get_project(s, current)


def require_project() -> Project:
    """Render the sidebar project picker and return the current project; without one, show
    an empty state pointing at the sidebar and stop the page."""
    project = project_sidebar()
    if project is None:
        st.info("No project selected: create one in the sidebar, or start with the demo on "
                "the Projects page.", icon=":material/folder_open:")
        st.page_link("views/projects.py", label="Go to Projects", icon=":material/home:")
        st.stop()
    return project


# ---------------------------------------------------------------- models


def default_model() -> str:
    return get_settings().model


@st.cache_resource(max_entries=4, show_spinner="Loading the tokenizer…")
def tokenizer(model: str):
    from app.services.prompts import load_tokenizer

    return load_tokenizer(model)


@st.cache_resource(max_entries=2, show_spinner="Loading the model…")
def classifier(model: str, template: str, words: tuple[tuple[str, str], ...]):
    from app.services.prompts import build_classifier

    return build_classifier(model, template, dict(words), device=get_settings().device)


# ---------------------------------------------------------------- keyboard shortcuts

_HOTKEY_JS = """<script>
(function () {
  const w = window;
  w.__listHotkeys = %s;
  if (w.__listHotkeysInstalled) return;
  w.__listHotkeysInstalled = true;
  // Fields where a key types text; everywhere else (a radio, a checkbox, a button or a
  // slider that kept the focus after a click) the keys are ours.
  const TEXT_TYPES = ["", "text", "search", "password", "number", "email", "url", "tel"];
  function typesText(t) {
    if (!t || !t.tagName) return false;
    if (t.isContentEditable) return true;
    const tag = t.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select") return true;
    if (tag !== "input") return false;
    if (t.getAttribute("role") === "combobox") return true;  // a selectbox's search field
    return TEXT_TYPES.includes((t.getAttribute("type") || "").toLowerCase());
  }
  // Capture phase: we see the key before the focused control does, so an arrow on a
  // radio moves to the next document instead of silently changing the setting.
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.altKey || e.metaKey) return;
    const t = e.target;
    if (typesText(t)) return;
    const map = w.__listHotkeys || {};
    const key = map[e.key] || map[e.key.toLowerCase()];
    if (!key) return;
    e.preventDefault();
    e.stopPropagation();
    if (e.repeat) return;
    if (t && t !== document.body && typeof t.blur === "function") t.blur();
    const el = document.querySelector(".st-key-" + key + " button");
    if (!el || el.disabled) return;
    el.click();
  }, true);
})();
</script>"""


def hotkeys(mapping: dict[str, str]) -> None:
    """Keyboard shortcuts: key (e.g. "1", "s", "ArrowLeft") -> key of an `st.button`.

    Ignored while the user types in a text field; anywhere else (a radio or button that kept
    the focus after a click included) a bound key is ours and never reaches the focused
    control. The script is a constant; only the
    mapping (our own widget keys) is inserted, as JSON.
    """
    for widget_key in mapping.values():
        if not re.fullmatch(r"[A-Za-z0-9_-]+", widget_key):
            raise ValueError(f"hotkey target {widget_key!r} is not a plain widget key")
    st.html(_HOTKEY_JS % json.dumps(mapping), unsafe_allow_javascript=True)
