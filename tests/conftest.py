"""Shared fixtures: tiny models (built once per session) and an isolated data directory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.tiny_models import build_tiny_bert, build_tiny_roberta  # noqa: E402

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_roberta_dir(tmp_path_factory) -> Path:
    return build_tiny_roberta(tmp_path_factory.mktemp("tiny-roberta"))


@pytest.fixture()
def data_env(tmp_path, monkeypatch, tiny_bert_dir):
    """Point the settings at a fresh data dir + SQLite file and the tiny model."""
    from db.settings import get_settings

    monkeypatch.setenv("LIST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LIST_DATABASE_URL", raising=False)
    monkeypatch.setenv("LIST_MODEL", str(tiny_bert_dir))
    monkeypatch.setenv("LIST_DEVICE", "cpu")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
