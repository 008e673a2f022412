"""End to end in headless Chromium against a real `streamlit run app/main.py`: create a
project, import a CSV, define labels, label 6 documents with the keyboard, save a prompt.
A screenshot of each page goes to test-artifacts/."""

from __future__ import annotations

import os
import sqlite3

import pytest

from tests.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    needs_chromium,
    open_page,
    patience,
    streamlit_app,
)

pytestmark = [pytest.mark.timeout(patience(900)), pytest.mark.browser, needs_chromium]


@pytest.fixture()
def app_server(tmp_path, tiny_bert_dir):
    env = {**os.environ, "LIST_DATA_DIR": str(tmp_path / "data"), "LIST_MODEL": str(tiny_bert_dir),
           "LIST_DEVICE": "cpu", "PYTHONUNBUFFERED": "1"}
    env.pop("LIST_DATABASE_URL", None)
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        yield url, tmp_path / "data" / "list.db"


def test_create_import_label_with_keyboard_and_save_prompt(app_server, tmp_path, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    url, db_path = app_server
    csv_path = tmp_path / "reviews.csv"
    good = ["A great film with a wonderful cast.", "Loved every minute of it.",
            "Brilliant, funny and moving.", "The best film this year.",
            "Superb acting and a clever plot."]
    bad = ["A terrible film, badly acted.", "Boring from start to end.",
           "I hated the dialogue.", "A waste of two hours.", "Dull, slow and silly."]
    rows = ["text,label"] + [f'"{t}",positive' for t in good] + [f'"{t}",negative' for t in bad]
    csv_path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    def shown_document(page) -> str:
        """The text of the document on screen, once one view of it is (while a rerun paints,
        the old and the new view can both be there)."""
        return page.wait_for_function(
            "() => { const v = document.querySelectorAll('.st-key-doc_view');"
            " return v.length === 1 ? v[0].innerText.trim() : false; }").json_value()

    def settle(page) -> None:
        """Wait until the app's script run triggered by the last action has finished."""
        page.wait_for_timeout(200)
        page.wait_for_function(
            "document.querySelector('[data-testid=stApp]')"
            "?.getAttribute('data-test-script-state') === 'notRunning'")

    def shot(page, name: str) -> None:
        settle(page)
        page.evaluate("document.querySelectorAll('[data-testid=stMain], [data-testid=stAppScrollToBottomContainer]')"
                      ".forEach(e => e.scrollTo(0, 0))")
        page.wait_for_timeout(300)  # let the last rerun paint
        page.screenshot(path=str(artifacts_dir / f"app1-{name}.png"), full_page=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = open_page(browser, {"width": 1400, "height": 1000})
        try:
            # The first visit after a start, by a deep link, shows the app's navigation, not
            # file names (an app/pages folder made Streamlit run that page file bare, under a
            # list of "main", "import data", ...).
            page.goto(f"{url}/labelling")
            settle(page)
            expect(page.get_by_role("link", name="Import corpus")).to_be_visible()
            for raw in ("main", "import data", "label set"):
                expect(page.get_by_role("link", name=raw, exact=True)).to_have_count(0)

            # Projects: empty state, then create a project in the sidebar.
            page.goto(url)
            expect(page.get_by_text("No project yet.", exact=False).first).to_be_visible()
            shot(page, "1-projects-empty")
            page.locator(".st-key-new_project_name input").fill("Browser reviews")
            page.locator(".st-key-create_project button").click()
            settle(page)
            expect(page.get_by_text("No corpus yet: import one.").first).to_be_visible()
            shot(page, "2-projects")

            # Import a CSV (gold labels kept for evaluation).
            page.get_by_role("link", name="Import corpus").click()
            settle(page)
            page.locator("[class*='st-key-import_file'] input[type=file]").set_input_files(str(csv_path))
            expect(page.get_by_text("10 rows, 2 column(s)", exact=False)).to_be_visible()
            settle(page)
            page.locator(".st-key-do_import button").click()
            settle(page)
            expect(page.get_by_text("10 documents imported", exact=False)).to_be_visible()
            shot(page, "3-import")

            # Label set: two labels.
            page.get_by_role("link", name="Label set").click()
            settle(page)
            for n, (name, word) in enumerate((("positive", "great"), ("negative", "terrible"))):
                page.locator(".st-key-new_label_name input").fill(name)
                page.locator(".st-key-new_label_word input").fill(word)
                page.locator(".st-key-new_label_word input").press("Tab")
                settle(page)
                expect(page.locator(".st-key-new_label_name input")).to_have_value(name)
                page.locator(".st-key-add_label button").click()
                settle(page)
                expect(page.get_by_text(f"{n + 1}. {name} (0 labelled)")).to_be_visible()
                # The form is emptied by that same rerun; under load its empty values can
                # arrive after the new label shows: typing the next name before then lost it.
                expect(page.locator(".st-key-new_label_name input")).to_have_value("")
                settle(page)
            shot(page, "4-label-set")

            # Labelling: 6 documents with the keyboard only.
            page.get_by_role("link", name="Labelling").click()
            settle(page)
            expect(page.locator(".st-key-lab_class_0 button")).to_be_visible()
            metric = page.get_by_test_id("stMetricValue").first
            expect(metric).to_have_text("0 / 30")
            page.wait_for_function("window.__listHotkeysInstalled === true")
            page.locator("h1").first.click()  # focus the page, not a text field
            for i in range(6):
                settle(page)
                text = shown_document(page)
                key = "1" if any(w in text for w in ("great", "Loved", "Brilliant", "best",
                                                      "Superb")) else "2"
                page.keyboard.press(key)
                expect(metric).to_have_text(f"{i + 1} / 30")
            # s skips, u undoes the last label, arrows move.
            settle(page)
            page.keyboard.press("u")
            expect(metric).to_have_text("5 / 30")
            settle(page)
            # Each arrow waits for the document it shows to change: under load `settle` can
            # pass before the click's rerun starts, and ArrowRight pressed on the stale page
            # (no document after this one yet: its button disabled) did nothing.
            one_view_shows = (
                "([text, same]) => { const v = document.querySelectorAll('.st-key-doc_view');"
                " return v.length === 1 && (v[0].innerText.trim() === text) === same; }")
            undone = shown_document(page)
            page.keyboard.press("ArrowLeft")  # back to the document before
            page.wait_for_function(one_view_shows, arg=[undone, False])
            settle(page)
            page.keyboard.press("ArrowRight")
            page.wait_for_function(one_view_shows, arg=[undone, True])
            settle(page)
            page.keyboard.press("1")
            expect(metric).to_have_text("6 / 30")
            shot(page, "5-labelling")

            # Prompt design: the default preset with the label words, valid; save it.
            page.get_by_role("link", name="Prompt design").click()
            settle(page)
            expect(page.get_by_text("The prompt is valid for this model.")).to_be_visible()
            page.locator(".st-key-pr_save button").click()
            settle(page)
            expect(page.get_by_text("Saved prompt version 1.")).to_be_visible()
            shot(page, "6-prompt")
        except Exception:
            page.screenshot(path=str(artifacts_dir / "app1-failure.png"), full_page=True)
            raise
        finally:
            browser.close()

    with sqlite3.connect(db_path) as conn:
        assert conn.execute("select count(*) from documents").fetchone()[0] == 10
        assert conn.execute("select count(*) from labels").fetchone()[0] == 6
        assert conn.execute("select count(*) from label_events where undone = 1").fetchone()[0] == 1
        assert conn.execute("select version, template from prompt_configs").fetchall() == [
            (1, "{text} It was {mask}.")]
