"""Live progress of a training run (auto-refreshing fragment) and a side-by-side comparison."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from app import charts, ui
from app.services import evaluation, round_story
from app.services import runs as run_service
from app.services.training import format_duration
from db.models import CANCELLING, FINISHED_STATUSES, RUNNING

WATCH_SECONDS = 4.0
PROGRESS_RUN_KEY = "progress_run_id"
# (run id, the charts' signature, the refresh intervals) when the page was last drawn
CHARTS_DRAWN_KEY = "progress_charts_drawn"


def _run_label(rows_by_id: dict, run_id: int) -> str:
    """Stable while the run progresses (the selectbox is outside the live fragment)."""
    r = rows_by_id[run_id]
    model = Path(r.model).name if r.model else ""
    return f"{r.title} · {model} · started {r.created_at:%Y-%m-%d %H:%M} UTC"


def _header(s, run) -> None:
    row_status = f"{run_service.STATUS_ICONS.get(run.status, '')} {run.status}"
    st.progress(min(max(float(run.progress or 0.0), 0.0), 1.0),
                text=ui.md(run_service.progress_text(run)))
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Status", row_status)
    c2.metric("Elapsed", format_duration(run_service.duration_s(run)))
    eta = run_service.eta_s(s, run)
    measuring = eta is None and run.status == "running"
    c3.metric("Time left (ETA)", format_duration(eta) if eta is not None else
              ("measuring…" if measuring else "-"),
              help="From the step times this run has measured so far, phase by phase.")
    c4.metric("Device", run.device or "-")
    if run.status == "failed" and run.error:
        st.error("The run failed. The error:", icon=":material/error:")
        st.code(run.error, language=None)
    elif run.status in ("running", "cancelling"):
        from db import queries

        p = queries.run_progress(s, run.id)
        if p is not None and not p.heartbeat_fresh:
            st.warning("The worker running this run has gone silent (no heartbeat). If it "
                       "died, the run goes back to the queue and resumes from its last "
                       "finished round when a worker is running.", icon=":material/warning:")
    elif run.status == "queued":
        st.info("Waiting for a worker to pick this run up. If nothing happens, start one with "
                "`python -m worker`.", icon=":material/hourglass_empty:")


def _charts(s, run, curves_every: float | None = None) -> None:
    """Everything below the header. `curves_every`: a live view, whose loss and meta-weight
    curves redraw on their own every that many seconds while the run trains."""
    metrics = run_service.round_metrics(s, run.id)
    choices = run_service.model_choices(metrics)
    if choices:
        st.caption(choices)
    # A finished run shows the round its model kept; a running one its latest evaluation.
    kept = evaluation.kept_round(metrics)
    latest = kept or next((m for m in reversed(metrics) if m["accuracy"] is not None), None)
    measured_on = run_service.evaluation_text(run)
    if latest and measured_on:
        st.caption(ui.md(measured_on))
    if latest:
        rep = evaluation.report(latest)
        which = charts.round_name(latest["round"])
        c1, c2, c3 = st.columns(3)
        c1.metric("Accuracy", f"{100 * latest['accuracy']:.1f} %",
                  help=f"after {which}" + (" (the round the model kept)" if kept else ""))
        _interval_caption(c1, rep["accuracy_interval"], rep["n"], "Wilson")
        if latest["macro_f1"] is not None:
            c2.metric("Macro-F1", f"{100 * latest['macro_f1']:.1f} %")
            _interval_caption(c2, rep["macro_f1_interval"], rep["n"], "bootstrap")
        if latest["pseudo_label_accuracy"] is not None:
            c3.metric("Pseudo-label accuracy", f"{100 * latest['pseudo_label_accuracy']:.1f} %")
        if rep["warning"]:
            st.warning(rep["warning"], icon=":material/warning:")
    elif (run.config or {}).get("eval_source") == "none":
        st.caption("This run has no evaluation set: accuracy is not measured.")
    left, right = st.columns(2)
    left.plotly_chart(charts.metrics_figure(metrics), key=f"metrics_{run.id}")
    pseudo_acc = run_service.pseudo_label_accuracy(s, run.id)
    note = "" if any(r["accuracy"] is not None for r in pseudo_acc) else \
        run_service.pseudo_accuracy_note(s, run)
    right.plotly_chart(charts.pseudo_accuracy_figure(pseudo_acc, empty_note=note),
                       key=f"pseudo_acc_{run.id}")
    if curves_every and run.status in (RUNNING, CANCELLING):
        st.fragment(_live_curves, run_every=curves_every)(run.id)  # on their own timer
    else:
        _curves(s, run)
    left, right = st.columns(2)
    left.plotly_chart(charts.class_distribution_figure(run_service.class_distribution(s, run)),
                      key=f"classes_{run.id}")
    right.plotly_chart(charts.confusion_figure(run_service.latest_confusion(s, run.id)),
                       key=f"confusion_{run.id}")
    _rounds_view(metrics)
    if latest:
        _trust_view(run, latest, kept is not None)


def _curves(s, run) -> None:
    """The training loss and the meta weights: what grows while a round trains."""
    left, right = st.columns(2)
    left.plotly_chart(charts.loss_figure(run_service.step_losses(s, run.id)), key=f"loss_{run.id}")
    right.plotly_chart(charts.weights_figure(run_service.meta_weights(s, run.id)),
                       key=f"weights_{run.id}")


def _live_curves(run_id: int) -> None:
    """The loss curve and the meta weights of a training run, as a fragment that reruns on
    a timer (a loss is logged about every second, meta weights every few: the rest of the
    page is not redrawn for them)."""
    with ui.session() as s:
        _curves(s, run_service.get_run(s, run_id))


def _rounds_view(metrics: list[dict]) -> None:
    """What each self-training round did, in words (the model card says the same)."""
    lines = round_story.round_lines(metrics)
    if len(lines) < 2:  # the teacher alone: no round to describe yet
        return
    st.subheader("What the rounds did")
    st.markdown("\n".join(f"- {ui.md(line)}" for line in lines))
    text = round_story.verdict(metrics)
    if text:
        st.caption(ui.md(text))


def _interval_caption(col, interval, n, method: str) -> None:
    if interval is not None:
        col.caption(f"95 % interval {100 * interval[0]:.0f}–{100 * interval[1]:.0f} % "
                    f"({method}, {n} evaluation examples)")


def _trust_view(run, metric: dict, kept: bool) -> None:
    """Per-class precision/recall/F1 and the reliability diagram of the shown round."""
    rep = evaluation.report(metric)
    which = charts.round_name(metric["round"])
    st.subheader("Per class and calibration")
    st.caption(f"Evaluation of {which}" + (", the round the saved model is." if kept else
                                           " (the latest evaluated round)."))
    left, right = st.columns(2)
    if rep["per_class"]:
        left.dataframe(pd.DataFrame(rep["per_class"]), hide_index=True, key=f"per_class_{run.id}",
                       column_config={k: st.column_config.NumberColumn(k, format="percent")
                                      for k in ("precision", "recall", "f1")})
        left.caption("Support = evaluation examples of the class; a class with a handful has "
                     "precision and recall that move by a lot with each example.")
    right.plotly_chart(charts.reliability_figure(rep["bins"], rep["ece"]),
                       key=f"reliability_{run.id}")
    if rep["ece"] is not None:
        right.caption("Points on the diagonal: when the model says 80 %, it is right 80 % of the "
                      f"time. ECE (expected calibration error) {100 * rep['ece']:.1f} %: the "
                      "average gap, weighted by how many examples each bin holds.")


def render_run(run_id: int, live: bool = False) -> None:
    """The run's header and charts. `live` (a run not finished): the header refreshes by
    itself (`_live_header`), the loss and meta-weight curves on their own slower timer
    (`_live_curves`), and the other charts only when what they show changed (the header
    reruns the page then)."""
    with ui.session() as s:
        run = run_service.get_run(s, run_id)
        every = None
        if live:
            every = run_service.live_refresh_seconds(run)
            # What the charts are drawn from, kept before they are drawn: data written
            # while they are drawn only makes the header redraw them once more.
            st.session_state[CHARTS_DRAWN_KEY] = (run_id, run_service.charts_signature(s, run),
                                                  every)
            st.fragment(_live_header, run_every=every[0])(run_id)
            st.caption(f"Updates itself every {every[0]:g} s; the loss and meta-weight charts "
                       f"every {every[1]:g} s, the other charts when the run's status or round "
                       "changes, a round is evaluated or pseudo-labels are made.")
        else:
            _header(s, run)
        _charts(s, run, curves_every=every[1] if every else None)


def _live_header(run_id: int) -> None:
    """The header of a live view, as a fragment that reruns on a timer: the progress bar,
    status, elapsed time and ETA, nothing else (the whole page redrawn every 2 s cost half
    a core, issue 26). It reruns the whole page when the other charts are out of date
    (`run_service.charts_signature`: a new round, status, evaluation, pseudo-labels or
    label), when the refresh intervals change (the run is no longer young), and when the
    run ends, which turns the view static."""
    with ui.session() as s:
        run = run_service.get_run(s, run_id)
        _header(s, run)
        now = (run_id, run_service.charts_signature(s, run), run_service.live_refresh_seconds(run))
    if run.status in FINISHED_STATUSES or st.session_state.get(CHARTS_DRAWN_KEY) != now:
        st.rerun()


@st.fragment(run_every=WATCH_SECONDS)
def watch_runs(project_id: int, signature: tuple) -> None:
    """While the page shows finished runs only, notice a run started, resumed or retried
    elsewhere (another tab, the Runs page) and redraw the page for it."""
    with ui.session() as s:
        now = run_service.runs_signature(run_service.list_runs(s, project_id, kind="train"))
    if now != signature:
        st.rerun()


def compare_view(project_id: int, rows_by_id: dict) -> None:
    st.subheader("Compare two runs")
    trained = [i for i, r in rows_by_id.items() if r.kind == "train"]
    if len(trained) < 2:
        st.caption("Train a second run to compare two side by side.")
        return
    first, second = 0, 1
    pair = st.session_state.pop("compare_pair", None)  # picked in the Runs page's table
    if pair and all(i in trained for i in pair):
        first, second = trained.index(pair[0]), trained.index(pair[1])
        for key in ("cmp_a", "cmp_b"):
            st.session_state.pop(key, None)
    c1, c2 = st.columns(2)
    a = c1.selectbox("Run A", trained, index=first, key="cmp_a",
                     format_func=lambda i: _run_label(rows_by_id, i))
    b = c2.selectbox("Run B", trained, index=second, key="cmp_b",
                     format_func=lambda i: _run_label(rows_by_id, i))
    with ui.session() as s:
        name = {rid: rows_by_id[rid].title for rid in (a, b)}
        series = {name[a]: run_service.round_metrics(s, a), name[b]: run_service.round_metrics(s, b)}
        st.plotly_chart(charts.compare_figure(series, "accuracy", "Accuracy per round"),
                        key="cmp_acc")
        verdict = _compare_verdict(series[name[a]], series[name[b]], name[a], name[b])
        if verdict:
            (st.warning if "cannot be told apart" in verdict else st.info)(verdict)
        for col, rid in ((c1, a), (c2, b)):
            run = run_service.get_run(s, rid)
            cfg = run.config or {}
            lc = cfg.get("list_config") or {}
            with col:
                st.caption(
                    f"{name[rid]}: {run.status}, {cfg.get('mode', '-')} mode, preset "
                    f"{cfg.get('preset') or '-'}, {lc.get('rounds', '-')} rounds, seed "
                    f"{lc.get('seed', '-')}, duration {format_duration(run_service.duration_s(run))}"
                )
                st.text(f"Model: {cfg.get('model', '-')}")
                st.plotly_chart(charts.metrics_figure(series[name[rid]], name[rid]),
                                key=f"cmp_metrics_{rid}")
                st.plotly_chart(charts.confusion_figure(run_service.latest_confusion(s, rid)),
                                key=f"cmp_conf_{rid}")


def _compare_verdict(metrics_a: list[dict], metrics_b: list[dict], a: str, b: str) -> str | None:
    """Whether the evaluation can rank the two runs (by the rounds their models kept)."""
    def shown(metrics):
        m = evaluation.kept_round(metrics) or next(
            (m for m in reversed(metrics) if m["accuracy"] is not None), None)
        return (m["accuracy"], (m["details"] or {}).get("n")) if m else (None, None)

    (acc_a, n_a), (acc_b, n_b) = shown(metrics_a), shown(metrics_b)
    return evaluation.compare_text(acc_a, n_a, acc_b, n_b, a, b)


def main() -> None:
    project = ui.require_project()
    st.title("Live progress")
    with ui.session() as s:
        rows = run_service.list_runs(s, project.id, kind="train")
    if not rows:
        st.info("No training run yet: start one on the Train page.", icon=":material/model_training:")
        return
    rows_by_id = {r.id: r for r in rows}
    ids = list(rows_by_id)
    active = [r.id for r in rows if not r.finished]
    ui.remember_run(PROGRESS_RUN_KEY, ids, active[0] if active else ids[0])
    run_id = st.selectbox("Run", ids, format_func=lambda i: _run_label(rows_by_id, i),
                          key=PROGRESS_RUN_KEY)
    ui.show_run_in_url(run_id)
    if rows_by_id[run_id].finished:
        render_run(run_id)
        watch_runs(project.id, run_service.runs_signature(rows))
    else:
        render_run(run_id, live=True)
    st.divider()
    compare_view(project.id, rows_by_id)


if __name__ == "__main__":  # as Streamlit runs a page; a test may load the functions alone
    main()
