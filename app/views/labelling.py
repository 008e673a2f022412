"""Labelling: one document at a time, a button (and a key) per label, counts against the
target, and which document comes next (random, diverse, keyword)."""

from __future__ import annotations

import functools
import uuid
from pathlib import Path

import streamlit as st

from app import ui
from app.highlight import highlighted_block
from app.services import ServiceError, hotkeys, suggestions
from app.services import corpus as corpus_service
from app.services import labelling as label_service
from app.services import prompts as prompt_service
from app.services import runs as run_service
from app.services import users as user_service
from app.services.training import fresh_workers
from db import label_export
from db.models import FINISHED_STATUSES

EMBED_REFRESH_SECONDS = 2.0

st.title("Labelling")
project = ui.require_project()
pid = project.id

with ui.session() as s:
    n_docs = corpus_service.document_count(s, pid)
    classes = label_service.list_label_classes(s, pid)
if n_docs == 0:
    st.info("No corpus yet: import one first.", icon=":material/upload_file:")
    st.page_link("views/import_data.py", label="Import a corpus", icon=":material/upload_file:")
    st.stop()
if len(classes) < 2:
    st.info("Define at least two labels before labelling.", icon=":material/sell:")
    st.page_link("views/label_set.py", label="Define the label set", icon=":material/sell:")
    st.stop()

# Per-project navigation state: the documents shown in this session, where we are, skips.
nav = st.session_state.setdefault("labelling_nav", {}).setdefault(
    pid, {"history": [], "pos": 0, "skipped": []}
)


def flash(message: str, kind: str = "info") -> None:
    st.session_state["labelling_flash"] = (kind, message)


def go_next() -> None:
    nav["pos"] += 1


def on_label(document_id: int, class_id: int, class_name: str) -> None:
    try:
        with ui.session() as s:
            label_service.set_label(s, pid, document_id, class_id)
    except ServiceError as exc:  # e.g. a viewer's role
        flash(str(exc))
        return
    flash(f"Labelled {class_name}.", "success")
    nav.setdefault("actions", []).append(("label", document_id))
    go_next()


def on_skip(document_id: int) -> None:
    if document_id not in nav["skipped"]:
        nav["skipped"].append(document_id)
    nav.setdefault("actions", []).append(("skip", document_id))
    go_next()


def on_back() -> None:
    nav["pos"] = max(0, nav["pos"] - 1)


def show_text(text: str) -> None:
    """A document's text as text; in keyword search with the hits marked (escaped first)."""
    if strategy == "keyword" and keyword.strip():
        st.html(highlighted_block(text, keyword))
    else:
        st.text(text)


def on_undo() -> None:
    actions = nav.setdefault("actions", [])  # this session's labels and skips, in order
    if actions and actions[-1][0] == "skip":  # undo the skip, not the label before it
        _, document_id = actions.pop()
        if document_id in nav["skipped"]:
            nav["skipped"].remove(document_id)
        if document_id in nav["history"]:
            nav["pos"] = nav["history"].index(document_id)
        flash("Undone: the skip. The document is back.", "success")
        return
    if actions:
        actions.pop()
    try:
        with ui.session() as s:
            event = label_service.undo(s, pid)
    except ServiceError as exc:
        flash(str(exc))
        return
    if event is None:
        flash("Nothing of yours to undo.")
        return
    history = nav["history"]
    if event.document_id in history:
        nav["pos"] = history.index(event.document_id)
    else:
        history.insert(nav["pos"], event.document_id)
    flash("Undone: the document is back as it was.", "success")


def model_guess(doc, can_label: bool) -> None:
    """The last trained model's guess for the document, with a one-key accept; picking
    another class is a correction like any other label."""
    guess = preds.guess(doc.id) if preds is not None else None
    if guess is None:
        return
    name, confidence = guess
    cls = next((c for c in classes if c.name == name), None)
    g1, g2 = st.columns([3, 1], vertical_alignment="center")
    g1.markdown(f"Model's guess ({source_run.title}): **{ui.md(name)}** · "
                f"{100 * confidence:.0f} % sure")
    g2.button(f"Accept guess ({hotkeys.ACCEPT_KEY})", key="lab_accept", width="stretch",
              on_click=on_label, args=(doc.id, cls.id, cls.name) if cls else None,
              disabled=cls is None or not can_label,
              help=None if cls else "That class is no longer in the label set.")


def on_queue_similar(doc_ids: list[int]) -> None:
    """Show these documents next, one after another (before whatever the strategy picks)."""
    history, pos = nav["history"], nav["pos"]
    for offset, d in enumerate([d for d in doc_ids if d not in history], start=1):
        history.insert(pos + offset, d)


def similar_view(doc) -> None:
    """The current document's nearest neighbours by the cached embeddings."""
    with st.expander("Similar documents", expanded=False):
        with ui.session() as s:
            near = suggestions.similar_documents(s, pid, model, doc.id, k=5)
            texts = {d: label_service.get_document(s, pid, d).text for d, _ in near}
        if not near:
            st.caption("Similar documents come from the corpus embeddings: choose the Diverse "
                       "strategy once to compute them.")
            return
        for d, sim in near:
            guess = preds.guess(d) if preds is not None else None
            st.text(f"{sim:.2f} · " + texts[d][:200].replace("\n", " ")
                    + (f"  [model: {guess[0]}, {100 * guess[1]:.0f} %]" if guess else ""))
        st.button(f"Label these {len(near)} next", key="lab_similar_next",
                  on_click=on_queue_similar, args=([d for d, _ in near],),
                  help="They come next, one after another, with the same keys: a quick way to "
                       "find more examples of a rare class.")


def bulk_accept_view() -> None:
    """Accept the model's N surest guesses per class, after a look and a confirmation."""
    st.subheader("Model's surest guesses")
    n = st.number_input("Per class", 1, 500, 5, key="lab_bulk_n")
    if st.button("Review them", key="lab_bulk_review"):
        with ui.session() as s:
            st.session_state["lab_bulk"] = suggestions.most_confident(s, pid, preds, int(n))
    pending = st.session_state.get("lab_bulk")
    if pending is None:
        return
    if pending.empty:
        st.caption("No unlabelled document left to accept.")
        return
    st.dataframe(pending, hide_index=True, key="lab_bulk_table", column_config={
        "confidence": st.column_config.NumberColumn(format="percent")})
    st.warning(f"Label these {len(pending)} documents with the model's guess, unseen? They "
               "count as accepted pseudo-labels and train the next run.",
               icon=":material/warning:")
    c1, c2 = st.columns(2)
    if c1.button("Yes, label them", key="lab_bulk_confirm", type="primary"):
        try:
            with ui.session() as s:
                written = suggestions.accept(s, pid, pending)
        except ServiceError as exc:
            ui.error(exc)
        else:
            st.session_state.pop("lab_bulk", None)
            flash(f"Accepted {written} of the model's guesses.", "success")
            st.rerun()
    if c2.button("Cancel", key="lab_bulk_cancel"):
        st.session_state.pop("lab_bulk", None)
        st.rerun()


# ---------------------------------------------------------------- controls
with st.sidebar:
    st.subheader("Next document")
    strategy = st.radio(
        "Strategy", label_service.STRATEGIES + suggestions.STRATEGIES, key="lab_strategy",
        format_func={"random": "Random", "diverse": "Diverse (clusters)",
                     "keyword": "Keyword search", "second": "Second opinion (blind)",
                     **suggestions.STRATEGY_NAMES}.get,
        help="Diverse picks the most central unlabelled document of the least-covered "
             "cluster of the corpus (k-means over the model's embeddings). Most uncertain "
             "picks the document the last trained model is least sure about (smallest gap "
             "between its two likeliest classes); uncertain + diverse picks, in the cluster "
             "with the fewest labels, the document whose neighbourhood the model is least "
             "sure about. Measured on movie reviews and BBC News (5 seeds each, "
             "bench/results/NOTES.md), no strategy chose 30 labels that trained a better "
             "model than Random did: uncertain + diverse -0.1 and -1.5 points, Diverse -0.4 "
             "and -0.3.",
    )
    keyword = ""
    if strategy == "keyword":
        keyword = st.text_input("Keyword", key="lab_keyword")
    target_total = st.number_input("Target labels in total", min_value=2, max_value=10_000,
                                   value=label_service.DEFAULT_TARGET_TOTAL, step=1,
                                   key="lab_target")

with ui.session() as s:
    latest = prompt_service.latest_prompt_config(s, pid)
model = latest.model if latest else ui.default_model()


@st.cache_data(max_entries=4, show_spinner="Clustering the corpus…")
def clusters_for(project_id: int, model: str, n_embedded: int, k: int):
    with ui.session() as s:
        ids, vectors = label_service.load_embeddings(s, project_id, model)
    return label_service.cluster_documents(ids, vectors, k)


@st.cache_data(max_entries=4, show_spinner="Finding the regions the model confuses…")
def regions_for(project_id: int, model: str, n_embedded: int, k: int, predict_run_id: int,
                _preds, _clusters):
    with ui.session() as s:
        ids, vectors = label_service.load_embeddings(s, project_id, model)
    return suggestions.region_uncertainty(_preds, _clusters, ids, vectors)


# This browser session's name on the document leases (others are not shown its document).
holder = st.session_state.setdefault("lease_holder", uuid.uuid4().hex)


def pick_next() -> int | None:
    """The next document by the strategy that no other annotator is being shown; it is
    leased to this session before it is shown."""
    exclude = set(nav["history"]) | set(nav["skipped"])
    for _ in range(20):  # another session may claim our pick first: pick again
        with ui.session() as s:
            doc_id = pick_candidate(s, exclude | label_service.leased_elsewhere(s, pid, holder))
            if doc_id is None or label_service.claim_document(s, pid, doc_id, holder):
                return doc_id
        exclude.add(doc_id)
    return None


def pick_candidate(s, exclude: set[int]) -> int | None:
    if strategy == "uncertain":
        return suggestions.next_uncertain(s, pid, preds, exclude)
    if strategy == "second":
        return label_service.next_second_opinion(s, pid, exclude)
    if strategy == "random":
        return label_service.next_random(s, pid, exclude)
    if strategy == "keyword":
        return label_service.next_keyword(s, pid, keyword, exclude)
    missing = label_service.missing_embeddings(s, pid, model)
    if missing:
        return None
    k = label_service.default_k(len(classes), int(target_total))
    clusters = clusters_for(pid, model, n_docs, k)
    if strategy == "uncertain_diverse":
        regions = regions_for(pid, model, n_docs, k, preds.predict_run_id, preds, clusters)
        return suggestions.next_uncertain_diverse(s, pid, preds, clusters, regions, exclude)
    return label_service.next_diverse(s, pid, clusters, exclude)


if strategy == "keyword" and not keyword.strip():
    st.info("Type a keyword in the sidebar to find unlabelled documents that contain it.")
    st.stop()


# ---------------------------------------------------------------- the model's predictions
@st.cache_data(max_entries=2, show_spinner="Reading the model's predictions…")
def predictions_for(path: str, mtime: float, source_run_id: int, predict_run_id: int):
    return suggestions.read_predictions(Path(path), source_run_id, predict_run_id)


@st.fragment(run_every=EMBED_REFRESH_SECONDS)
def prediction_progress(predict_run_id: int) -> None:
    """Live progress of the background predict run; reruns the page when it is over."""
    with ui.session() as s:
        run = run_service.get_run(s, predict_run_id)
        workers = fresh_workers(s)
    if run.status in FINISHED_STATUSES:
        st.rerun()
    total = run.total_steps or 0
    st.progress(float(run.progress or 0.0),
                text=f"Predicting on the worker: {run.step or 0:,} / {total:,} documents" if total
                else "Waiting for a worker to pick up the predict run…")
    if not workers:
        st.warning("No worker is running, so the predictions wait in the queue. Start one with "
                   "`python -m worker` (or `./scripts/run`).", icon=":material/warning:")


with ui.session() as s:
    source_run, predict_run = suggestions.ensure_predictions(s, pid)
    pred_path = suggestions.predictions_path(s, predict_run)
preds = None
if pred_path is not None:
    try:
        preds = predictions_for(str(pred_path), pred_path.stat().st_mtime, source_run.id,
                                predict_run.id)
    except ServiceError as exc:
        ui.error(exc)
if strategy in suggestions.STRATEGIES and preds is None:
    if source_run is None:
        st.info("The model-guided strategies need a trained model: train one on the Train "
                "page (a run that succeeds), then its guesses show here.",
                icon=":material/model_training:")
    elif predict_run is None:
        st.info(ui.md(f"The model of {source_run.title} has not labelled the corpus yet and "
                      "only an owner of the project can start that."), icon=":material/lock:")
    elif predict_run.status in FINISHED_STATUSES:
        ui.error(f"{predict_run.title} (labelling the corpus with the model of {source_run.title}) "
                 f"{predict_run.status}" + (f": {predict_run.error.splitlines()[0]}"
                                             if predict_run.error else "."))
    else:
        st.info(ui.md(f"The model of {source_run.title} is labelling the corpus in the "
                      f"background ({predict_run.title}); its guesses are kept until "
                      "the next training run. Meanwhile label with another strategy."),
                icon=":material/online_prediction:")
        prediction_progress(predict_run.id)
    st.stop()


@st.fragment(run_every=EMBED_REFRESH_SECONDS)
def embedding_progress(project_id: int, model: str) -> None:
    """Live progress of the background embed run; reruns the page when it is over."""
    with ui.session() as s:
        run = label_service.embedding_run(s, project_id, model)
        workers = fresh_workers(s)
    if run is None:
        st.rerun()
    total = run.total_steps or 0
    text = (f"Embedding on the worker: {run.step or 0:,} / {total:,} documents" if total
            else "Waiting for a worker to pick up the embedding run…")
    st.progress(float(run.progress or 0.0), text=text)
    if not workers:
        st.warning("No worker is running, so the embeddings wait in the queue. Start one with "
                   "`python -m worker` (or `./scripts/run`).", icon=":material/warning:")
    if st.button("Cancel", key="lab_embed_cancel"):
        try:
            with ui.session() as s:
                run_service.cancel_run(s, run.id)
        except ServiceError as exc:  # it finished meanwhile
            ui.error(exc)
        st.rerun()


if preds is not None:
    with st.sidebar:
        bulk_accept_view()

if strategy in ("diverse", "uncertain_diverse"):
    with ui.session() as s:
        missing = label_service.missing_embeddings(s, pid, model)
        active = label_service.embedding_run(s, pid, model)
        last = label_service.last_embedding_run(s, pid, model)
    if missing:
        st.info(ui.md(f"Diverse selection needs embeddings of the corpus from the model "
                      f"({model}). {missing:,} documents have none yet. The background worker "
                      "computes them once and caches them; meanwhile you can label with the "
                      "Random or Keyword strategy."), icon=":material/hub:")
        if active is not None:
            embedding_progress(pid, model)
        else:
            if last is not None and last.status == "failed" and last.error:
                ui.error(f"The last embedding run failed: {last.error.splitlines()[0]}")
            if st.button("Compute embeddings", key="lab_embed", type="primary"):
                try:
                    with ui.session() as s:
                        label_service.start_embedding(s, pid, model)
                except ServiceError as exc:
                    ui.error(exc)
                else:
                    st.rerun()
        st.stop()

# ---------------------------------------------------------------- the current document
history = nav["history"]
query = (strategy, keyword.strip().lower())
if nav.get("query") != query:  # a new strategy or keyword: show a document it picks
    if nav.get("query") is not None and history and nav["pos"] == len(history) - 1:
        with ui.session() as s:
            if label_service.label_of(s, history[-1]) is None:
                history.pop()  # shown but not acted on: it may come up again later
    nav["pos"] = len(history)
    nav["query"] = query
if nav["pos"] >= len(history):
    try:
        doc_id = pick_next()
    except ServiceError as exc:
        ui.error(exc)
        st.stop()
    if doc_id is not None:
        history.append(doc_id)
    nav["pos"] = len(history) - 1 if doc_id is not None else len(history)

if "labelling_flash" in st.session_state:
    kind, message = st.session_state.pop("labelling_flash")
    (st.success if kind == "success" else st.info)(ui.md(message))

main, side = st.columns([3, 1], gap="large")
with side:
    with ui.session() as s:
        counts = label_service.class_counts(s, pid, int(target_total))
        remaining = label_service.unlabelled_count(s, pid)
    total = sum(c.count for c in counts)
    st.metric("Labelled", f"{total} / {int(target_total)}")
    if step := label_service.next_step(counts, int(target_total), latest is not None):
        st.page_link(step[0], label=step[1], icon=":material/arrow_forward:")
    for c in counts:
        st.progress(min(c.count / c.target, 1.0) if c.target else 1.0,
                    text=ui.md(f"{c.name}: {c.count} / {c.target}"))
    warning = label_service.balance_warning(counts)
    if warning:
        st.warning(ui.md(warning), icon=":material/balance:")
    st.caption(f"{remaining:,} unlabelled documents left.")
    with st.expander("Guidelines", expanded=True):
        for i, cls in enumerate(classes):
            st.text(f"{i + 1}. {cls.name}" + (f": {cls.description}" if cls.description else ""))

with main:
    if nav["pos"] >= len(history):
        if strategy == "keyword":
            st.info(ui.md(f"No more unlabelled documents contain \"{keyword.strip()}\"."))
        else:
            st.success("No unlabelled documents left to show (labelled or skipped).")
        if nav["skipped"] and st.button("Show skipped documents again", key="lab_reset_skips"):
            nav["skipped"].clear()
            nav["history"] = []
            nav["pos"] = 0
            st.rerun()
        doc = None
    else:
        with ui.session() as s:
            doc = label_service.get_document(s, pid, history[nav["pos"]])
            current = label_service.label_of(s, doc.id) if doc else None
        if doc is None:  # deleted meanwhile
            history.pop(nav["pos"])
            st.rerun()
    if doc is not None:
        current_name = next((c.name for c in classes if current and c.id == current.label_class_id),
                            None)
        with ui.session() as s:  # renew this session's lease (or learn someone else has it)
            mine = label_service.claim_document(s, pid, doc.id, holder)
            can_label = user_service.can(s, pid, "annotator")
        if strategy == "second" and current_name and current.user_id != st.session_state.get(
                ui.USER_STATE):
            current_name = None  # blind: the first annotator's label is not shown
        st.caption(f"Document {doc.id} · {nav['pos'] + 1} of {len(history)} shown this session"
                   + (" · current label: " + ui.md(current_name) if current_name else
                      " · not labelled yet" if strategy != "second" else " · second opinion"))
        if not mine:
            st.caption("Another annotator has this document open right now.")
        if not can_label:
            st.info("You are a viewer of this project: you can read, not label.")
        with st.container(border=True, key="doc_view"):
            show_text(doc.text)
            if doc.text_b:
                st.caption("Second text")
                show_text(doc.text_b)
        model_guess(doc, can_label)
        cols = st.columns(min(len(classes), 5))
        keys = hotkeys.class_keys(len(classes))
        for i, cls in enumerate(classes):
            hint = f"{keys[i]} · " if keys[i] else ""
            cols[i % len(cols)].button(
                hint + ui.md(cls.name), key=f"lab_class_{i}", width="stretch",
                type="primary" if current_name == cls.name else "secondary",
                on_click=on_label, args=(doc.id, cls.id, cls.name), disabled=not can_label,
            )
        b1, b2, b3, b4 = st.columns(4)
        b1.button("← Back", key="lab_back", on_click=on_back, disabled=nav["pos"] == 0,
                  width="stretch")
        b2.button("Skip (s)", key="lab_skip", on_click=on_skip, args=(doc.id,), width="stretch")
        b3.button("Undo (u)", key="lab_undo", on_click=on_undo, width="stretch")
        b4.button("Next →", key="lab_next", on_click=go_next, width="stretch")
        st.caption(hotkeys.keys_caption(len(classes)))
        shortcuts = {key: f"lab_class_{i}" for i, key in enumerate(keys) if key}
        shortcuts.update({hotkeys.SKIP_KEY: "lab_skip", hotkeys.UNDO_KEY: "lab_undo",
                          hotkeys.ACCEPT_KEY: "lab_accept", "ArrowLeft": "lab_back",
                          "ArrowRight": "lab_next"})
        ui.hotkeys(shortcuts)
        similar_view(doc)

st.html("<style>.st-key-doc_view .stText, .st-key-doc_view .stText * "
        "{font-size: 1.2rem; line-height: 1.6; white-space: pre-wrap; "
        "font-family: inherit;}</style>")

# ---------------------------------------------------------------- review
st.divider()
st.subheader("All labels")
with ui.session() as s:
    table = label_service.labels_table(s, pid)
if table.empty:
    st.caption("No labels yet.")
else:
    st.dataframe(table, hide_index=True, width="stretch", height=min(400, 38 + 35 * len(table)))
    class_names = {c.id: c.name for c in classes}
    r1, r2, r3, r4 = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    review_doc = r1.selectbox("Document", table["document"].tolist(), key="review_doc")
    review_class = r2.selectbox("New label", list(class_names), format_func=class_names.get,
                                key="review_class")
    if r3.button("Change", key="review_change"):
        with ui.session() as s:
            label_service.set_label(s, pid, int(review_doc), int(review_class))
        flash(f"Document {review_doc} relabelled.", "success")
        st.rerun()
    if r4.button("Delete", key="review_delete"):
        with ui.session() as s:
            label_service.remove_label(s, pid, int(review_doc))
        flash(f"Label of document {review_doc} deleted.", "success")
        st.rerun()

    # ------------------------------------------------------------ export
    FORMAT_NAMES = {"csv": "CSV", "jsonl": "JSONL", "parquet": "Parquet",
                    "datasets": "datasets folder (zip)"}

    def labels_file(fmt: str) -> bytes:  # built only when its button is clicked
        with ui.session() as s:
            labels = label_export.labels_table(s, pid)
        folder = label_export.file_name(project.name, fmt).removesuffix(".zip")
        return label_export.labels_bytes(labels, fmt, folder_name=folder)

    with st.expander("Export labels", icon=":material/download:"):
        st.caption("Every label with its full text, the label, its source (human, accepted "
                   "pseudo-label or imported), the held-out and gold flags, when it was made "
                   "and changed (UTC), and the train runs that used it. Import any of these "
                   "files into a new project with its label column to get the same labels. "
                   "The CSV keeps the text exactly as stored, so a text starting with `=` "
                   "could run as a formula if the file is double-clicked into a spreadsheet; "
                   "the datasets folder loads with `datasets.load_from_disk`.")
        for col, fmt in zip(st.columns(len(label_export.FORMATS)), label_export.FORMATS,
                            strict=True):
            col.download_button(FORMAT_NAMES[fmt], data=functools.partial(labels_file, fmt),
                                file_name=label_export.file_name(project.name, fmt),
                                mime=label_export.MIME[fmt], on_click="ignore",
                                key=f"labels_export_{fmt}", icon=":material/download:",
                                width="stretch")
