"""Hostile text stays text (issue 15): a project, labels, guidelines and documents whose
names and texts hold HTML, script tags and Markdown are shown in headless Chromium on every
page of the app; no script runs (no flag set, no dialog) and nothing becomes markup (no
element, emphasis, link, heading or code made from them), while the text itself is there.

Pages that need a trained run (Live progress charts, inspector rows, export, predictions) show
their empty states here; run names and class names on those are covered by
tests/app2/test_output_safety.py (Plotly) and the AppTest page tests."""

from __future__ import annotations

import os

import pandas as pd
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

PROJECT = ('<img src=x onerror="window.__pwned=1"><b id="hb">B</b> **bold-marker** '
           '[click-marker](javascript:window.__pwned=2) <script>window.__pwned=3</script>')
CLASS_A = '<b id="hc">pos</b> _em-marker_'
CLASS_B = "# heading-marker `code-marker`"
GUIDE = '<i id="hd">x</i> <svg onload="window.__pwned=6"></svg> [link-marker](http://e.x)'
DOCS = ['<script>window.__pwned=4</script><img src=y onerror="window.__pwned=5"> '
        "_em-marker_ **bold-marker** great",
        "# heading-marker\n\n<iframe id=\"he\" src=\"javascript:window.__pwned=7\"></iframe>",
        "[click-marker](javascript:window.__pwned=8) `code-marker` terrible",
        "plain text four", "plain text five"]
PAGES = ["Projects", "Import corpus", "Label set", "Labelling", "Prompt design", "Agreement",
         "Team and sharing", "Train", "Runs", "Live progress", "Pseudo-label inspector",
         "Export", "Predict"]
TITLES = {"Train": "Train a classifier", "Export": "Export the model"}  # the others: the link

PICKER_SHOWS_NAME = """() => [...document.querySelectorAll(
    '[data-testid=stSidebar] [data-testid=stSelectbox]')]
  .map(e => e.innerText + ' ' + [...e.querySelectorAll('input')].map(i => i.value).join(' '))
  .some(t => t.includes('**bold-marker**') && t.includes('<script>'))"""

# Markup that would exist only if our text had been rendered as HTML or Markdown.
MARKUP_CHECK = """() => {
  const found = [];
  for (const sel of ['#hb', '#hc', '#hd', '#he', 'img[src="x"]', 'img[src="y"]', 'svg[onload]',
                     'iframe#he']) {
    if (document.querySelector(sel)) found.push(sel);
  }
  const tagged = (tags, marker) => [...document.querySelectorAll(tags)]
      .some(e => e.textContent.includes(marker));
  if (tagged('strong, b', 'bold-marker')) found.push('bold');
  if (tagged('em, i', 'em-marker')) found.push('emphasis');
  if (tagged('a', 'click-marker') || tagged('a', 'link-marker')) found.push('link');
  if (tagged('h1, h2, h3, h4, h5, h6', 'heading-marker')) found.push('heading');
  // st.code shows text literally, backticks included; Markdown would drop them.
  if ([...document.querySelectorAll('code')].some(e => e.textContent.includes('code-marker')
      && !e.textContent.includes('`code-marker`'))) found.push('code');
  return {found, pwned: window.__pwned === undefined ? null : window.__pwned};
}"""


@pytest.fixture()
def hostile_app(tmp_path, tiny_bert_dir):
    from app.services import labelling, projects, prompts
    from app.services.corpus import import_documents
    from db.migrate import upgrade_to_head
    from db.session import get_session
    from db.settings import get_settings

    env = {**os.environ, "LIST_DATA_DIR": str(tmp_path / "data"),
           "LIST_MODEL": str(tiny_bert_dir), "LIST_DEVICE": "cpu", "PYTHONUNBUFFERED": "1"}
    env.pop("LIST_DATABASE_URL", None)
    env.pop("LIST_AUTH", None)
    saved = {k: os.environ.get(k) for k in ("LIST_DATA_DIR", "LIST_MODEL", "LIST_DATABASE_URL")}
    os.environ.update(LIST_DATA_DIR=env["LIST_DATA_DIR"], LIST_MODEL=env["LIST_MODEL"])
    os.environ.pop("LIST_DATABASE_URL", None)
    get_settings.cache_clear()
    try:
        upgrade_to_head()
        with get_session() as s:
            project = projects.create_project(s, PROJECT)
            import_documents(s, project.id, pd.DataFrame({"text": DOCS}), text_column="text")
            a = labelling.add_label_class(s, project.id, CLASS_A, GUIDE, "great")
            labelling.add_label_class(s, project.id, CLASS_B, GUIDE, "terrible")
            first = labelling.keyword_matches(s, project.id, "great")[0]
            labelling.set_label(s, project.id, first, a.id)
            prompts.save_prompt_config(s, project.id, template="{text} It was {mask}.",
                                       verbalizer={CLASS_A: "great", CLASS_B: "terrible"},
                                       model="default")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        yield url


def test_hostile_text_stays_text_on_every_page(hostile_app, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    dialogs: list[str] = []

    def settle(page) -> None:
        page.wait_for_timeout(300)
        page.wait_for_function(
            "document.querySelector('[data-testid=stApp]')"
            "?.getAttribute('data-test-script-state') === 'notRunning'")
        page.wait_for_timeout(500)  # let the last rerun paint

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = open_page(browser, {"width": 1400, "height": 1400}, default_seconds=60)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        try:
            page.goto(hostile_app)
            settle(page)
            for name in PAGES:
                page.get_by_role("link", name=name, exact=True).click()
                settle(page)
                # The project picker shows the hostile name, literally, on every page (wait for
                # it: a loaded machine paints the sidebar after the script has finished).
                page.wait_for_function(PICKER_SHOWS_NAME)
                main = page.locator("[data-testid=stMain]")
                expect(main.get_by_role("heading", name=TITLES.get(name, name)).first
                       ).to_be_visible()
                if name == "Labelling":  # a document, the class buttons and the guidelines
                    expect(main).to_contain_text("<script>window.__pwned=4</script>")
                    expect(main).to_contain_text('<b id="hc">pos</b> _em-marker_')
                    expect(main).to_contain_text('<i id="hd">x</i>')
                    page.screenshot(path=str(artifacts_dir / "hostile-labelling.png"),
                                    full_page=True)
                if name == "Label set":
                    expect(main).to_contain_text("# heading-marker `code-marker`")
                page.wait_for_timeout(500)  # whatever else the page shows has painted
                result = page.evaluate(MARKUP_CHECK)
                assert result == {"found": [], "pwned": None}, (name, result)
                assert dialogs == [], (name, dialogs)
            # Label with the keyboard-less buttons: the success message names the class.
            page.get_by_role("link", name="Labelling", exact=True).click()
            settle(page)
            page.locator(".st-key-lab_class_1 button").click()
            settle(page)
            result = page.evaluate(MARKUP_CHECK)
            assert result == {"found": [], "pwned": None}, ("after labelling", result)
            expect(page.locator("[data-testid=stMain]")).to_contain_text("Labelled # heading")
        except Exception:
            page.screenshot(path=str(artifacts_dir / "hostile-failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert dialogs == []
