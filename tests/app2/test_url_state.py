"""The URL keeps the current project and the run a page shows (issue 16): a reload, a
bookmark or a shared link opens the same view. AppTest starts a fresh session per test,
which is what a reload is."""

from __future__ import annotations

from app.services import training
from app.services.projects import create_project
from tests.app2.conftest import MAIN, TINY_CONFIG


def _fresh_session(page: str, **params):
    """A new browser session on `page` whose URL carries `params` (no session state)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = str(v)
    return at.switch_page(f"views/{page}")


def test_project_and_run_come_back_from_the_url(trained, trained_db):
    # "A first project" sorts before the trained one: without the URL it would be shown.
    other = create_project(trained_db, "A first project")
    cfg = training.build_list_config("custom", TINY_CONFIG)
    queued = training.start_training(trained_db, trained.project_id, trained.prompt_config_id,
                                     list_config=cfg)
    at = _fresh_session("progress.py").run()
    assert not at.exception, at.exception
    assert at.session_state["project_id"] == other.id
    assert at.query_params["project"] == str(other.id)

    # the finished run, not the default (the queued, active one)
    at = _fresh_session("progress.py", project=trained.project_id, run=trained.run_id).run()
    assert not at.exception, at.exception
    assert at.session_state["project_id"] == trained.project_id
    assert at.selectbox(key="progress_run_id").value == trained.run_id
    assert at.query_params["run"] == str(trained.run_id)
    assert "succeeded" in {m.label: m.value for m in at.metric}["Status"]

    # choosing another run puts it in the URL
    at.selectbox(key="progress_run_id").set_value(queued.id).run()
    assert at.query_params["run"] == str(queued.id)
    assert at.query_params["project"] == str(trained.project_id)


def test_the_url_is_ignored_when_it_names_nothing_here(trained):
    at = _fresh_session("progress.py", project=trained.project_id, run=99999).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="progress_run_id").value == trained.run_id
    at = _fresh_session("progress.py", project="not-a-number").run()
    assert not at.exception, at.exception
    assert at.session_state["project_id"] == trained.project_id


def test_inspector_export_predict_keep_the_run(trained):
    for page, key in (("inspector.py", "insp_run"), ("export.py", "export_run"),
                      ("predict.py", "predict_run")):
        at = _fresh_session(page, project=trained.project_id, run=trained.run_id).run()
        assert not at.exception, (page, at.exception)
        assert at.selectbox(key=key).value == trained.run_id
        assert at.query_params["run"] == str(trained.run_id)
