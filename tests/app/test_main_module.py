"""AppTest runs a page by installing it as sys.modules["__main__"], and leaves it there.
tests/conftest.py puts the real one back after each test: otherwise processes that a later
test starts with "spawn" (the queue stress test, the local-user race) first run the app's
main.py, which signs in the local user and races on it."""

from __future__ import annotations

import sys

from tests.app.test_pages import MAIN, open_app


def test_an_apptest_leaves_the_page_as_main(db):
    open_app()
    assert getattr(sys.modules["__main__"], "__file__", None) == MAIN


def test_the_real_main_is_back_for_the_next_test():
    assert getattr(sys.modules["__main__"], "__file__", None) != MAIN
