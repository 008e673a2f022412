"""A fresh database at head for each test (no model needed), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import both_engines, use_database


def pytest_generate_tests(metafunc):
    both_engines(metafunc)


@pytest.fixture()
def db_settings(tmp_path, monkeypatch, database_url):
    from db.settings import get_settings

    monkeypatch.setenv("LIST_DATA_DIR", str(tmp_path / "data"))
    use_database(monkeypatch, database_url)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture()
def session(db_settings):
    from db.migrate import upgrade_to_head
    from db.session import get_session

    upgrade_to_head()
    with get_session() as s:
        yield s


@pytest.fixture()
def project(session):
    """A project with 2 classes, 6 documents (2 labelled, 1 held out, gold on all)."""
    from tests.db.helpers import make_project

    return make_project(session)
