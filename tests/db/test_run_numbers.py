"""Runs are numbered per project and kind: a background embedding or prediction job no
longer takes "Run #1" from a user's first training run (issue #16)."""

from __future__ import annotations

import sqlalchemy as sa

from db import jobs
from db.models import Run
from tests.db.helpers import make_project


def test_each_kind_counts_from_one_in_each_project(session, project):
    embed = jobs.enqueue(session, project.id, {}, kind="embed")
    first = jobs.enqueue(session, project.id, {"n": 1})
    predict = jobs.enqueue(session, project.id, {}, kind="predict")
    second = jobs.enqueue(session, project.id, {"n": 2})
    assert embed.id < first.id  # the embedding job came first ...
    assert [r.title for r in (embed, first, predict, second)] == [
        "Embedding #1", "Run #1", "Prediction #1", "Run #2"]  # ... and took no run number
    other = make_project(session, name="other")
    assert jobs.enqueue(session, other.id, {}).title == "Run #1"


def test_the_shards_of_one_prediction_share_its_number(session, project):
    jobs.enqueue(session, project.id, {}, kind="predict")
    shards = jobs.enqueue_sharded_predict(session, project.id, {}, shards=3)
    assert {r.title for r in shards} == {"Prediction #2"}
    assert jobs.enqueue(session, project.id, {}, kind="predict").title == "Prediction #3"


def test_a_run_without_a_number_shows_its_id(session, project):
    run = Run(project_id=project.id, kind="train", config={})
    session.add(run)
    session.commit()
    assert run.title == f"Run #{run.id}"


def test_the_migration_numbers_existing_runs_in_id_order(db_settings):
    from alembic import command

    from db.migrate import alembic_config, head_revision
    from db.session import make_engine

    url = db_settings.database_url
    command.upgrade(alembic_config(url), "0004")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO projects (id, name, description, created_at, updated_at)"
                             " VALUES (1, 'a', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP),"
                             " (2, 'b', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        for rid, pid, kind in [(1, 1, "embed"), (2, 1, "train"), (3, 2, "train"),
                               (4, 1, "predict"), (5, 1, "train")]:
            conn.execute(sa.text(
                "INSERT INTO runs (id, project_id, kind, config, status, attempts, max_attempts,"
                " progress, created_at, queued_at) VALUES (:id, :pid, :kind, '{}', 'succeeded',"
                " 1, 3, 1.0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                {"id": rid, "pid": pid, "kind": kind})
    command.upgrade(alembic_config(url), "head")
    with engine.connect() as conn:
        numbers = dict(conn.execute(sa.text("SELECT id, number FROM runs")).all())
    engine.dispose()
    assert numbers == {1: 1, 2: 1, 3: 1, 4: 1, 5: 2}
    assert head_revision() == "0005"
