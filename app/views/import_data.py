"""Import a corpus: upload, paste or point at a `datasets` folder; preview, pick columns,
import with a progress bar. The file is read by the project's one reader, checked whole
before the import and imported in chunks (bounded memory)."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.services import ServiceError
from app.services import corpus as corpus_service
from app.services import gold as gold_service

NONE = "(none)"
UPLOAD, PASTE, DATASET = "Upload a file", "Paste text", "A datasets folder or Hub id"

st.title("Import corpus")
project = ui.require_project()

if "import_report" in st.session_state:
    summary, warnings = st.session_state.pop("import_report")
    if warnings:  # imported, but maybe the wrong column: not a success to celebrate
        st.warning(ui.md(summary), icon=":material/warning:")
    else:
        st.success(ui.md(summary), icon=":material/check_circle:")
    for warning in warnings:
        st.warning(ui.md(warning), icon=":material/warning:")
    with ui.session() as s:
        offered = gold_service.missing_classes(s, project.id)
    st.page_link("views/label_set.py", icon=":material/arrow_forward:",
                 label="Next: define the labels" + (" (offered from the import's gold labels)"
                                                    if offered else ""))

with ui.session() as s:
    n_docs = corpus_service.document_count(s, project.id)
    batches = corpus_service.list_import_batches(s, project.id)
if n_docs:
    st.caption(f"This project has {n_docs:,} documents. New imports skip documents it "
               "already has.")
else:
    st.info("No corpus yet: import one. CSV, TSV, JSONL, JSON, TXT (one document per line) "
            f"or Parquet, up to {corpus_service.UPLOAD_LIMIT_MB} MB, or a Hugging Face "
            "`datasets` folder.",
            icon=":material/upload_file:")

if batches:
    with st.expander(f"Earlier imports ({len(batches)})"):
        st.dataframe(
            [{"file": b.filename, "format": b.file_format, "rows": b.rows_total,
              "imported": b.imported, "empty": b.skipped_empty, "duplicates": b.duplicates,
              "when": b.created_at} for b in batches],
            hide_index=True, width="stretch",
        )

source = st.radio("Source", [UPLOAD, PASTE, DATASET], horizontal=True, key="import_source")
data: bytes | str | None = None
filename, split = "", None
if source == UPLOAD:
    upload = st.file_uploader(
        "Corpus file", type=corpus_service.UPLOAD_TYPES,
        max_upload_size=corpus_service.UPLOAD_LIMIT_MB,
        key=f"import_file_{st.session_state.get('import_nonce', 0)}",  # new key = cleared
    )
    if upload is not None:
        data, filename = upload.getvalue(), upload.name
elif source == PASTE:
    fmt = st.selectbox("Format of the pasted text", ["txt", "csv", "tsv", "jsonl"],
                       key="paste_format",
                       format_func=lambda f: {"txt": "one document per line", "csv": "CSV",
                                              "tsv": "TSV", "jsonl": "JSONL"}[f])
    pasted = st.text_area("Text", height=200, key="paste_text")
    if pasted.strip():
        data, filename = pasted.encode("utf-8"), f"pasted.{fmt}"
else:
    folder = st.text_input(
        "Folder or Hub id", key="dataset_source",
        placeholder="/data/my_dataset  or  stanfordnlp/imdb",
        help="A folder written by `datasets` (`save_to_disk`) on the machine that runs this "
             "app, or a dataset id on the Hugging Face Hub (needs network access).",
    ).strip()
    if folder:
        splits_key = ("_splits", folder)
        if st.session_state.get("_splits", (None,))[0] != splits_key:
            try:
                with st.spinner("Opening the dataset…"):
                    st.session_state["_splits"] = (splits_key,
                                                   corpus_service.dataset_splits(folder))
            except ServiceError as exc:
                ui.error(exc)
                st.stop()
        splits = st.session_state["_splits"][1]
        if splits:
            split = st.selectbox("Split", splits, key="dataset_split")
        data, filename = folder, folder

encoding = "auto"
if source != DATASET:
    encoding = st.selectbox(
        "Encoding", corpus_service.ENCODINGS, key="import_encoding",
        help="auto: UTF-8, or UTF-16 when the file says so or looks like it. Pick cp1252 or "
             "latin-1 for old Excel exports.")
if data is None:
    st.stop()

marker = data if isinstance(data, str) else (len(data), hash(data[:65536]), hash(data[-65536:]))
cache_key = (filename, marker, encoding, split)
cached = st.session_state.get("_scanned")
if cached is None or cached[0] != cache_key:
    try:
        with st.spinner("Reading the file…"):
            table = corpus_service.open_table(data, filename, encoding=encoding, split=split)
            info = corpus_service.scan_table(table)
    except ServiceError as exc:
        st.session_state.pop("_scanned", None)
        ui.error(exc)
        st.stop()
    st.session_state["_scanned"] = (cache_key, info)
info = st.session_state["_scanned"][1]

st.subheader("Preview")
read_as = f" Read as {info.encoding.upper()}." if info.encoding else ""
st.caption(f"{info.rows:,} rows, {len(info.columns)} column(s).{read_as} First rows:")
st.dataframe(info.sample.head(10), hide_index=True, width="stretch")

columns = list(info.columns)
guess_text = corpus_service.guess_text_column(info.sample)
text_col = st.selectbox("Text column", columns, index=columns.index(guess_text),
                        key="col_text")
if (warning := corpus_service.text_column_warning(info.sample[text_col], text_col)):
    st.warning(ui.md(warning), icon=":material/warning:")
others = [NONE] + [c for c in columns if c != text_col]
text_b_col = st.selectbox("Second text column (pair tasks, e.g. NLI)", others, key="col_text_b")
guess_label = corpus_service.guess_label_column(info.sample)
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
        table = corpus_service.open_table(data, filename, encoding=encoding, split=split)
        with ui.session() as s:
            report = corpus_service.import_documents(
                s, project.id, table,
                text_column=text_col,
                text_b_column=None if text_b_col == NONE else text_b_col,
                label_column=None if label_col == NONE else label_col,
                labels_as_training=as_training,
                filename=filename if split is None else f"{filename}:{split}",
                file_format=info.file_format,
                rows_expected=info.rows,
                progress=lambda f, m: bar.progress(f, text=m),
            )
    except ServiceError as exc:
        bar.empty()
        ui.error(exc)
    else:
        st.session_state.pop("_scanned", None)
        st.session_state.pop("paste_text", None)
        st.session_state["import_nonce"] = st.session_state.get("import_nonce", 0) + 1
        st.session_state["import_report"] = (report.summary(), report.warnings)
        st.rerun()
