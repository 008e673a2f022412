"""Fixtures for the app tests: a migrated database in a fresh data dir, and a session."""

from __future__ import annotations

import pytest


@pytest.fixture()
def db(data_env):
    """A session on a fresh, migrated SQLite database (the tiny BERT is LIST_MODEL)."""
    from db.migrate import upgrade_to_head
    from db.session import get_session

    upgrade_to_head()
    session = get_session()
    yield session
    session.close()


@pytest.fixture()
def project(db):
    from app.services.projects import create_project

    return create_project(db, "Test project")


@pytest.fixture()
def sentiment_project(db, project):
    """A project with 12 short reviews and two labels (positive / negative)."""
    import pandas as pd

    from app.services.corpus import import_documents
    from app.services.labelling import add_label_class

    good = ["great film", "loved it", "wonderful acting", "a joy to watch", "brilliant story",
            "superb music"]
    bad = ["awful plot", "boring scenes", "terrible dialogue", "a waste of time",
           "bad acting", "dull and slow"]
    df = pd.DataFrame({"text": good + bad, "label": ["pos"] * 6 + ["neg"] * 6})
    import_documents(db, project.id, df, text_column="text", label_column="label")
    add_label_class(db, project.id, "positive", "Liked it", "great")
    add_label_class(db, project.id, "negative", "Did not like it", "terrible")
    return project
