"""Entry point: `python -m streamlit run app/main.py` from the repository root (what
scripts/run does; `python -m` puts the root on the import path, so `app`, `db` and
`list_engine` import as packages). Builds the navigation and the project picker; the pages
themselves live in app/views/ (not pages/: Streamlit treats a pages/ folder beside the entry
script as an old-style multipage app, and the first session after a start then showed the
folder's file names as a second navigation)."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.exc import DBAPIError

from app import auth, ui
from app.services import ServiceError
from db.health import DatabaseUnusable, explain
from db.writes import DatabaseBusyError

st.set_page_config(page_title="LiST: few-label text classifiers", page_icon=":material/label:",
                   layout="wide")

# Part 1: projects, corpus, labels, prompt design.
DATA_PAGES = [
    st.Page("views/projects.py", title="Projects", icon=":material/home:", default=True),
    st.Page("views/import_data.py", title="Import corpus", icon=":material/upload_file:"),
    st.Page("views/label_set.py", title="Label set", icon=":material/sell:"),
    st.Page("views/labelling.py", title="Labelling", icon=":material/edit_note:"),
    st.Page("views/prompt.py", title="Prompt design", icon=":material/text_fields:"),
    st.Page("views/agreement.py", title="Agreement", icon=":material/group:"),
    st.Page("views/team.py", title="Team and sharing", icon=":material/manage_accounts:"),
]

# ---------------------------------------------------------------------------------------
# PART 2 PAGES (training, runs / live progress, pseudo-label inspector, export, predict):
# add their st.Page entries to this list; they appear under "Model" in the navigation.
# Each page starts with `project = ui.require_project()` (renders the sidebar project picker;
# empty state + stop when there is no project) and opens DB sessions with
# `with ui.session() as s:`; service functions live in app/services/.
# ---------------------------------------------------------------------------------------
MODEL_PAGES: list = [
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
    st.Page("views/runs.py", title="Runs", icon=":material/list_alt:"),
    st.Page("views/progress.py", title="Live progress", icon=":material/monitoring:"),
    st.Page("views/inspector.py", title="Pseudo-label inspector", icon=":material/psychology:"),
    st.Page("views/export.py", title="Export", icon=":material/download:"),
    st.Page("views/predict.py", title="Predict", icon=":material/batch_prediction:"),
]

sections = {"Data": DATA_PAGES}
if MODEL_PAGES:
    sections["Model"] = MODEL_PAGES
try:
    if auth.gate() is None:  # not signed in (LIST_AUTH): the sign-in page is all there is
        st.navigation([st.Page(auth.sign_in_page, title="Sign in", icon=":material/login:")],
                      position="hidden").run()
    else:
        st.navigation(sections, expanded=True).run()  # all 13 pages, no "View more" fold
except (DatabaseBusyError, DatabaseUnusable) as exc:  # messages written for the user
    ui.error(exc)
except ServiceError as exc:  # e.g. a role that does not allow the action
    ui.error(exc)
except DBAPIError as exc:
    message = explain(exc)  # a database fault (read-only, disk full, damaged file)
    if message is None:
        raise
    ui.error(message)
