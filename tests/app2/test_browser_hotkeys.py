"""Headless Chromium: the labelling keys work whatever was clicked last. After a click on the
sidebar's Strategy radio the focus stays on it; a class key must still label, and an arrow must
move to the next or previous document, never change the strategy. Keys typed into a text field
stay text. A real `streamlit run app/main.py`."""

from __future__ import annotations

import pytest

from tests.app2.conftest import build_labelled_project, worker_env
from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    needs_chromium,
    open_page,
    patience,
    settle,
    streamlit_app,
)

pytestmark = [pytest.mark.timeout(patience(600)), pytest.mark.browser, needs_chromium]


@pytest.fixture()
def served(data_env, tiny_bert_dir, tmp_path):
    from db.migrate import upgrade_to_head
    from db.session import get_session

    upgrade_to_head()
    with get_session() as s:
        project, _ = build_labelled_project(s, "Reviews", n_labels=1)
        project_id = project.id
    env = {**worker_env(data_env.data_dir, tiny_bert_dir), "PYTHONUNBUFFERED": "1"}
    with streamlit_app(env, tmp_path / "app.log") as url:
        yield url, project_id


def test_keys_work_after_a_click_on_the_strategy_radio(served, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    url, project_id = served

    def shown_document(page) -> str:
        return page.wait_for_function(
            "() => { const v = document.querySelectorAll('.st-key-doc_view');"
            " return v.length === 1 ? v[0].innerText.trim() : false; }").json_value()

    def document_changes_from(page, text: str) -> None:
        page.wait_for_function(
            "(t) => { const v = document.querySelectorAll('.st-key-doc_view');"
            " return v.length === 1 && v[0].innerText.trim() !== t; }", arg=text)
        settle(page)

    def focus_strategy(page) -> None:
        page.get_by_text("Random", exact=True).click()  # the strategy already chosen
        settle(page)
        assert page.evaluate("document.activeElement.type") == "radio"

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = open_page(browser, {"width": 1400, "height": 1100})
        try:
            page.goto(f"{url}/labelling?project={project_id}")
            settle(page)
            page.wait_for_function("window.__listHotkeysInstalled === true")
            metric = page.get_by_test_id("stMetricValue").first
            expect(metric).to_have_text("2 / 30")
            random = page.get_by_role("radio", name="Random", exact=True)
            expect(random).to_be_checked()

            focus_strategy(page)
            page.keyboard.press("1")  # labels the document, from the radio's focus
            expect(metric).to_have_text("3 / 30")
            settle(page)

            focus_strategy(page)
            second = shown_document(page)
            page.keyboard.press("ArrowLeft")  # back to the document just labelled
            document_changes_from(page, second)
            expect(random).to_be_checked()  # the arrow did not move the radio

            focus_strategy(page)
            first = shown_document(page)
            page.keyboard.press("ArrowRight")  # "next", not "Diverse"
            document_changes_from(page, first)
            expect(random).to_be_checked()
            assert page.get_by_role("radio", name="Diverse (clusters)").is_checked() is False

            # Inside a text field a key is text, not a shortcut.
            target = page.get_by_label("Target labels in total")
            target.click()
            target.press("End")
            target.press("1")
            expect(metric).to_have_text("3 / 30")  # "1" typed, nothing labelled
            page.screenshot(path=str(artifacts_dir / "app2-hotkeys-after-radio.png"),
                            full_page=True)
        finally:
            browser.close()
