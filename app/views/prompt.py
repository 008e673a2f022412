"""Prompt design: template (presets or free), label words, live validation with the
model's tokenizer, previews on real documents, the zero-shot check, versioned saving."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.services import ServiceError
from app.services import corpus as corpus_service
from app.services import labelling as label_service
from app.services import prompts as prompt_service

st.title("Prompt design")
project = ui.require_project()
pid = project.id

with ui.session() as s:
    classes = label_service.list_label_classes(s, pid)
    latest = prompt_service.latest_prompt_config(s, pid)
    versions = prompt_service.list_prompt_configs(s, pid)
    n_docs = corpus_service.document_count(s, pid)
    has_pairs = prompt_service.corpus_has_pairs(s, pid)
if len(classes) < 2:
    st.info("A prompt needs at least two labels: define the label set first.",
            icon=":material/sell:")
    st.page_link("views/label_set.py", label="Define the label set", icon=":material/sell:")
    st.stop()

labels = [c.name for c in classes]
K_MODEL, K_TEMPLATE, K_MODE = f"pr_model_{pid}", f"pr_template_{pid}", f"pr_mode_{pid}"


def word_key(cls) -> str:
    return f"pr_word_{pid}_{cls.id}"


try:
    preset_map = prompt_service.presets()
except ImportError as exc:  # the engine is not installed: nothing here can work
    ui.error(f"The prompt engine is unavailable: {exc}")
    st.stop()

# Widget state is reset when the user visits another page, so the draft also lives under a
# plain key; initial values: the draft, else the latest saved version, else the first preset.
draft = st.session_state.setdefault("prompt_drafts", {}).setdefault(pid, {})
if K_TEMPLATE not in st.session_state:
    first = next(iter(preset_map.values()))
    st.session_state[K_TEMPLATE] = draft.get("template") or (
        latest.template if latest else first.template)
    st.session_state[K_MODEL] = draft.get("model") or (latest.model if latest else ui.default_model())
    st.session_state[K_MODE] = draft.get("mode") or (latest.mode if latest else "prompt")
for cls in classes:
    if word_key(cls) not in st.session_state:
        saved = (latest.verbalizer or {}).get(cls.name) if latest else None
        st.session_state[word_key(cls)] = draft.get("words", {}).get(cls.name) or saved or (
            cls.verbalizer_word)


def apply_preset() -> None:
    preset = preset_map[st.session_state["pr_preset"]]
    st.session_state[K_TEMPLATE] = preset.template
    fallback = {c.name: c.verbalizer_word for c in classes}
    for cls, word in zip(classes, prompt_service.preset_verbalizer(preset, labels, fallback).values(),
                         strict=True):
        st.session_state[word_key(cls)] = word


# ---------------------------------------------------------------- editing
left, right = st.columns([3, 2], gap="large")
with left:
    p1, p2 = st.columns([3, 1], vertical_alignment="bottom")
    preset_name = p1.selectbox(
        "Preset", list(preset_map), key="pr_preset",
        format_func=lambda n: n.replace("_", " ").capitalize(),
    )
    p2.button("Use preset", key="pr_use_preset", on_click=apply_preset)
    st.caption(ui.md(preset_map[preset_name].description))
    template = st.text_area(
        "Template", key=K_TEMPLATE, height=90,
        help="Placeholders: {text} (or {text_a} and {text_b} for pairs) and exactly one {mask}, "
             "where the model fills in a label word.",
    )
    model = st.text_input("Model", key=K_MODEL,
                          help="`default` (packaged MiniLM), a hub name such as roberta-large, "
                               "or a local path.")
    mode = st.radio("Mode", prompt_service.MODES, key=K_MODE, horizontal=True,
                    format_func={"prompt": "Prompt (LiST)",
                                 "classic": "Classic (classification head)"}.get)
with right:
    st.markdown("**Label words**")
    st.caption("Several words for one label: separate them with commas (great, good, "
               "excellent); the label's score is their average.")
    verbalizer = {}
    for cls in classes:
        verbalizer[cls.name] = st.text_input(ui.md(cls.name), key=word_key(cls), max_chars=100)

draft.update(template=template, model=model, mode=mode, words=dict(verbalizer))

# ---------------------------------------------------------------- validation
try:
    tok = ui.tokenizer(model.strip() or "default")
except ServiceError as exc:
    tok = None
    ui.error(exc)

problems: list[str] = []
if tok is not None:
    try:
        problems = prompt_service.validate(template, verbalizer, tok, labels, mode, has_pairs)
    except Exception as exc:  # noqa: BLE001 - a broken template must not crash the page
        problems = [f"Could not check the prompt: {exc}"]
    st.subheader("Check")
    if problems:
        for p in problems:
            ui.error(p)
    else:
        st.success("The prompt is valid for this model.", icon=":material/check_circle:")
    if mode == "prompt":
        report = prompt_service.word_report(verbalizer, tok)
        st.dataframe(report, hide_index=True, width="stretch")
        if not bool(tok.mask_token):
            ui.error(f"The tokenizer of {model} has no mask token: use prompt mode only with "
                     "a masked language model.")

# ---------------------------------------------------------------- preview
if tok is not None and not problems and mode == "prompt":
    st.subheader("Preview on project documents")
    if n_docs == 0:
        st.info("No corpus yet: import one to preview prompts on real documents.")
    else:
        c1, c2 = st.columns(2)
        n_preview = c1.slider("Documents", 1, 10, 3, key="pr_n_preview")
        max_length = c2.number_input("Max length (tokens)", 16, 512,
                                     prompt_service.DEFAULT_MAX_LENGTH, step=16,
                                     key="pr_max_length")
        with ui.session() as s:
            docs = prompt_service.preview_documents(s, pid, n_preview)
        try:
            previews = prompt_service.preview(template, docs, tok, int(max_length))
        except Exception as exc:  # noqa: BLE001
            ui.error(f"Could not render the prompt: {exc}")
            previews = []
        for pv in previews:
            st.code(pv.text, language=None, wrap_lines=True)
            if pv.truncated:
                st.caption(f"Document {pv.document_id}: truncated to fit {int(max_length)} "
                           f"tokens, kept {pv.kept_chars:,} of {pv.original_chars:,} characters "
                           "of the text (the template and the mask are never cut).")
            else:
                st.caption(f"Document {pv.document_id}: not truncated "
                           f"({pv.original_chars:,} characters).")

    st.subheader("Zero-shot check")
    st.caption("The label-word probabilities of the current model (before any training) on "
               "your labelled examples.")
    if st.button("Run the zero-shot check", key="pr_zero_shot"):
        try:
            clf = ui.classifier(model.strip() or "default", template,
                                tuple((k, prompt_service.clean_word(v)) for k, v in verbalizer.items()))
            with ui.session() as s:
                result = prompt_service.zero_shot_check(s, pid, clf)
        except ServiceError as exc:
            ui.error(exc)
        except Exception as exc:  # noqa: BLE001 - model loading/inference failures
            ui.error(f"The zero-shot check failed: {exc}")
        else:
            what = f"Zero-shot accuracy on {len(result.table)} labelled examples ({result.head} head)"
            if result.meaningful:
                st.info(result.note)
                st.metric(what, f"{result.accuracy:.0%}", help="Before any training.")
            else:  # noise: no large number for it, only a plain line under the warning
                st.warning(result.note, icon=":material/warning:")
                st.caption(f"{what}: {result.accuracy:.0%}, which is noise here (see above), "
                           "not a measure of this prompt.")
            st.dataframe(result.table, hide_index=True, width="stretch")

# ---------------------------------------------------------------- save
st.subheader("Save")
next_version = (versions[0].version + 1) if versions else 1
note = st.text_input("Note (optional)", key="pr_note", placeholder="What changed and why")
if st.button(f"Save as version {next_version}", key="pr_save", type="primary",
             disabled=tok is None or bool(problems), icon=":material/save:"):
    try:
        with ui.session() as s:
            saved = prompt_service.save_prompt_config(
                s, pid, template=template, verbalizer=verbalizer, model=model, mode=mode,
                note=note, tokenizer=tok,
            )
    except ServiceError as exc:
        ui.error(exc)
    else:
        st.session_state["pr_flash"] = f"Saved prompt version {saved.version}."
        st.session_state.pop("pr_note", None)
        st.rerun()
if "pr_flash" in st.session_state:
    st.success(st.session_state.pop("pr_flash"), icon=":material/check_circle:")
if versions:  # a saved prompt is all training needs: say where to go next
    st.page_link("views/train.py", icon=":material/arrow_forward:",
                 label=f"Next: Train (a model with prompt version {versions[0].version})")
if problems:
    st.caption("Fix the problems above to save.")

if versions:
    st.subheader("Saved versions")
    st.dataframe(
        [{"version": v.version, "template": v.template,
          "label words": ", ".join(f"{k}={w}" for k, w in v.verbalizer.items()),
          "model": v.model, "mode": v.mode, "note": v.note, "saved": v.created_at}
         for v in versions],
        hide_index=True, width="stretch",
    )
