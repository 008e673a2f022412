"""The ETA of a running run comes from its own measured step times, phase by phase
(issue 16: it jumped from 1 h 04 min to 13 min when it extrapolated the teacher's pace)."""

from __future__ import annotations

from datetime import datetime, timedelta

from app.services import eta, training
from app.services import runs as run_service
from db.models import RunStep
from tests.app2.conftest import TINY_CONFIG

CFG = training.build_list_config("custom", {
    "teacher_steps": 100, "rounds": 2, "unlabeled_steps": 200, "labeled_steps": 50,
    "unlabeled_sample_size": 400, "auto_lr": False,
})
# what one step of each phase truly costs in this simulated run (seconds)
TRUE = {"teacher": 0.1, "kd": 0.1 * CFG["unlabeled_batch_size"] / CFG["labeled_batch_size"]}
TRUE["meta"] = 3 * TRUE["kd"]
TRUE["labeled"] = 0.1


def _simulate(until_step: int):
    """Sampled step rows (round, phase, global_step, time) of the run up to a global step,
    written once a second as the worker does, and the true seconds left after it."""
    t = datetime(2026, 1, 1)
    rows, g, left = [], 0, 0.0
    last_write = t
    for round_, phase, steps in eta.schedule(CFG):
        for _ in range(steps):
            g += 1
            if g <= until_step:
                t += timedelta(seconds=TRUE[phase])
                if (t - last_write).total_seconds() >= 1.0 or g == until_step:
                    last_write = t
                rows.append((round_, phase, g, last_write))
            else:
                left += TRUE[phase]
    return rows, left


def test_schedule_follows_the_engine():
    assert eta.schedule(CFG) == [(0, "teacher", 100), (1, "kd", 120), (1, "meta", 80),
                                 (1, "labeled", 50), (2, "kd", 120), (2, "meta", 80),
                                 (2, "labeled", 50)]
    assert sum(s for *_, s in eta.schedule(CFG)) == 100 + 2 * 250


def test_eta_is_close_all_along_the_run():
    for step in (60, 100, 160, 250, 300, 400, 560):
        rows, truth = _simulate(step)
        current_round = next(r for r, _, g, _ in reversed(rows))
        got = eta.remaining_seconds(CFG, step, current_round, eta.measured_rates(rows))
        assert got is not None and abs(got - truth) <= 0.1 * truth + 1, (step, got, truth)


def test_no_eta_before_a_few_seconds_were_measured():
    rows, _ = _simulate(10)  # 1 s of teacher steps
    assert eta.measured_rates(rows) == {}
    assert eta.remaining_seconds(CFG, 10, 0, {}) is None


def test_eta_of_a_running_run_reads_its_steps(db, labelled_project):
    project, config = labelled_project
    run = training.start_training(db, project.id, config.id,
                                  list_config=training.build_list_config("custom", TINY_CONFIG))
    start = datetime(2026, 1, 1)
    run.status, run.started_at, run.step, run.current_round = "running", start, 4, 0
    db.add_all([RunStep(run_id=run.id, round=0, phase="teacher", step=g, global_step=g,
                        loss=1.0, created_at=start + timedelta(seconds=2 * g))
                for g in (1, 2, 3, 4)])
    db.commit()
    left = run_service.eta_s(db, run)
    assert left is not None and left > 2 * 2  # at least the 2 teacher steps left at 2 s each
    row = run_service.list_runs(db, project.id)[0]
    assert row.eta_s == left
