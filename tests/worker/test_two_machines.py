"""Two "machines" on one: two workers with different LIST_DATA_DIRs and one PostgreSQL.
Worker A is killed with -9 in round 2; worker B (which never saw A's disk) resumes the run
from A's round-1 checkpoint, fetched from the database, not from scratch. A third data dir
(the app's machine) then fetches the model and B's predictions from the database."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from db import jobs
from db.models import RUNNING, SUCCEEDED, Artifact, ArtifactBlob, Run
from tests.worker.conftest import WorkerProc, wait_for
from tests.worker.helpers import sentiment_project, train_config

pytestmark = pytest.mark.slow


def test_worker_b_resumes_from_worker_a_checkpoint_via_the_database(
        pg_cluster, tmp_path, monkeypatch, tiny_bert_dir):
    from db.migrate import upgrade_to_head
    from db.session import get_session
    from db.settings import get_settings

    url = pg_cluster.create_database()
    machines = {m: tmp_path / f"machine-{m}" for m in "ABC"}

    def env(machine: str) -> dict:
        return dict(os.environ, LIST_DATA_DIR=str(machines[machine]), LIST_DATABASE_URL=url,
                    LIST_MODEL=str(tiny_bert_dir), LIST_DEVICE="cpu",
                    LIST_HEARTBEAT_SECONDS="0.5", LIST_STALE_SECONDS="3",
                    LIST_WORKER_POLL_SECONDS="0.2", OMP_NUM_THREADS="1",
                    TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")

    monkeypatch.setenv("LIST_DATA_DIR", str(machines["C"]))  # this process: the app's machine
    monkeypatch.setenv("LIST_DATABASE_URL", url)
    get_settings.cache_clear()
    upgrade_to_head(url)
    s = get_session(url)

    def run_row(run_id) -> Run:
        s.rollback()
        s.expire_all()
        return s.get(Run, run_id)

    try:
        project = sentiment_project(s, n_unlabelled=24)
        config = train_config(str(tiny_bert_dir), rounds=3, teacher_steps=10,
                              unlabeled_steps=150, labeled_steps=20)
        run_id = jobs.enqueue(s, project.id, config).id

        a = WorkerProc(env("A"), tmp_path / "worker-a.log")
        try:
            wait_for(lambda: (r := run_row(run_id)).status == RUNNING
                     and (r.current_round or 0) >= 2 and (r.step or 0) > 0, 240,
                     what="round 2 on machine A")
        finally:
            a.kill()  # SIGKILL
        ckpt = jobs.latest_checkpoint(s, run_id)
        assert ckpt.round == 1 and not Path(ckpt.stored_path).is_absolute()
        assert s.get(ArtifactBlob, ckpt.id) is not None  # a copy in the database
        assert not (machines["B"] / ckpt.stored_path).exists()

        b = WorkerProc(env("B"), tmp_path / "worker-b.log", "--max-runs", "2")
        try:
            wait_for(lambda: run_row(run_id).status == SUCCEEDED, 300, interval=1.0,
                     what="machine B finishing the run")
            predict_id = jobs.enqueue(s, project.id, {"source_run_id": run_id, "input": "corpus"},
                                      kind="predict").id
            assert b.wait(180) == 0, b.log()
        finally:
            b.kill()
        log = b.log()
        assert "resuming from the round-1 checkpoint" in log, log
        assert "fetched from the database" in log, log
        done = run_row(run_id)
        assert (done.attempts, done.resumed_from_round, done.progress) == (2, 1, 1.0)
        assert run_row(predict_id).status == SUCCEEDED
        s.rollback()
        stored = [a.stored_path for a in s.query(Artifact)]
        assert stored and not any(Path(p).is_absolute() for p in stored), stored

        # Machine C (never ran a worker): the app's export and predict services fetch the
        # model and the predictions from the database.
        from app.services import export as export_service
        from app.services import predict as predict_service
        from list_engine import PromptClassifier

        assert [r.id for r in export_service.exportable_runs(s, project.id)] == [run_id]
        export = export_service.build_export(s, run_id)
        folder = export_service.unpack(export.path, tmp_path / "unpacked")
        assert Path(export.path).is_relative_to(machines["C"])
        clf = PromptClassifier.from_pretrained(str(folder), device="cpu")
        probs = clf.predict_proba([_example("a great fun movie")])
        assert abs(float(probs.sum()) - 1.0) < 1e-4
        csv_path = predict_service.predictions_file(s, predict_id)
        assert csv_path is not None and csv_path.is_relative_to(machines["C"])
        assert csv_path.read_text().splitlines()[0].startswith("document_id,text,")
    finally:
        s.close()
        get_settings.cache_clear()


def _example(text: str):
    from list_engine import Example

    return Example(text=text)
