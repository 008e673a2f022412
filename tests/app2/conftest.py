"""Fixtures for the part-2 app tests (training, runs, inspector, export, predict).

`labelled_project` builds a small sentiment project through the part-1 services (import
with gold labels, label set, labels, a saved prompt). `trained` gives a copy of a database in
which a REAL worker subprocess (`python -m worker --once`) trained one tiny 2-round run;
the training happens once per test session, each test gets its own copy of the database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser import patience

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "app" / "main.py"

GOOD = ["great film", "loved it", "wonderful acting", "a joy to watch", "brilliant story",
        "superb music", "great fun", "what a great cast", "lovely and warm", "great ending",
        "really great", "good good good"]
BAD = ["awful plot", "boring scenes", "terrible dialogue", "a waste of time", "bad acting",
       "dull and slow", "terrible ending", "awful awful", "so boring", "bad and sad",
       "terrible cast", "an awful mess"]
TEMPLATE = "{text} It was {mask}."
WORDS = {"positive": "great", "negative": "terrible"}

# A few steps only: the point is the plumbing, not the accuracy.
TINY_CONFIG = dict(teacher_steps=6, rounds=2, unlabeled_steps=6, labeled_steps=3,
                   unlabeled_sample_size=40, seed=7)


def build_labelled_project(session, name: str = "Reviews", n_labels: int = 3):
    """Import 24 reviews with gold labels, define 2 classes, label n_labels per class,
    save a prompt. Returns (project, prompt_config)."""
    import pandas as pd

    from app.services import labelling, prompts
    from app.services.corpus import import_documents
    from app.services.projects import create_project
    from db.models import Document

    project = create_project(session, name)
    df = pd.DataFrame({"text": GOOD + BAD, "label": ["positive"] * len(GOOD) + ["negative"] * len(BAD)})
    import_documents(session, project.id, df, text_column="text", label_column="label")
    classes = {
        "positive": labelling.add_label_class(session, project.id, "positive", "Liked it", "great"),
        "negative": labelling.add_label_class(session, project.id, "negative", "Did not", "terrible"),
    }
    docs = {d.text: d.id for d in session.query(Document).filter_by(project_id=project.id)}
    for text in GOOD[:n_labels]:
        labelling.set_label(session, project.id, docs[text], classes["positive"].id)
    for text in BAD[:n_labels]:
        labelling.set_label(session, project.id, docs[text], classes["negative"].id)
    config = prompts.save_prompt_config(session, project.id, template=TEMPLATE,
                                        verbalizer=dict(WORDS), model="default")
    return project, config


@pytest.fixture()
def db(data_env):
    from db.migrate import upgrade_to_head
    from db.session import get_session

    upgrade_to_head()
    session = get_session()
    yield session
    session.close()


@pytest.fixture()
def labelled_project(db):
    return build_labelled_project(db)


def worker_env(data_dir: Path, model_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(LIST_DATA_DIR=str(data_dir), LIST_MODEL=str(model_dir), LIST_DEVICE="cpu",
               LIST_WORKER_POLL_SECONDS="0.5", LIST_HEARTBEAT_SECONDS="1",
               PYTHONPATH=str(ROOT), TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="2")
    env.pop("LIST_DATABASE_URL", None)
    return env


@dataclass(frozen=True)
class Trained:
    data_dir: Path
    project_id: int
    prompt_config_id: int
    run_id: int


@pytest.fixture(scope="session")
def trained_source(tmp_path_factory, tiny_bert_dir) -> Trained:
    """Once per session: a project and one tiny training run executed by a real worker."""
    from app.services import training
    from db.migrate import upgrade_to_head
    from db.session import get_session
    from db.settings import get_settings

    data_dir = tmp_path_factory.mktemp("trained") / "data"
    env = worker_env(data_dir, tiny_bert_dir)
    saved = {k: os.environ.get(k) for k in ("LIST_DATA_DIR", "LIST_MODEL", "LIST_DEVICE",
                                             "LIST_DATABASE_URL")}
    os.environ.update(LIST_DATA_DIR=str(data_dir), LIST_MODEL=str(tiny_bert_dir), LIST_DEVICE="cpu")
    os.environ.pop("LIST_DATABASE_URL", None)
    get_settings.cache_clear()
    try:
        upgrade_to_head()
        with get_session() as s:
            project, config = build_labelled_project(s)
            cfg = training.build_list_config("custom", TINY_CONFIG)
            run = training.start_training(s, project.id, config.id, list_config=cfg,
                                          eval_source="auto", preset="custom")
            ids = (project.id, config.id, run.id)
        proc = subprocess.run([sys.executable, "-m", "worker", "--once"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=patience(240))
        assert proc.returncode == 0, proc.stderr[-3000:]
        with get_session() as s:
            from db.models import Run

            status = s.get(Run, ids[2]).status
            assert status == "succeeded", proc.stderr[-3000:]
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()
    return Trained(data_dir, *ids)


@pytest.fixture()
def trained(data_env, trained_source) -> Trained:
    """A private copy of the trained database and its artifacts in this test's data dir
    (artifact paths are stored relative to the data dir)."""
    data_env.data_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        src = trained_source.data_dir / f"list.db{suffix}"
        if src.exists():
            shutil.copy(src, data_env.data_dir / f"list.db{suffix}")
    shutil.copytree(trained_source.data_dir / "artifacts", data_env.data_dir / "artifacts")
    return Trained(data_env.data_dir, trained_source.project_id,
                   trained_source.prompt_config_id, trained_source.run_id)


@pytest.fixture()
def trained_db(trained):
    from db.session import get_session

    session = get_session()
    yield session
    session.close()


def app_test(page: str, project_id: int | None, timeout: float = 60):
    """An AppTest of the app (router app/main.py) on one of our pages, with the current
    project set. Call `.run()` on it."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=timeout)
    if project_id is not None:
        at.session_state["project_id"] = project_id
    return at.switch_page(f"views/{page}")
