"""Export: a zip with the adapter, its config and a model card; optionally the merged model."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from app import ui
from app.services import ServiceError
from app.services import export as export_service

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
                              format_func=lambda i: f"Run #{i} · "
                              f"{Path(str((by_id[i].config or {}).get('model', ''))).name}")
        ui.show_run_in_url(run_id)
        run = by_id[run_id]
        try:
            folder = export_service.model_dir(s, run_id)
        except ServiceError as exc:
            ui.error(exc)
            return
        try:
            adapter_config = json.loads((folder / "adapter_config.json").read_text())
        except (OSError, ValueError):
            adapter_config = {}
        card = export_service.model_card(s, run, adapter_config)

    st.write("The zip holds `adapter_model.safetensors`, `adapter_config.json` and this "
             "model card (`README.md`). `PromptClassifier.from_pretrained(folder)` reloads it.")
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
        st.success(f"Export ready: {path.name} ({path.stat().st_size / 1e6:.1f} MB).")
        st.download_button("Download zip", data=path.read_bytes(), file_name=path.name,
                           mime="application/zip", key="export_download", type="primary")


main()
