"""Pseudo-labels reach the database when the teacher makes them, and their meta weights while
the student trains (issue 16): the inspector fills long before round 1 ends."""

from __future__ import annotations

from sqlalchemy import select

from app.services import inspector
from db import jobs
from db.models import CANCELLED, CANCELLING, PseudoLabel, RoundMetric, Run
from tests.worker.conftest import fresh, wait_for
from tests.worker.helpers import sentiment_project, train_config

N_UNLABELLED = 24


def _round_one(session, run_id) -> Run | None:
    run = fresh(session).get(Run, run_id)
    assert run.status in ("queued", "running"), run.error
    return run if run.current_round == 1 and run.phase in ("kd", "meta") else None


def _weighted(session, run_id) -> int:
    rows = fresh(session).scalars(
        select(PseudoLabel.meta_weight).where(PseudoLabel.run_id == run_id,
                                              PseudoLabel.round == 1)).all()
    return sum(w is not None for w in rows)


def test_pseudo_labels_and_weights_are_visible_during_round_1(session, start_worker,
                                                               tiny_bert_dir):
    project = sentiment_project(session, n_unlabelled=N_UNLABELLED)
    # round 1 is long (it is cancelled once the test has seen what it needs)
    run = jobs.enqueue(session, project.id, train_config(
        str(tiny_bert_dir), unlabeled_steps=20000, kd_warmup_fraction=0.0005))
    worker = start_worker("--max-runs", "1")
    wait_for(lambda: _round_one(session, run.id), 120, what="round 1 to start")

    # the teacher's pseudo-labels are there while round 1 trains, before its evaluation
    table = inspector.pseudo_label_table(fresh(session), run.id, 1,
                                         inspector.Filters(hide_labelled=False))
    assert len(table) == N_UNLABELLED
    assert set(table["pseudo_label"]) <= {"negative", "positive"}
    assert inspector.round_overview(session, run.id, 1)["with_gold"] == N_UNLABELLED
    assert session.scalar(select(RoundMetric.id).where(RoundMetric.run_id == run.id,
                                                       RoundMetric.round == 1)) is None

    # the student's running meta weights follow within seconds, still in round 1
    wait_for(lambda: _weighted(session, run.id) > 0, 90, interval=0.5,
             what="meta weights of round 1")
    current = fresh(session).get(Run, run.id)
    assert current.current_round == 1 and current.status == "running"
    assert inspector.round_overview(session, run.id, 1)["weighted"] > 0

    assert jobs.request_cancel(session, run.id) == CANCELLING
    assert worker.wait(90) == 0, worker.log()
    assert fresh(session).get(Run, run.id).status == CANCELLED
