"""The label set: names, guidelines, and a suggested label word per label."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.services import ServiceError
from app.services import gold as gold_service
from app.services import labelling as label_service
from app.services import prompts as prompt_service

st.title("Label set")
project = ui.require_project()

if "labels_flash" in st.session_state:
    st.success(ui.md(st.session_state.pop("labels_flash")))

with ui.session() as s:
    classes = label_service.list_label_classes(s, project.id)
    counts = {c.label_class_id: c.count for c in label_service.class_counts(s, project.id)}
    latest = prompt_service.latest_prompt_config(s, project.id)
model = latest.model if latest else ui.default_model()

try:
    tok = ui.tokenizer(model)
except ServiceError as exc:
    tok = None
    st.warning(ui.md(f"Label words cannot be checked: {exc}"))


def word_check(value: str) -> None:
    """One line under a label word field: is each of its words one token of the model?"""
    if tok is None or not value.strip():
        return
    for word in prompt_service.label_words(value):
        tokens = prompt_service.word_tokens(word, tok)
        if len(tokens) == 1:
            st.caption(ui.md(f"{word.strip()}: one token for the model, usable as a label word."))
        else:
            hints = prompt_service.suggest_single_token(word, tok)
            st.caption(ui.md(f"{word.strip()}: splits into {len(tokens)} tokens "
                             f"({' '.join(tokens)}); a label word must be one token."
                             + (f" Try: {', '.join(hints)}." if hints else "")))


OPEN_KEY = "label_panels_open"  # ids of the label panels being edited: they stay open


def keep_open(class_id: int) -> None:
    """On a change or click inside a label panel (before the rerun): keep that panel open.
    Without it, Enter or leaving a field reran the page and folded the panel shut, hiding
    Save (a panel's folded state is lost when it is drawn anew, e.g. under a new title)."""
    st.session_state.setdefault(OPEN_KEY, set()).add(class_id)


def name_check(value: str) -> str | None:
    """Under a name field: a name that is too long says so at once, with its length (the
    field has no max_chars: the browser would drop a longer paste without a word). Returns
    the message shown, so that a failed save does not show it twice."""
    if len((value or "").strip()) <= label_service.MAX_LABEL_NAME:
        return None
    problem = label_service.label_name_problem(value)
    ui.error(problem)
    return problem


WORD_HELP = ("The word the model should fill in for this label. Several words, separated by "
             "commas (great, good, excellent), are averaged: often steadier than one word.")


with ui.session() as s:
    from_gold = gold_service.missing_classes(s, project.id)
if from_gold:
    shown = ", ".join(f"{v} ({n:,})" for v, n in from_gold[:12])
    more = f" and {len(from_gold) - 12} more" if len(from_gold) > 12 else ""
    st.info(ui.md(f"The imported corpus has gold labels not in this label set: {shown}{more}. "
                  "Add them as labels (you can rename them and set their label words below)."),
            icon=":material/auto_awesome:")
    if st.button(f"Add {len(from_gold)} label{'s' if len(from_gold) != 1 else ''} from the "
                 "gold labels", key="labels_from_gold"):
        try:
            with ui.session() as s:
                added = gold_service.add_classes_from_gold(s, project.id)
        except ServiceError as exc:
            ui.error(exc)
        else:
            st.session_state["labels_flash"] = f"{len(added)} labels added from the gold labels."
            st.rerun()

if not classes:
    st.info("No labels yet: add at least two. Each label gets a short guideline (shown while "
            "labelling) and a label word the prompt will use (e.g. great / terrible).",
            icon=":material/sell:")
elif len(classes) < 2:
    st.warning("Add at least one more label: a classifier needs two or more.")

open_panels = st.session_state.get(OPEN_KEY, set())
for i, cls in enumerate(classes):
    title = f"{i + 1}. {cls.name}  ({counts.get(cls.id, 0)} labelled)"
    edit = {"on_change": keep_open, "args": (cls.id,)}
    with st.expander(ui.md(title), expanded=cls.id in open_panels):
        name = st.text_input("Name", value=cls.name, key=f"lc_name_{cls.id}", **edit)
        name_shown = name_check(name)
        desc = st.text_area("Guideline", value=cls.description, key=f"lc_desc_{cls.id}",
                            height=80, **edit)
        word = st.text_input("Label word(s)", value=cls.verbalizer_word, key=f"lc_word_{cls.id}",
                             max_chars=100, help=WORD_HELP, **edit)
        word_check(word)
        c1, c2 = st.columns(2)
        if c1.button("Save", key=f"lc_save_{cls.id}", type="primary", on_click=keep_open,
                     args=(cls.id,)):
            try:
                with ui.session() as s:
                    label_service.update_label_class(s, cls.id, name=name, description=desc,
                                                     verbalizer_word=word)
            except ServiceError as exc:
                if str(exc) != name_shown:
                    ui.error(exc)
            else:
                st.session_state["labels_flash"] = "Label saved."
                st.rerun()
        confirm_key = f"lc_confirm_{cls.id}"
        if not st.session_state.get(confirm_key):
            if c2.button("Delete", key=f"lc_delete_{cls.id}", on_click=keep_open,
                         args=(cls.id,)):
                st.session_state[confirm_key] = True
                st.rerun()
        else:
            n = counts.get(cls.id, 0)
            st.warning(f"Delete this label and its {n} label(s) on documents?")
            d1, d2 = st.columns(2)
            if d1.button("Yes, delete", key=f"lc_delete_yes_{cls.id}", type="primary"):
                with ui.session() as s:
                    removed = label_service.delete_label_class(s, cls.id)
                st.session_state.pop(confirm_key, None)
                st.session_state["labels_flash"] = f"Label deleted ({removed} labels removed)."
                st.rerun()
            if d2.button("Cancel", key=f"lc_delete_no_{cls.id}"):
                st.session_state.pop(confirm_key, None)
                st.rerun()

st.subheader("Add a label")
new_name = st.text_input("Name", key="new_label_name")
new_name_shown = name_check(new_name)
new_desc = st.text_area("Guideline (optional)", key="new_label_desc", height=80,
                        placeholder="What belongs in this class, and borderline cases.")
suggested = label_service.suggest_word(new_name) if new_name else ""
new_word = st.text_input("Label word(s) (optional)", key="new_label_word", max_chars=100,
                         placeholder=suggested or "e.g. great",
                         help=WORD_HELP + " Left empty, the first content word of the name is used "
                         "(never a word such as \"an\" or \"the\").")
word_check(new_word or suggested)


def _add_label() -> None:
    """On click (before the rerun), so the form's fields can be emptied after a success."""
    state = st.session_state
    try:
        with ui.session() as s:
            label_service.add_label_class(s, project.id, state.get("new_label_name", ""),
                                          state.get("new_label_desc", ""),
                                          state.get("new_label_word", ""))
    except ServiceError as exc:
        state["labels_error"] = str(exc)
    else:
        for k in ("new_label_name", "new_label_desc", "new_label_word"):
            state[k] = ""
        state["labels_flash"] = "Label added."


st.button("Add label", key="add_label", type="primary", icon=":material/add:",
          on_click=_add_label)
message = st.session_state.pop("labels_error", None)
if message is not None and message != new_name_shown:  # not twice under the name field
    ui.error(message)

if len(classes) >= 2:
    st.divider()
    st.page_link("views/labelling.py", label="Next: label a few documents of each class",
                 icon=":material/arrow_forward:")
