"""Migrations: empty -> head, idempotent and concurrent upgrades, models == migrations."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from db.migrate import current_revision, head_revision, upgrade_to_head
from db.models import Base
from db.session import make_engine
from tests.conftest import ROOT


def test_empty_to_head_creates_every_table(db_settings):
    engine = make_engine(db_settings.database_url)
    assert current_revision(engine) is None
    assert upgrade_to_head() == head_revision()
    assert current_revision(engine) == head_revision()
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert upgrade_to_head() == head_revision()  # second call: no-op
    engine.dispose()


def test_models_and_migrations_agree(db_settings):
    upgrade_to_head()
    engine = make_engine(db_settings.database_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, Base.metadata)
    engine.dispose()
    assert diffs == [], f"models differ from migrations (run `python -m db revision`): {diffs}"


def test_concurrent_upgrades_of_an_empty_database(db_settings):
    env = dict(os.environ, LIST_DATA_DIR=str(db_settings.data_dir))
    procs = [
        subprocess.Popen([sys.executable, "-m", "db", "upgrade"], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    engine = make_engine(db_settings.database_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
