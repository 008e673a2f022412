"""Headless Chromium: the Runs page's "Live progress" button, pressed while a run trains,
opens a drawn Live progress page on that run, ten times out of ten, with two busy loops
beside the app. (Called from inside the Runs page's auto-refreshing fragment, the page switch
left a blank white page most of the time: "Bad delta path index" in the console.)
A real `streamlit run app/main.py` and a real `python -m worker` on the tiny model."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time

import pytest

from tests.app2.conftest import ROOT, TINY_CONFIG, build_labelled_project, worker_env
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    needs_chromium,
    open_page,
    patience,
    settle,
    stop,
    streamlit_app,
)

pytestmark = [pytest.mark.timeout(patience(900)), pytest.mark.browser, pytest.mark.slow,
              needs_chromium]

TRIES = 10
# Trains for far longer than the test: the test cancels it at the end.
LONG = {**TINY_CONFIG, "rounds": 1, "unlabeled_steps": 20000}
BUSY_LOOP = "while True: pass"


@pytest.fixture()
def served(data_env, tiny_bert_dir, tmp_path):
    from app.services import training
    from db.migrate import upgrade_to_head
    from db.session import get_session

    upgrade_to_head()
    with get_session() as s:
        project, config = build_labelled_project(s, "Reviews", n_labels=4)
        run = training.start_training(s, project.id, config.id,
                                      list_config=training.build_list_config("custom", LONG))
        ids = project.id, run.id, run.title
    env = {**worker_env(data_env.data_dir, tiny_bert_dir), "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / "worker.log", "w") as wlog:
        worker = subprocess.Popen([sys.executable, "-m", "worker", "--poll", "0.5"], cwd=ROOT,
                                  env=env, stdout=wlog, stderr=subprocess.STDOUT)
        try:
            with streamlit_app(env, tmp_path / "app.log") as url:
                yield (url, *ids)
        finally:
            stop(worker)
            from db import jobs

            with get_session() as s, contextlib.suppress(jobs.JobError):
                jobs.request_cancel(s, ids[1])


@contextlib.contextmanager
def busy_loops(n: int):
    procs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(n)]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def _run_status(run_id: int) -> str:
    from db.models import Run
    from db.session import get_session

    with get_session() as s:
        return s.get(Run, run_id).status


def test_live_progress_button_on_runs_page_opens_a_drawn_page(served, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    url, project_id, run_id, title = served
    console_errors: list[str] = []

    with sync_playwright() as pw, busy_loops(2):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = open_page(browser, {"width": 1400, "height": 1600}, default_seconds=60)
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        try:
            deadline = time.monotonic() + patience(120)
            while _run_status(run_id) != "running":  # the Runs page then refreshes itself
                assert time.monotonic() < deadline, "the worker did not start the run"
                time.sleep(0.5)
            page.goto(f"{url}/runs?project={project_id}")
            settle(page)
            for attempt in range(TRIES):
                button = page.get_by_role("button", name="Live progress", exact=True)
                # let the Runs fragment refresh at least once, as a user would wait
                page.wait_for_timeout(1500 + 700 * attempt)
                button.click()
                heading = page.get_by_role("heading", name="Live progress", exact=True)
                expect(heading).to_be_visible()
                settle(page)
                expect(page.get_by_role("combobox", name="Run", exact=True)).to_have_value(
                    re.compile(f"^{title} "))
                assert f"run={run_id}" in page.url, (attempt, page.url)
                # still drawn a moment later, and live: no blank page after the switch
                page.wait_for_timeout(2500)
                expect(heading).to_be_visible()
                expect(page.get_by_test_id("stMetricValue").first).to_be_visible()
                page.get_by_role("link", name="Runs").click()
                settle(page)
                expect(page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
            page.screenshot(path=str(artifacts_dir / "app2-runs-to-progress.png"), full_page=True)
        finally:
            browser.close()
    assert _run_status(run_id) == "running"  # the button was tested against a live run
    bad = [e for e in console_errors if "Bad delta path" in e or "disconnected" in e]
    assert not bad, bad[:5]
