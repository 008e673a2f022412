"""Headless Chromium, model in the loop: after a real training run, the labelling page
switches to "most uncertain", waits for the background predict run (a real worker), shows
the model's guess and accepts it with the keyboard; the runs table and the per-class and
calibration view are opened too. Screenshots land in test-artifacts/."""

from __future__ import annotations

import subprocess
import sys

import pytest

from db.models import Label, LabelClass
from tests.app2.conftest import ROOT, worker_env
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

pytestmark = [pytest.mark.timeout(patience(600)), pytest.mark.browser, pytest.mark.slow,
              needs_chromium]



@pytest.fixture(autouse=True)
def _artifacts(trained, trained_source):
    """A copy of the trained run's files where this copy of the database looks for them
    (artifact paths are stored relative to the data dir; the worker writes next to them)."""
    import shutil

    copy = trained.data_dir / "artifacts"
    if not copy.exists() and (trained_source.data_dir / "artifacts").is_dir():
        shutil.copytree(trained_source.data_dir / "artifacts", copy)


def test_accept_the_models_guess_by_keyboard(trained, trained_db, tiny_bert_dir, tmp_path,
                                             artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    env = {**worker_env(trained.data_dir, tiny_bert_dir), "PYTHONUNBUFFERED": "1"}
    labels_before = trained_db.query(Label).count()

    def settle(page) -> None:
        page.wait_for_timeout(200)
        page.wait_for_function(
            "document.querySelector('[data-testid=stApp]')"
            "?.getAttribute('data-test-script-state') === 'notRunning'")

    with open(tmp_path / "worker.log", "w") as wlog:
        worker = subprocess.Popen([sys.executable, "-m", "worker", "--poll", "0.5"], cwd=ROOT,
                                  env=env, stdout=wlog, stderr=subprocess.STDOUT)
        try:
            with streamlit_app(env, tmp_path / "app.log") as url, sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = open_page(browser, {"width": 1400, "height": 2600}, default_seconds=60)
                page.goto(url)
                settle(page)
                page.get_by_role("link", name="Labelling").click()
                settle(page)
                page.locator(".st-key-lab_strategy").get_by_text("Most uncertain (model)").click()
                # The model labels the corpus in the background; the page notices by itself.
                guess = page.get_by_text("Model's guess (Run #", exact=False)
                expect(guess).to_be_visible(timeout=ms(180))
                settle(page)
                text = guess.inner_text()
                name = text.split(": ", 1)[1].split(" · ")[0].strip()
                page.wait_for_timeout(500)
                page.screenshot(path=str(artifacts_dir / "app2-labelling-suggestion.png"),
                                full_page=True)
                page.wait_for_function("window.__listHotkeysInstalled === true")
                page.locator("h1").first.click()  # focus the page, not the strategy radio
                page.keyboard.press("a")  # accept the guess by keyboard
                settle(page)
                expect(page.get_by_text(f"Labelled {name}")).to_be_visible()

                page.get_by_role("link", name="Runs").click()
                settle(page)
                expect(page.get_by_text("All training runs")).to_be_visible()
                page.screenshot(path=str(artifacts_dir / "app2-runs-table.png"), full_page=True)

                page.get_by_role("link", name="Live progress").click()
                settle(page)
                expect(page.get_by_text("Per class and calibration")).to_be_visible()
                page.get_by_text("Per class and calibration").scroll_into_view_if_needed()
                page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 7",
                                       timeout=ms(60))
                page.wait_for_timeout(1500)  # plotly paints after the rerun
                page.screenshot(path=str(artifacts_dir / "app2-evaluation.png"), full_page=True)
                browser.close()
        finally:
            stop(worker)
    trained_db.rollback()  # end the read snapshot: see what the app wrote
    assert trained_db.query(Label).count() == labels_before + 1
    newest = trained_db.query(Label).order_by(Label.id.desc()).first()
    assert trained_db.get(LabelClass, newest.label_class_id).name == name
