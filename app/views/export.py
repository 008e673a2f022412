"""Export: a zip with the model folder (list_engine + PEFT files) and a model card; optionally the
merged model and a push to the Hugging Face Hub."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import ui
from app.services import ServiceError, evaluation
from app.services import export as export_service
from app.services import predict as predict_service
from app.services import runs as run_service

EXPORT_KEY = "export_zip"


def main() -> None:
    project = ui.require_project()
    st.title("Export the model")
    with ui.session() as s:
        runs = export_service.exportable_runs(s, project.id)
        if not runs:
            st.info("No trained model yet: a training run that succeeds saves one.",
                    icon=":material/inventory_2:")
            return
        by_id = {r.id: r for r in runs}
        ui.remember_run("export_run", list(by_id), runs[0].id)
        run_id = st.selectbox("Trained run", list(by_id), key="export_run",
                              format_func=lambda i: f"{by_id[i].title} · "
                              f"{Path(str((by_id[i].config or {}).get('model', ''))).name}")
        ui.show_run_in_url(run_id)
        run = by_id[run_id]
        try:
            folder = export_service.model_dir(s, run_id)
        except ServiceError as exc:
            ui.error(exc)
            return
        card = export_service.model_card(s, run, export_service.saved_config(folder))
        kept = evaluation.kept_round_text(run_service.round_metrics(s, run_id),
                                          (run.config or {}).get("list_config") or {})
    if kept:
        st.info(kept, icon=":material/flag:")

    st.write("The zip holds the model folder: `list_prompt.json` + `list_weights.safetensors` "
             "(`PromptClassifier.from_pretrained(folder)` reloads it), the same model as a PEFT "
             "LoRA adapter (`adapter_config.json` + `adapter_model.safetensors`, loaded with "
             "`PeftModel.from_pretrained`) and this model card (`README.md`).")
    with st.expander("Model card (README.md)", expanded=False):
        st.code(card, language="markdown")  # shown as source: it quotes user text
    classic = (run.config or {}).get("mode") == "classic"
    merged = st.checkbox(
        "Also include the merged full model (adapters folded into the weights: runs at the "
        "speed of the plain model, but is as large as the base model)", key="export_merged",
        disabled=classic, help="Not available for classic mode." if classic else None)
    if st.button("Build export", type="primary", key="export_build"):
        with st.spinner("Writing the zip…"):
            try:
                with ui.session() as s:
                    result = export_service.build_export(s, run_id, merged=merged)
            except ServiceError as exc:
                ui.error(exc)
                return
            except Exception as exc:  # noqa: BLE001 - e.g. merging fails: tell the user
                ui.error(f"The export failed: {exc}")
                return
        st.session_state[EXPORT_KEY] = (run_id, str(result.path))
    pending = st.session_state.get(EXPORT_KEY)
    if pending and pending[0] == run_id and Path(pending[1]).is_file():
        path = Path(pending[1])
        # named by the run's title, as the page shows it (the stored zip is named by its id)
        merged_part = "-merged" if path.stem.endswith("-merged") else ""
        name = f"model-{predict_service.file_stem(run)}{merged_part}"
        st.success(f"Export ready: {name}.zip ({path.stat().st_size / 1e6:.1f} MB).")
        st.download_button("Download zip", data=path.read_bytes(), file_name=f"{name}.zip",
                           mime="application/zip", key="export_download", type="primary")
        push_form(path)


def push_form(zip_path: Path) -> None:
    """Optional: the same folder to a Hub model repository. The zip above stays available
    whatever the push does."""
    with st.expander("Push to the Hugging Face Hub (optional)"):
        with st.form("export_push_form"):
            repo_id = st.text_input("Repository", placeholder="your-name/reviews-classifier",
                                    key="export_push_repo")
            token = st.text_input("Access token (write)", type="password",
                                  key="export_push_token",
                                  help="Not stored. Empty: the token saved by `hf auth login`.")
            private = st.checkbox("Private repository", value=True, key="export_push_private")
            pushed = st.form_submit_button("Push", key="export_push")
        if pushed:
            with st.spinner("Uploading…"):
                try:
                    url = export_service.push_export(zip_path, repo_id, token or None, private)
                except ServiceError as exc:
                    ui.error(exc)
                    return
            st.success(f"Pushed to {url}")


main()
