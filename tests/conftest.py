"""Shared fixtures: tiny models (built once per session), an isolated data directory, and
the database under test (SQLite by default; tests/db, tests/worker and the end-to-end test
also run on a throwaway PostgreSQL cluster, see `both_engines`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.tiny_models import build_tiny_bert, build_tiny_roberta  # noqa: E402

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(autouse=True)
def _keep_main_module():
    """Streamlit's script runner (under AppTest) installs the page it runs as
    sys.modules["__main__"] and leaves it there; processes a later test starts with the
    "spawn" method would then run that page first. Put the real one back after each test."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory) -> Path:
    return build_tiny_roberta(tmp_path_factory.mktemp("tiny-roberta"))


# LIST_TEST_POSTGRES: "auto" (default: PostgreSQL tests run when the server binaries are
# installed, else are skipped), "require" (missing binaries fail; scripts/test sets this),
# "off" (SQLite only).
POSTGRES_MODE = os.environ.get("LIST_TEST_POSTGRES", "auto")


def both_engines(metafunc) -> None:
    """For `pytest_generate_tests` of a test package or module: tests that use
    `database_url` run on SQLite and PostgreSQL, except those marked `sqlite_only`."""
    if "database_url" not in metafunc.fixturenames:
        return
    engines = ["sqlite"]
    if not metafunc.definition.get_closest_marker("sqlite_only") and POSTGRES_MODE != "off":
        engines.append("postgresql")
    metafunc.parametrize("database_url", engines, indirect=True)


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL cluster for the whole session (tests/pg.py)."""
    from tests.pg import start_cluster

    try:
        cluster = start_cluster()
    except FileNotFoundError as exc:
        if POSTGRES_MODE == "require":
            raise
        pytest.skip(str(exc))
    yield cluster
    cluster.destroy()


@pytest.fixture()
def database_url(request):
    """None: SQLite in the test's data dir (the default); "postgresql" (parametrized by
    `both_engines`): a fresh database in the session's PostgreSQL cluster."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield None
        return
    url = request.getfixturevalue("pg_cluster").create_database()
    yield url
    from db.session import get_engine

    get_engine(url).dispose()  # close this test's pooled connections


def use_database(monkeypatch, url: str | None) -> None:
    if url is None:
        monkeypatch.delenv("LIST_DATABASE_URL", raising=False)
    else:
        monkeypatch.setenv("LIST_DATABASE_URL", url)


@pytest.fixture()
def data_env(tmp_path, monkeypatch, tiny_bert_dir, database_url):
    """Point the settings at a fresh data dir, the database under test and the tiny model."""
    from db.settings import get_settings

    monkeypatch.setenv("LIST_DATA_DIR", str(tmp_path / "data"))
    use_database(monkeypatch, database_url)
    monkeypatch.setenv("LIST_MODEL", str(tiny_bert_dir))
    monkeypatch.setenv("LIST_DEVICE", "cpu")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
