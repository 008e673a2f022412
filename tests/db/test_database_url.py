"""The database URL: PostgreSQL URLs use the shipped driver; the password never reaches a log."""

from __future__ import annotations

from db.settings import load_settings, normalize_url, safe_url


def test_postgres_urls_mean_psycopg_3(monkeypatch):
    for given in ("postgresql://u:pw@h:5432/d", "postgres://u:pw@h:5432/d",
                  "postgresql+psycopg://u:pw@h:5432/d"):
        assert normalize_url(given) == "postgresql+psycopg://u:pw@h:5432/d"
    assert normalize_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    monkeypatch.setenv("LIST_DATABASE_URL", "postgresql://u:pw@h/d")
    assert load_settings().database_url == "postgresql+psycopg://u:pw@h/d"


def test_safe_url_masks_the_password():
    shown = safe_url("postgresql+psycopg://list:s3cr%40t-pw@db.example:5432/list")
    assert "s3cr" not in shown and "***" in shown
    assert shown.startswith("postgresql+psycopg://list:***@db.example:5432/list")
    assert safe_url("not a url") == "<unparsable database URL>"
