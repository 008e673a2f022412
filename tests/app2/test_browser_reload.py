"""Headless Chromium (issue 16): a reload of Live progress mid-run keeps the project and the
run (they live in the URL), and the pseudo-label inspector shows the teacher's labels while
round 1 still trains. A real `streamlit run app/main.py` and a real `python -m worker`."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys

import pytest

from tests.app2.conftest import ROOT, TINY_CONFIG, build_labelled_project, worker_env
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ms,
    needs_chromium,
    open_page,
    patience,
    stop,
    streamlit_app,
)

pytestmark = [pytest.mark.timeout(patience(900)), pytest.mark.browser, pytest.mark.slow,
              needs_chromium]

# Round 1 is long: the test cancels the run once it has seen what it needs.
LONG = {**TINY_CONFIG, "rounds": 1, "unlabeled_steps": 20000}


@pytest.fixture()
def served(data_env, tiny_bert_dir, tmp_path):
    """Two projects ("A first project" sorts first, so it is what a forgetful reload would
    show); in "Reviews" a long run, queued first, and a short one queued behind it."""
    from app.services import training
    from app.services.projects import create_project
    from db.migrate import upgrade_to_head
    from db.session import get_session

    upgrade_to_head()
    with get_session() as s:
        create_project(s, "A first project")
        project, config = build_labelled_project(s, "Reviews", n_labels=4)
        long = training.start_training(s, project.id, config.id,
                                       list_config=training.build_list_config("custom", LONG))
        short = training.start_training(
            s, project.id, config.id, list_config=training.build_list_config("custom", TINY_CONFIG))
        ids = project.id, long.id, short.id, long.title, short.title
        assert (long.title, short.title) == ("Run #1", "Run #2")  # numbered per project
    env = {**worker_env(data_env.data_dir, tiny_bert_dir), "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / "worker.log", "w") as wlog:
        worker = subprocess.Popen([sys.executable, "-m", "worker", "--poll", "0.5"], cwd=ROOT,
                                  env=env, stdout=wlog, stderr=subprocess.STDOUT)
        try:
            with streamlit_app(env, tmp_path / "app.log") as url:
                yield (url, *ids)
        finally:
            stop(worker)


def _run_state(run_id: int):
    from db.models import RoundMetric, Run
    from db.session import get_session

    with get_session() as s:
        run = s.get(Run, run_id)
        evaluated = s.query(RoundMetric).filter_by(run_id=run_id, round=1).count()
        return run.status, run.current_round, evaluated


def test_reload_keeps_project_and_run_and_pseudo_labels_show_during_round_1(served,
                                                                           artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    url, project_id, long_id, short_id, long_title, short_title = served

    def settle(page) -> None:
        page.wait_for_timeout(200)
        page.wait_for_function(
            "document.querySelector('[data-testid=stApp]')"
            "?.getAttribute('data-test-script-state') === 'notRunning'")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = open_page(browser, {"width": 1400, "height": 2300}, default_seconds=60)
        try:
            page.goto(url)
            settle(page)
            picker = page.get_by_role("combobox", name="Project")
            expect(picker).to_have_value("A first project")
            picker.click()
            page.get_by_role("option", name="Reviews").click()
            settle(page)
            page.get_by_role("link", name="Live progress").click()
            settle(page)
            # the default is the newest active run (the short, queued one): pick the long one
            runs = page.get_by_role("combobox", name="Run", exact=True)
            expect(runs).to_have_value(re.compile(f"^{short_title} "))
            runs.click()
            page.get_by_role("option", name=re.compile(f"^{long_title} ")).click()
            settle(page)
            page.wait_for_function(
                "[...document.querySelectorAll('[data-testid=stProgress] p')]"
                ".some(e => /Round 1 of 1/.test(e.innerText))", timeout=ms(180))
            assert f"project={project_id}" in page.url and f"run={long_id}" in page.url

            page.reload()
            settle(page)
            expect(picker).to_have_value("Reviews")
            expect(runs).to_have_value(re.compile(f"^{long_title} "))
            expect(page.get_by_test_id("stMetricValue").first).to_contain_text("running")
            expect(page.get_by_text(re.compile("Round 1 of 1"))).to_be_visible()
            page.screenshot(path=str(artifacts_dir / "app2-reload-progress.png"), full_page=True)

            page.get_by_role("link", name="Pseudo-label inspector").click()
            settle(page)
            expect(page.get_by_text("Pseudo-labelled documents")).to_be_visible()
            expect(page.get_by_text("This round is training now", exact=False)).to_be_visible()
            page.screenshot(path=str(artifacts_dir / "app2-inspector-round-1.png"), full_page=True)
            status, current_round, evaluated = _run_state(long_id)
            assert (status, current_round, evaluated) == ("running", 1, 0)  # round 1 not over
        finally:
            browser.close()
            from db import jobs
            from db.session import get_session

            with get_session() as s:  # end the long run now rather than after 20,000 steps
                for run_id in (long_id, short_id):
                    with contextlib.suppress(jobs.JobError):  # already finished
                        jobs.request_cancel(s, run_id)
