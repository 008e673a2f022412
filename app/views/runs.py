"""Runs: every training and predict run of the project with its status; cancel, retry,
resume; the error of a failed run."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import ui
from app.services import ServiceError, evaluation, run_table
from app.services import runs as run_service
from app.services.training import format_duration, fresh_workers

REFRESH_SECONDS = 3.0
PROGRESS_RUN_KEY = "progress_run_id"


def _table(rows) -> pd.DataFrame:
    return pd.DataFrame({
        "run": [r.title for r in rows],
        "status": [f"{run_service.STATUS_ICONS.get(r.status, '')} {r.status}" for r in rows],
        "progress": [r.progress for r in rows],
        "where": [run_service.progress_text(r) if not r.finished else "" for r in rows],
        "accuracy": [r.accuracy for r in rows],
        "device": [r.device or "" for r in rows],
        "duration": [format_duration(r.duration_s) for r in rows],
        "attempts": [r.attempts for r in rows],
        "created (UTC)": [r.created_at for r in rows],
    })


CONFIRM_CANCEL = "runs_confirm_cancel"
OPEN_PROGRESS = "runs_open_progress"  # set by the Live progress button, acted on by main()


def _ask_cancel(run_id: int | None) -> None:
    st.session_state[CONFIRM_CANCEL] = run_id


def _act(action: str, run_id: int) -> None:
    st.session_state.pop(CONFIRM_CANCEL, None)
    fn = {"cancel": run_service.cancel_run, "retry": run_service.retry_run,
          "resume": run_service.resume_run}[action]
    try:
        with ui.session() as s:
            run = fn(s, run_id)
    except ServiceError as exc:
        st.session_state["runs_message"] = ("error", str(exc))
    else:
        st.session_state["runs_message"] = ("ok", f"{run.title}: {action} done, now {run.status}.")


def _open_progress(run_id: int) -> None:
    st.session_state[PROGRESS_RUN_KEY] = run_id
    st.session_state[OPEN_PROGRESS] = True


def _switch_to_progress() -> None:
    """Open Live progress if its button was pressed. Called by `main`, outside the live
    fragment: a page switch from inside an auto-refreshing fragment could leave the browser
    a blank page ("Bad delta path index")."""
    if not st.session_state.pop(OPEN_PROGRESS, False):
        return
    try:
        st.switch_page("views/progress.py")
    except Exception:  # noqa: BLE001 - outside the router (tests) there is no page to switch to
        st.info("Open the Live progress page to follow it.")


def _run_details(s, row) -> None:
    title = f"{run_service.STATUS_ICONS.get(row.status, '')} {row.title}: {row.status}"
    with st.expander(title, expanded=row.status in ("failed", "running")):
        st.progress(min(max(row.progress, 0.0), 1.0), text=ui.md(run_service.progress_text(row)))
        st.caption(
            f"Device: {row.device or '-'} · duration {format_duration(row.duration_s)} · "
            f"attempts {row.attempts}"
            + (f" · ETA {format_duration(row.eta_s)}" if row.eta_s is not None else "")
        )
        if row.error:
            st.error("Error of the last attempt:" if row.status != "failed" else "The run failed:",
                     icon=":material/error:")
            st.code(row.error, language=None)
        actions = run_service.allowed_actions(s, row)
        if "cancel" in actions and st.session_state.get(CONFIRM_CANCEL) == row.id:
            st.warning(f"Cancel {row.title}? "
                       + ("It stops at its next step; its finished rounds are kept, and "
                          "Resume continues after the last one." if row.status == "running"
                          else "It has not started; it leaves the queue."),
                       icon=":material/warning:")
            y, n, _ = st.columns([1, 1, 2])
            y.button("Yes, cancel", key=f"cancel_yes_{row.id}", type="primary",
                     on_click=_act, args=("cancel", row.id))
            n.button("Keep it", key=f"cancel_no_{row.id}", on_click=_ask_cancel, args=(None,))
            actions = [a for a in actions if a != "cancel"]
        cols = st.columns(4)
        for col, action in zip(cols, actions, strict=False):
            ask = action == "cancel"
            col.button(action.capitalize(), key=f"{action}_{row.id}",
                       on_click=_ask_cancel if ask else _act,
                       args=(row.id,) if ask else (action, row.id),
                       help={"cancel": "Stop the run (a running run stops at its next step).",
                             "retry": "Run it again from scratch.",
                             "resume": "Continue after its last finished round."}[action])
        if row.kind == "train":
            cols[3].button("Live progress", key=f"open_{row.id}", on_click=_open_progress,
                           args=(row.id,))


def runs_view(project_id: int) -> None:
    with ui.session() as s:
        rows = run_service.list_runs(s, project_id)
        workers = fresh_workers(s)
        message = st.session_state.pop("runs_message", None)
        if message:
            (st.success if message[0] == "ok" else ui.error)(message[1])
        if workers:
            st.caption("Workers: " + ", ".join(f"{w.host} ({w.device})" for w in workers))
        else:
            st.warning("No worker is running: queued runs wait until one starts. Start one with "
                       "`python -m worker` (or `./scripts/run`).", icon=":material/warning:")
        if not rows:
            st.info("No run yet: start one on the Train page.", icon=":material/model_training:")
            return
        st.dataframe(
            _table(rows), hide_index=True,
            column_config={
                "progress": st.column_config.ProgressColumn("progress", min_value=0.0,
                                                            max_value=1.0, format="percent"),
                "accuracy": st.column_config.NumberColumn("accuracy", format="percent"),
            },
        )
        for row in rows:
            _run_details(s, row)


@st.fragment(run_every=REFRESH_SECONDS)
def live_runs_view(project_id: int) -> None:
    if st.session_state.get(OPEN_PROGRESS):  # a button in this fragment: switch from main()
        st.rerun(scope="app")
    runs_view(project_id)


COMPARE_PAIR = "compare_pair"  # read by the Live progress page's comparison


def training_table(project_id: int) -> None:
    """Every training run in one sortable table; pick two to compare."""
    with ui.session() as s:
        table = run_table.training_runs_table(s, project_id)
    if table.empty:
        return
    st.subheader("All training runs")
    st.caption("Click a column header to sort. Accuracy and macro-F1 are those of the round "
               "each model kept, with the 95 % interval of the accuracy and the number of "
               "evaluation examples; 'setting' columns are the settings that differ between "
               "runs.")
    st.dataframe(table, hide_index=True, key="runs_table",
                 column_order=[c for c in table.columns if c != "id"], column_config={
        "run": st.column_config.NumberColumn("run", format="#%d"),
        "accuracy": st.column_config.NumberColumn("accuracy", format="percent"),
        "macro-F1": st.column_config.NumberColumn("macro-F1", format="percent"),
        "time (s)": st.column_config.NumberColumn("time (s)", format="%.0f"),
    })
    ids = [int(i) for i in table["id"]]
    if len(ids) < 2:
        return
    name = {int(i): f"Run #{n}" for i, n in zip(table["id"], table["run"], strict=True)}
    pair = st.multiselect("Pick two runs to compare", ids, max_selections=2, key="runs_pick",
                          format_func=name.get)
    if len(pair) == 2:
        rows = table.set_index("id")

        def score(i):  # (accuracy, n) or Nones: a cell without evaluation is NaN
            acc, n = rows.loc[i, "accuracy"], rows.loc[i, "n eval"]
            return (None, None) if pd.isna(acc) or pd.isna(n) else (float(acc), int(n))

        (acc_a, n_a), (acc_b, n_b) = score(pair[0]), score(pair[1])
        verdict = evaluation.compare_text(acc_a, n_a, acc_b, n_b, name[pair[0]], name[pair[1]])
        if verdict:
            (st.warning if "cannot be told apart" in verdict else st.info)(verdict)
        if st.button("Compare them on Live progress", key="runs_compare"):
            st.session_state[COMPARE_PAIR] = tuple(pair)
            try:
                st.switch_page("views/progress.py")
            except Exception:  # noqa: BLE001 - outside the router (tests) there is no page to switch to
                st.info("Open the Live progress page to see them side by side.")


def main() -> None:
    project = ui.require_project()
    _switch_to_progress()
    st.title("Runs")
    with ui.session() as s:
        active = any(not r.finished for r in run_service.list_runs(s, project.id))
    if active:
        live_runs_view(project.id)
    else:
        runs_view(project.id)
    training_table(project.id)


main()
