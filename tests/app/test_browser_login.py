"""Sign-in and two annotators in headless Chromium against a real `streamlit run app/main.py`
with LIST_AUTH=password: a wrong password is refused, the right one signs in, sign-out ends
the session; then two signed-in browsers label the same project at once and are never shown
the same document."""

from __future__ import annotations

import os
import re

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


@pytest.fixture()
def password_app(tmp_path, tiny_bert_dir):
    from app.services import labelling, projects, users
    from app.services.corpus import import_documents
    from db.migrate import upgrade_to_head
    from db.session import get_session
    from db.settings import get_settings

    env = {**os.environ, "LIST_DATA_DIR": str(tmp_path / "data"), "LIST_AUTH": "password",
           "LIST_MODEL": str(tiny_bert_dir), "LIST_DEVICE": "cpu", "PYTHONUNBUFFERED": "1"}
    env.pop("LIST_DATABASE_URL", None)
    saved = {k: os.environ.get(k) for k in ("LIST_DATA_DIR", "LIST_DATABASE_URL")}
    os.environ["LIST_DATA_DIR"] = env["LIST_DATA_DIR"]
    os.environ.pop("LIST_DATABASE_URL", None)
    get_settings.cache_clear()
    try:
        upgrade_to_head()
        with get_session() as s:
            alice = users.create_user(s, "alice", "alice-password")
            users.create_user(s, "bob", "bob-password")
            users.act_as(s, alice.id)
            project = projects.create_project(s, "Shared")
            import_documents(s, project.id, pd.DataFrame({"text": [f"review {i}" for i in range(6)]}),
                             text_column="text")
            labelling.add_label_class(s, project.id, "positive")
            labelling.add_label_class(s, project.id, "negative")
            users.share(s, project.id, "bob", "annotator")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        yield url


def settle(page) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function(
        "document.querySelector('[data-testid=stApp]')"
        "?.getAttribute('data-test-script-state') === 'notRunning'")


def sign_in(page, url: str, name: str, password: str) -> None:
    page.goto(url)
    settle(page)
    page.locator(".st-key-auth_username input").fill(name)
    page.locator(".st-key-auth_password input").fill(password)
    page.get_by_role("button", name="Sign in").click()
    settle(page)


def shown_document(page) -> str:
    from playwright.sync_api import expect

    caption = page.get_by_text(re.compile(r"^Document \d+ ·"))
    expect(caption).to_be_visible()
    return re.match(r"Document (\d+)", caption.inner_text()).group(1)


def test_sign_in_sign_out_and_two_annotators(password_app, artifacts_dir):
    from playwright.sync_api import expect, sync_playwright

    url = password_app
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        alice = open_page(browser, {"width": 1300, "height": 1000})
        bob = open_page(browser, {"width": 1300, "height": 1000})  # its own context: cookies
        try:
            alice.goto(url)
            settle(alice)
            expect(alice.get_by_role("heading", name="Sign in")).to_be_visible()
            expect(alice.get_by_role("link", name="Labelling")).to_have_count(0)
            sign_in(alice, url, "alice", "wrong-password")
            expect(alice.get_by_text("Wrong user name or password")).to_be_visible()
            alice.locator(".st-key-auth_username input").fill("alice")
            alice.locator(".st-key-auth_password input").fill("alice-password")
            alice.get_by_role("button", name="Sign in").click()
            settle(alice)
            expect(alice.get_by_text("Signed in as alice")).to_be_visible()
            alice.get_by_role("button", name="Sign out").click()
            settle(alice)
            expect(alice.get_by_role("heading", name="Sign in")).to_be_visible()

            # Two annotators on the same project, at the same time, by keyword (oldest first:
            # without the lease both would be shown the same document).
            sign_in(alice, url, "alice", "alice-password")
            sign_in(bob, url, "bob", "bob-password")
            for page in (alice, bob):
                page.get_by_role("link", name="Labelling").click()
                settle(page)
                page.locator(".st-key-lab_strategy").get_by_text("Keyword search").click()
                settle(page)
                page.locator(".st-key-lab_keyword input").fill("review")
                page.locator(".st-key-lab_keyword input").press("Enter")
                settle(page)
            first_a, first_b = shown_document(alice), shown_document(bob)
            assert first_a != first_b
            alice.locator(".st-key-lab_class_0 button").click()
            settle(alice)
            assert shown_document(alice) not in (first_a, first_b)
            alice.screenshot(path=str(artifacts_dir / "login-two-annotators.png"), full_page=True)
        except Exception:
            for name, page in (("alice", alice), ("bob", bob)):
                page.screenshot(path=str(artifacts_dir / f"login-failure-{name}.png"),
                                full_page=True)
            raise
        finally:
            browser.close()
