"""Predict: class probabilities of a typed text; label the corpus or an uploaded file in the
background (a predict run) and download the CSV."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import ui
from app.services import ServiceError, confidence, evaluation
from app.services import export as export_service
from app.services import predict as predict_service
from app.services import runs as run_service
from app.services.corpus import UPLOAD_LIMIT_MB, UPLOAD_TYPES
from db.models import FINISHED_STATUSES

REFRESH_SECONDS = 2.0


@st.cache_resource(max_entries=2, show_spinner="Loading the trained model…")
def _classifier(path: str):
    return predict_service.load_classifier(path)


def _single_text(model_path: Path, run_id: int) -> None:
    st.subheader("Try a text")
    text = st.text_area("Text", key="predict_text", height=150,
                        placeholder="Type or paste a document…")
    if st.button("Predict", type="primary", key="predict_one"):
        try:
            df = predict_service.probabilities(_classifier(str(model_path)), text)
        except ServiceError as exc:
            ui.error(exc)
            return
        top = df.iloc[0]
        st.metric("Predicted label", str(top["label"]))
        st.caption(f"with probability {100 * top['probability']:.1f} %")
        with ui.session() as s:
            note = confidence.confidence_note(s, run_id, float(top["probability"]))
        if note:
            st.caption(note)
        st.dataframe(df, hide_index=True, column_config={
            "probability": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                           format="percent")})


def _start_background(project_id: int, run_id: int) -> None:
    st.subheader("Predict many documents in the background")
    source = st.radio("Documents", ["corpus", "file"], horizontal=True, key="predict_source",
                      format_func={"corpus": "The whole corpus of this project",
                                   "file": "An uploaded file (CSV, TSV, JSONL, JSON, TXT, "
                                           "Parquet)"}.get)
    text_column = "text"
    upload = None
    if source == "file":
        upload = st.file_uploader("File", type=UPLOAD_TYPES, key="predict_upload",
                                  max_upload_size=UPLOAD_LIMIT_MB)
        if upload is not None:
            try:
                df = predict_service.read_upload(upload.getvalue(), upload.name)
            except ServiceError as exc:
                ui.error(exc)
                return
            columns = [str(c) for c in df.columns]
            text_column = st.selectbox("Text column", columns, key="predict_column",
                                       index=columns.index("text") if "text" in columns else 0)
            st.caption(f"{len(df):,} rows.")
    if st.button("Start predicting", key="predict_start",
                 disabled=source == "file" and upload is None):
        try:
            with ui.session() as s:
                path = "corpus"
                if source == "file":
                    path = str(predict_service.save_upload(project_id, upload.getvalue(),
                                                           upload.name, text_column))
                run = predict_service.start_predict(s, project_id, run_id, input=path,
                                                    text_column=text_column)
        except ServiceError as exc:
            ui.error(exc)
        else:
            st.success(f"{run.title} queued.")


def _predict_runs(project_id: int) -> bool:
    """The predict runs with progress bars and downloads; True while one is active."""
    active = False
    with ui.session() as s:
        runs = predict_service.predict_runs(s, project_id)
        if not runs:
            return False
        st.subheader("Predict runs")
        for run in runs[:10]:
            cfg = run.config or {}
            what = "corpus" if cfg.get("input") == "corpus" else Path(str(cfg.get("input"))).name
            st.text(f"{run.title}: {what} with the model of "
                    f"{run_service.title_of(s, cfg.get('source_run_id'))} "
                    f"· {run.status}")
            if run.status not in FINISHED_STATUSES:
                active = True
                st.progress(min(max(float(run.progress or 0), 0.0), 1.0),
                            text=ui.md(run_service.progress_text(run)))
            elif run.status == "failed" and run.error:
                st.code(run.error, language=None)
            path = predict_service.predictions_file(s, run.id)
            if path is not None:
                name = f"predictions-{predict_service.file_stem(run)}.csv"  # as titled
                st.download_button(f"Download {run.title.lower()} (CSV)", data=path.read_bytes(),
                                   file_name=name, mime="text/csv", key=f"dl_pred_{run.id}")
    return active


@st.fragment(run_every=REFRESH_SECONDS)
def _live_predict_runs(project_id: int) -> None:
    if not _predict_runs(project_id):
        st.rerun()


def main() -> None:
    project = ui.require_project()
    st.title("Predict")
    with ui.session() as s:
        runs = export_service.exportable_runs(s, project.id)
        if not runs:
            st.info("No trained model yet: a training run that succeeds saves one.",
                    icon=":material/model_training:")
            return
        by_id = {r.id: r for r in runs}
        ui.remember_run("predict_run", list(by_id), runs[0].id)
        run_id = st.selectbox("Model of run", list(by_id), key="predict_run",
                              format_func=lambda i: f"{by_id[i].title} · "
                              f"{Path(str((by_id[i].config or {}).get('model', ''))).name}")
        ui.show_run_in_url(run_id)
        try:
            model_path = export_service.model_dir(s, run_id)
        except ServiceError as exc:
            ui.error(exc)
            return
        kept = evaluation.kept_round_text(run_service.round_metrics(s, run_id),
                                          (by_id[run_id].config or {}).get("list_config") or {})
    if kept:
        st.caption(kept)
    _single_text(model_path, run_id)
    st.divider()
    _start_background(project.id, run_id)
    with ui.session() as s:  # after a possible start: a new run makes the list live
        active = any(r.status not in FINISHED_STATUSES
                     for r in predict_service.predict_runs(s, project.id))
    if active:
        _live_predict_runs(project.id)
    else:
        _predict_runs(project.id)


main()
