"""Issue 26, item 11, in headless Chromium: a label panel being edited stays open after Enter,
after leaving a field and after Save (it folded shut and hid Save), and a name pasted over
200 characters stays in the field with a message (it was dropped without a word)."""

from __future__ import annotations

import os

import pytest

from app.services import labelling as L
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


def test_label_panels_stay_open_while_edited(db, sentiment_project, tmp_path, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    pos, neg = L.list_label_classes(db, sentiment_project.id)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # data_env: the same data dir and model

    with streamlit_app(env, tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = open_page(browser, {"width": 1400, "height": 1000})
        try:
            page.goto(f"{url}/label_set")
            settle(page)
            save = page.locator(f".st-key-lc_save_{neg.id} button")
            expect(save).to_be_hidden()  # folded until opened
            page.get_by_text("2. negative").click()
            expect(save).to_be_visible()
            word = page.locator(f".st-key-lc_word_{neg.id} input")
            word.fill("bad")
            word.press("Enter")
            settle(page)
            expect(save).to_be_visible()
            desc = page.locator(f".st-key-lc_desc_{neg.id} textarea")
            desc.fill("Did not like it at all")
            page.locator("h1").first.click()  # leave the field: a blur
            settle(page)
            expect(save).to_be_visible()
            save.click()
            settle(page)
            expect(page.get_by_text("Label saved.")).to_be_visible()
            expect(save).to_be_visible()
            word.fill("bad, awful")  # the next edit, after the flash: still open
            word.press("Enter")
            settle(page)
            expect(save).to_be_visible()
            # a pasted name over 200 characters stays, with what to fix
            long_name = "n" * 243
            name = page.locator(".st-key-new_label_name input")
            name.fill(long_name)
            name.press("Enter")
            settle(page)
            expect(name).to_have_value(long_name)
            expect(page.get_by_text("Label names are at most 200 characters; this one has "
                                    "243.", exact=False)).to_be_visible()
        except Exception:
            page.screenshot(path=str(artifacts_dir / "label-panels-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    db.rollback()
    assert L.list_label_classes(db, sentiment_project.id)[1].verbalizer_word == "bad"
