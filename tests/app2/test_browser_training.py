"""Headless Chromium through training: a real `streamlit run app/main.py` and a real
`python -m worker` on the tiny model. The project (corpus, labels, prompt) is prepared with
the part-1 services (its browser flow is tested in tests/app/test_browser.py); this test
picks the custom preset on the Train page, starts the run, watches the Live progress page
refresh by itself, and keeps screenshots mid-run and after in test-artifacts/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.app2.conftest import ROOT, build_labelled_project, worker_env
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

pytestmark = [pytest.mark.timeout(patience(900)), pytest.mark.browser, pytest.mark.slow, needs_chromium]

# Installed in the page: keeps each distinct "Round k of 2" progress line the page displays.
ROUND_RECORDER = """
window.__roundsSeen = [];
setInterval(() => {
  for (const e of document.querySelectorAll(
      '[data-testid=stProgress] p, [data-testid=stMarkdownContainer] p')) {
    const m = /Round [0-9]+ of 2/.exec(e.innerText);
    if (m && !window.__roundsSeen.includes(m[0])) window.__roundsSeen.push(m[0]);
  }
}, 100);
"""


@pytest.fixture()
def served_project(data_env, tiny_bert_dir, tmp_path):
    """A prepared project, a worker and the app server on a free port."""
    from db.migrate import upgrade_to_head
    from db.session import get_session

    upgrade_to_head()
    with get_session() as s:
        project, _ = build_labelled_project(s, "Browser reviews", n_labels=4)
    env = {**worker_env(data_env.data_dir, tiny_bert_dir), "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / "worker.log", "w") as wlog:
        worker = subprocess.Popen([sys.executable, "-m", "worker", "--poll", "0.5"], cwd=ROOT,
                                  env=env, stdout=wlog, stderr=subprocess.STDOUT)
        try:
            with streamlit_app(env, tmp_path / "app.log") as url:
                yield url, project.id
        finally:
            stop(worker)
    if os.environ.get("LIST_KEEP_LOGS"):
        print((tmp_path / "worker.log").read_text()[-3000:])


def test_train_and_watch_live_progress(served_project, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    url, _ = served_project

    def settle(page) -> None:
        page.wait_for_timeout(200)
        page.wait_for_function(
            "document.querySelector('[data-testid=stApp]')"
            "?.getAttribute('data-test-script-state') === 'notRunning'")

    def shot(page, name: str) -> Path:
        path = artifacts_dir / f"app2-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def set_number(page, key: str, value: int) -> None:
        box = page.locator(f".st-key-{key} input")
        box.fill(str(value))
        box.press("Enter")
        settle(page)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = open_page(browser, {"width": 1400, "height": 2300}, default_seconds=60)
        try:
            page.goto(url)
            settle(page)
            page.get_by_role("link", name="Train").click()
            settle(page)
            expect(page.get_by_role("heading", name="Train a classifier")).to_be_visible()
            expect(page.get_by_text("Trainable parameters")).to_be_visible()
            # The worker is running: no "start a worker" warning.
            expect(page.get_by_text("No worker is running")).to_have_count(0)

            page.locator(".st-key-train_preset").get_by_text("custom").click()
            settle(page)
            # No learning-rate cross-validation (it trains the teacher 6 more times), and few
            # teacher steps: on 2 loaded cores the default custom run takes many minutes. The
            # rounds stay long enough for the page (refreshing every second or two) to show
            # round 1 while it runs.
            page.locator(".st-key-k_auto_lr label").click()
            settle(page)
            expect(page.locator(".st-key-k_auto_lr input")).not_to_be_checked()
            set_number(page, "k_teacher", 30)
            set_number(page, "k_usteps", 150)
            set_number(page, "k_lsteps", 40)
            set_number(page, "k_rounds", 2)
            shot(page, "1-train")
            page.locator(".st-key-start_training button").click()
            settle(page)
            expect(page.get_by_text("queued", exact=False).first).to_be_visible()

            page.get_by_role("link", name="Live progress").click()
            settle(page)
            # "Round k of 2" is shown only while the run is in a self-training round. On a
            # quiet machine a round of the tiny model can pass between two looks from here,
            # so the page itself records every round line it shows (polled every 100 ms).
            page.evaluate(ROUND_RECORDER)
            status = page.get_by_test_id("stMetricValue").first
            # The fragment refreshes by itself: no reload, no click from here on.
            expect(status).to_contain_text("running", timeout=ms(60))
            # Seeing a round line proves the page updated itself mid-run.
            page.wait_for_function("window.__roundsSeen.length > 0", timeout=ms(300))
            page.wait_for_timeout(500)  # let plotly paint the teacher's charts
            mid = shot(page, "2-progress-mid-run")
            expect(status).to_contain_text("succeeded", timeout=ms(400))
            settle(page)
            page.wait_for_timeout(1500)  # plotly paints after the rerun
            expect(page.get_by_text("Accuracy").first).to_be_visible()
            after = shot(page, "3-progress-after")
            assert mid.stat().st_size > 10_000 and after.stat().st_size > 10_000

            page.get_by_role("link", name="Runs").click()
            settle(page)
            expect(page.get_by_text("Run #1: succeeded", exact=False)).to_be_visible()
            shot(page, "4-runs")

            page.get_by_role("link", name="Pseudo-label inspector").click()
            settle(page)
            expect(page.get_by_text("Pseudo-labelled documents")).to_be_visible()
            page.get_by_role("button", name="Accept", exact=True).click()
            settle(page)
            expect(page.get_by_text("pseudo-label accepted", exact=False)).to_be_visible()
            shot(page, "5-inspector")

            page.get_by_role("link", name="Export").click()
            settle(page)
            page.locator(".st-key-export_build button").click()
            settle(page)
            expect(page.locator(".st-key-export_download button")).to_be_visible()
            shot(page, "6-export")

            page.get_by_role("link", name="Predict").click()
            settle(page)
            page.locator(".st-key-predict_text textarea").fill("a great film, loved it")
            page.locator(".st-key-predict_one button").click()
            settle(page)
            expect(page.get_by_text("Predicted label")).to_be_visible()
            # the whole corpus in the background (a predict run on the worker) -> CSV
            page.locator(".st-key-predict_start button").click()
            settle(page)
            expect(page.get_by_role("button", name="Download prediction #1 (CSV)")
                   ).to_be_visible(timeout=ms(300))
            shot(page, "7-predict")
        except Exception:
            page.screenshot(path=str(artifacts_dir / "app2-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
