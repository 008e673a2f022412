"""What watching a run costs (issue 26, item 9): the Live progress page redrew every chart
every 2 s even when nothing changed. Now a small header refreshes by itself, the charts
are redrawn only when what they show changed (`run_service.charts_signature`), the loss
and meta-weight curves on a slower timer of their own, and the server no longer forces a
full garbage collection after every rerun. bench/live_page_cost.py measures the CPU."""

from __future__ import annotations

import tomllib
from datetime import timedelta

from app.services import eta, training
from app.services import runs as run_service
from db.models import Document, Label, Run, RunStep, utcnow
from db.progress import record_metrics, record_pseudo_labels
from tests.app2.conftest import ROOT, TINY_CONFIG

PAGE = ROOT / "app" / "views" / "progress.py"


def _running(db, project_id: int, config_id: int, started_s_ago: float = 300) -> Run:
    run = training.start_training(db, project_id, config_id,
                                  list_config=training.build_list_config("custom", TINY_CONFIG))
    r = db.get(Run, run.id)
    now = utcnow()
    r.status, r.started_at, r.heartbeat_at = "running", now - timedelta(seconds=started_s_ago), now
    r.current_round, r.total_rounds, r.phase, r.step, r.total_steps, r.progress = (
        1, 2, "kd", 20, 60, 0.3)
    db.commit()
    return r


def _losses(db, run_id: int, start: int, n: int, round_: int = 1, phase: str = "kd") -> None:
    t0 = utcnow() - timedelta(seconds=n)
    db.add_all([RunStep(run_id=run_id, round=round_, phase=phase, step=g, global_step=g,
                        loss=1.0 / (1 + g), created_at=t0 + timedelta(seconds=g - start))
                for g in range(start, start + n)])
    db.commit()


def _metric(db, run_id: int, round_: int, accuracy: float = 0.75) -> None:
    record_metrics(db, run_id, round_, {
        "accuracy": accuracy, "macro_f1": 0.7, "n": 8, "labels": ["negative", "positive"],
        "confusion": [[3, 1], [1, 3]]})


def test_charts_signature_changes_only_with_what_the_charts_show(db, labelled_project):
    project, config = labelled_project
    run = _running(db, project.id, config.id)
    sig = run_service.charts_signature(db, run)
    assert run_service.charts_signature(db, run) == sig  # nothing changed: nothing to redraw

    # losses grow every second while a round trains: their two curves have their own timer
    _losses(db, run.id, 0, 50)
    assert run_service.charts_signature(db, run) == sig

    _metric(db, run.id, 0)  # the teacher evaluated
    after_metric = run_service.charts_signature(db, run)
    assert after_metric != sig
    _metric(db, run.id, 0, accuracy=0.5)  # a resumed run evaluating the round again
    assert run_service.charts_signature(db, run) != after_metric

    sig = run_service.charts_signature(db, run)
    docs = [d.id for d in db.query(Document).filter_by(project_id=project.id).limit(3)]
    record_pseudo_labels(db, run.id, 1, docs, [[0.2, 0.8]] * 3, ["positive"] * 3)
    assert run_service.charts_signature(db, run) != sig

    sig = run_service.charts_signature(db, run)
    run.current_round = 2  # the next round starts
    db.commit()
    assert run_service.charts_signature(db, run) != sig

    sig = run_service.charts_signature(db, run)
    label = db.query(Label).filter_by(project_id=project.id, held_out=False).first()
    label.held_out = True  # the class distribution counts training labels
    db.commit()
    assert run_service.charts_signature(db, run) != sig

    sig = run_service.charts_signature(db, run)
    run.status, run.finished_at = "succeeded", utcnow()
    db.commit()
    assert run_service.charts_signature(db, run) != sig


def test_live_refresh_is_quick_for_a_young_run_and_slow_after(db, labelled_project):
    project, config = labelled_project
    young = _running(db, project.id, config.id, started_s_ago=10)
    assert run_service.live_refresh_seconds(young) == run_service.LIVE_REFRESH_YOUNG
    old = _running(db, project.id, config.id, started_s_ago=600)
    assert run_service.live_refresh_seconds(old) == run_service.LIVE_REFRESH_STEADY
    header, curves = run_service.LIVE_REFRESH_STEADY
    assert header >= 10 and curves >= header  # what the 5 %-of-a-core budget allows
    queued = training.start_training(db, project.id, config.id,
                                     list_config=training.build_list_config("custom", TINY_CONFIG))
    assert run_service.live_refresh_seconds(queued) == run_service.LIVE_REFRESH_YOUNG
    later = utcnow() + timedelta(minutes=5)  # still waiting for a worker 5 minutes on
    assert run_service.live_refresh_seconds(queued, now=later) == run_service.LIVE_REFRESH_STEADY


def test_eta_reads_segment_ends_only_and_prices_the_same(db, labelled_project):
    """The header asks for the ETA every refresh: it reads the first and last sampled step
    of each (round, phase), not every step row, and gets the rates all rows give."""
    from sqlalchemy import select

    project, config = labelled_project
    run = _running(db, project.id, config.id)
    _losses(db, run.id, 0, 40, round_=0, phase="teacher")
    _losses(db, run.id, 40, 300, round_=1, phase="kd")
    _losses(db, run.id, 340, 200, round_=1, phase="meta")
    all_rows = db.execute(select(RunStep.round, RunStep.phase, RunStep.global_step,
                                 RunStep.created_at)
                          .where(RunStep.run_id == run.id).order_by(RunStep.id)).all()
    ends = run_service._segment_ends(db, run.id)
    assert len(ends) == 6 < len(all_rows)
    assert eta.measured_rates(ends) == eta.measured_rates(all_rows)
    run.step = 400
    db.commit()
    assert run_service.eta_s(db, run) is not None


def _live_page(run_id: int, page_path: str) -> None:
    """The Live progress page of one run, as the test drives it: a full run draws header
    and charts; with `fragment_only` set, what the header's (or the curves') timer runs
    alone."""
    import runpy

    import streamlit as st

    page = runpy.run_path(page_path, run_name="progress_under_test")  # defs, not main()
    st.session_state["script_runs"] = st.session_state.get("script_runs", 0) + 1
    part = st.session_state.pop("fragment_only", None)
    if part == "header":
        page["_live_header"](run_id)
    elif part == "curves":
        page["_live_curves"](run_id)
    else:  # as main() does: live while the run is not finished
        from app import ui
        from app.services import runs as run_service

        with ui.session() as s:
            live = run_service.get_run(s, run_id).status not in ("succeeded", "failed",
                                                                 "cancelled")
        page["render_run"](run_id, live=live)


def test_live_header_redraws_the_charts_only_when_they_changed(db, labelled_project):
    from streamlit.testing.v1 import AppTest

    project, config = labelled_project
    run = _running(db, project.id, config.id)
    at = AppTest.from_function(_live_page, args=(run.id, str(PAGE)), default_timeout=60)

    def tick(part: str = "header") -> AppTest:
        at.session_state["fragment_only"] = part
        at.run()
        assert not at.exception, at.exception
        return at

    at.run()
    assert not at.exception, at.exception
    assert at.session_state["script_runs"] == 1
    assert len(at.get("plotly_chart")) == 6  # a full draw: every chart
    header, curves = run_service.LIVE_REFRESH_STEADY
    assert any(f"every {header:g} s" in c.value for c in at.caption)

    tick()  # nothing changed: the header only, no chart drawn again, no page rerun
    assert at.session_state["script_runs"] == 2
    assert len(at.get("plotly_chart")) == 0
    assert at.get("progress") and {m.label for m in at.metric} >= {"Status", "Time left (ETA)"}

    _losses(db, run.id, 0, 30)  # the loss curve grows: not the header's business
    tick()
    assert at.session_state["script_runs"] == 3 and len(at.get("plotly_chart")) == 0
    tick("curves")  # the curves' own timer: the loss and the meta weights, nothing else
    assert at.session_state["script_runs"] == 4 and len(at.get("plotly_chart")) == 2

    _metric(db, run.id, 1)  # round 1 evaluated: the header reruns the whole page
    tick()
    assert at.session_state["script_runs"] == 6  # the header, then the full rerun
    assert len(at.get("plotly_chart")) == 7  # now with the reliability diagram
    assert {m.label for m in at.metric} >= {"Status", "Accuracy"}
    tick()  # and then nothing again
    assert at.session_state["script_runs"] == 7 and len(at.get("plotly_chart")) == 0

    r = db.get(Run, run.id)
    r.status, r.finished_at = "succeeded", utcnow()
    db.commit()
    tick()  # the run ended: one full rerun
    assert at.session_state["script_runs"] == 9


def test_live_page_of_a_running_run(db, labelled_project):
    from tests.app2.conftest import app_test

    project, config = labelled_project
    run = _running(db, project.id, config.id, started_s_ago=5)
    _losses(db, run.id, 0, 20)
    at = app_test("progress.py", project.id).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="progress_run_id").value == run.id
    assert len(at.get("plotly_chart")) == 6
    header, curves = run_service.LIVE_REFRESH_YOUNG
    assert any(f"every {header:g} s; the loss and meta-weight charts every {curves:g} s"
               in c.value for c in at.caption)


def test_the_server_does_not_collect_garbage_after_every_rerun():
    """A full gc.collect(2) after each script run cost 0.1-0.2 s of CPU with torch loaded,
    every refresh of every live fragment."""
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False


def test_a_long_loss_curve_is_drawn_without_markers():
    """Each marker is an SVG node the browser redraws with the curve, and a run logs up to
    2,000 loss points: a long curve is a line only."""
    from app import charts

    def rows(n):
        return [{"round": 0, "phase": "teacher", "global_step": g, "loss": 1.0 / (g + 1)}
                for g in range(n)]

    assert charts.loss_figure(rows(50)).data[0].mode == "lines+markers"
    assert charts.loss_figure(rows(2000)).data[0].mode == "lines"
