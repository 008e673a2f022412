"""Import a corpus: upload (or paste), preview, pick columns, import with a progress bar."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.services import ServiceError
from app.services import corpus as corpus_service

NONE = "(none)"

st.title("Import corpus")
project = ui.require_project()

if "import_report" in st.session_state:
    st.success(ui.md(st.session_state.pop("import_report")), icon=":material/check_circle:")

with ui.session() as s:
    n_docs = corpus_service.document_count(s, project.id)
    batches = corpus_service.list_import_batches(s, project.id)
if n_docs:
    st.caption(f"This project has {n_docs:,} documents. New imports skip documents it "
               "already has.")
else:
    st.info("No corpus yet: import one. CSV, TSV, JSONL, TXT (one document per line) or "
            "Parquet, up to 200 MB.", icon=":material/upload_file:")

if batches:
    with st.expander(f"Earlier imports ({len(batches)})"):
        st.dataframe(
            [{"file": b.filename, "format": b.file_format, "rows": b.rows_total,
              "imported": b.imported, "empty": b.skipped_empty, "duplicates": b.duplicates,
              "when": b.created_at} for b in batches],
            hide_index=True, width="stretch",
        )

source = st.radio("Source", ["Upload a file", "Paste text"], horizontal=True, key="import_source")
data: bytes | None = None
filename = ""
if source == "Upload a file":
    upload = st.file_uploader(
        "Corpus file", type=["csv", "tsv", "tab", "jsonl", "ndjson", "txt", "parquet"],
        key=f"import_file_{st.session_state.get('import_nonce', 0)}",  # new key = cleared
    )
    if upload is not None:
        data, filename = upload.getvalue(), upload.name
else:
    fmt = st.selectbox("Format of the pasted text", ["txt", "csv", "tsv", "jsonl"],
                       key="paste_format",
                       format_func=lambda f: {"txt": "one document per line", "csv": "CSV",
                                              "tsv": "TSV", "jsonl": "JSONL"}[f])
    pasted = st.text_area("Text", height=200, key="paste_text")
    if pasted.strip():
        data, filename = pasted.encode("utf-8"), f"pasted.{fmt}"

encoding = st.selectbox("Encoding", corpus_service.ENCODINGS, key="import_encoding",
                        help="UTF-8 for almost every file; cp1252/latin-1 for old Excel exports.")
if data is None:
    st.stop()

cache_key = (filename, len(data), hash(data[:65536]), hash(data[-65536:]), encoding)
cached = st.session_state.get("_parsed")
if cached is None or cached[0] != cache_key:
    try:
        with st.spinner("Reading the file…"):
            df = corpus_service.read_table(data, filename, encoding=encoding)
    except ServiceError as exc:
        st.session_state.pop("_parsed", None)
        ui.error(exc)
        st.stop()
    st.session_state["_parsed"] = (cache_key, df)
df = st.session_state["_parsed"][1]

st.subheader("Preview")
st.caption(f"{len(df):,} rows, {len(df.columns)} column(s). First rows:")
st.dataframe(df.head(10), hide_index=True, width="stretch")

columns = list(df.columns)
guess_text = corpus_service.guess_text_column(df)
text_col = st.selectbox("Text column", columns, index=columns.index(guess_text),
                        key="col_text")
others = [NONE] + [c for c in columns if c != text_col]
text_b_col = st.selectbox("Second text column (pair tasks, e.g. NLI)", others, key="col_text_b")
guess_label = corpus_service.guess_label_column(df)
label_options = [NONE] + [c for c in columns if c not in (text_col, text_b_col)]
label_col = st.selectbox(
    "Label column (optional)", label_options,
    index=label_options.index(guess_label) if guess_label in label_options else 0,
    key="col_label",
)
as_training = False
if label_col != NONE:
    use = st.radio(
        "Use these labels as",
        ["Gold labels for evaluation only (recommended)", "Training labels"],
        key="label_use",
        help="Gold labels measure accuracy and are never trained on. Training labels count "
             "as if you had labelled those documents yourself.",
    )
    as_training = use == "Training labels"
    if as_training:
        st.warning("Every labelled row will become a training label. LiST is meant for ~30 "
                   "labels; with many more, plain fine-tuning may be the better tool.")

if st.button("Import", type="primary", key="do_import", icon=":material/download:"):
    bar = st.progress(0.0, text="Importing…")
    try:
        with ui.session() as s:
            report = corpus_service.import_documents(
                s, project.id, df,
                text_column=text_col,
                text_b_column=None if text_b_col == NONE else text_b_col,
                label_column=None if label_col == NONE else label_col,
                labels_as_training=as_training,
                filename=filename,
                file_format=corpus_service.detect_format(filename),
                progress=lambda f, m: bar.progress(f, text=m),
            )
    except ServiceError as exc:
        bar.empty()
        ui.error(exc)
    else:
        st.session_state.pop("_parsed", None)
        st.session_state.pop("paste_text", None)
        st.session_state["import_nonce"] = st.session_state.get("import_nonce", 0) + 1
        st.session_state["import_report"] = report.summary()
        st.rerun()

