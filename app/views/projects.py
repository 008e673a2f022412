"""Projects: what the current project holds, what to do next, and the demo project."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.services import ServiceError
from app.services import corpus as corpus_service
from app.services import projects as project_service

st.title("Projects")


def demo_button(key: str) -> None:
    st.caption("New here? The demo builds a project from 2,127 BBC News articles in five "
               "topics (gold labels kept for evaluation only), ready to label.")
    if st.button("Create the BBC News demo project", key=key, icon=":material/science:"):
        bar = st.progress(0.0, text="Reading the articles…")
        try:
            with ui.session() as s:
                project, report = corpus_service.create_demo_project(
                    s, progress=lambda f, m: bar.progress(f, text=m)
                )
        except ServiceError as exc:
            ui.error(exc)
        else:
            st.session_state["flash"] = f"Demo project created. {report.summary()}"
            ui.switch_project(project.id)
            st.rerun()


if "flash" in st.session_state:
    st.success(ui.md(st.session_state.pop("flash")))

project = ui.project_sidebar()
if project is None:
    st.info("No project yet. A project holds one corpus, its label set, your labels and "
            "prompts. Create one in the sidebar (\"New project\"), or try the demo.",
            icon=":material/folder_open:")
    demo_button("demo_empty")
    st.stop()

with ui.session() as s:
    summary = project_service.summarize(s, project.id)
    all_projects = [project_service.summarize(s, p.id) for p in project_service.list_projects(s)]

st.subheader("Current project")
st.text(summary.name)
if summary.description:
    st.caption(ui.md(summary.description))
c1, c2, c3, c4 = st.columns(4)
c1.metric("Documents", f"{summary.documents:,}")
c2.metric("Labels in the set", summary.label_classes)
c3.metric("Labelled documents", summary.labels)
c4.metric("Prompt versions", summary.prompt_versions)

st.subheader("Next step")
if summary.documents == 0:
    st.info("No corpus yet: import one.", icon=":material/upload_file:")
    st.page_link("views/import_data.py", label="Import a corpus", icon=":material/upload_file:")
elif summary.label_classes < 2:
    st.info("Define at least two labels.", icon=":material/sell:")
    st.page_link("views/label_set.py", label="Define the label set", icon=":material/sell:")
elif summary.labels < 30:
    st.info(f"Label documents: {summary.labels} of about 30 so far.", icon=":material/edit_note:")
    st.page_link("views/labelling.py", label="Label documents", icon=":material/edit_note:")
elif summary.prompt_versions == 0:
    st.info("Design and save a prompt.", icon=":material/text_fields:")
    st.page_link("views/prompt.py", label="Design a prompt", icon=":material/text_fields:")
else:
    st.success("Data, labels and a prompt are ready for training.")

st.subheader("All projects")
st.dataframe(
    [{"project": p.name, "documents": p.documents, "labels": p.labels,
      "label set": p.label_classes, "prompts": p.prompt_versions} for p in all_projects],
    hide_index=True, width="stretch",
)
with st.expander("Demo project"):
    demo_button("demo")
