"""Pseudo-label inspector: the teacher's labels of a round with their meta weights; accept
one as a human label, correct it, or skip it. Accepted labels count for the next run."""

from __future__ import annotations

import streamlit as st

from app import ui
from app.services import ServiceError
from app.services import inspector as insp
from app.services import runs as run_service
from app.services.training import project_classes

SKIPPED_KEY = "inspector_skipped"


def _skipped(run_id: int, round_: int) -> set[int]:
    return st.session_state.setdefault(SKIPPED_KEY, {}).setdefault(f"{run_id}:{round_}", set())


def _do(action: str, run_id: int, round_: int, doc_id: int, label: str | None = None) -> None:
    try:
        with ui.session() as s:
            if action == "accept":
                insp.accept(s, run_id, round_, doc_id)
                msg = f"Document {doc_id}: pseudo-label accepted as its label."
            elif action == "correct":
                insp.correct(s, run_id, round_, doc_id, label)
                msg = f"Document {doc_id}: labelled {label!r}."
            else:
                _skipped(run_id, round_).add(doc_id)
                msg = f"Document {doc_id} skipped."
    except ServiceError as exc:
        st.session_state["inspector_message"] = ("error", str(exc))
    else:
        st.session_state["inspector_message"] = ("ok", msg)


def _review(df, run_id: int, round_: int, classes: list[str]) -> None:
    """The first document of the filtered list, one at a time."""
    row = df.iloc[0]
    doc_id = int(row["document_id"])
    st.subheader(f"Document {doc_id}")
    st.text(row["text"])  # user text: plain text, never Markdown/HTML
    c1, c2, c3 = st.columns(3)
    c1.metric("Teacher's label", str(row["pseudo_label"]))
    c2.metric("Confidence", f"{100 * float(row['confidence']):.1f} %")
    c3.metric("Meta weight", insp.shown(row["meta_weight"], "{:.4f}"))
    st.caption("Confidence is the teacher's own probability, and prompt models tend to be "
               "over-confident: how far such numbers held on the evaluation set is in the "
               "reliability diagram on the Live progress page.")
    if (gold := insp.shown(row["gold_label"])) != insp.MISSING:  # a missing one may be NaN
        st.caption(f"Gold label (import): {ui.md(gold)}")
    b1, b2, b3, b4 = st.columns([1, 2, 1, 1])
    b1.button("Accept", key="insp_accept", type="primary", on_click=_do,
              args=("accept", run_id, round_, doc_id),
              help="Keep the teacher's label as this document's label.")
    others = [c for c in classes if c != row["pseudo_label"]] or classes
    choice = b2.selectbox("Correct to", others, key=f"insp_choice_{doc_id}",
                          label_visibility="collapsed")
    b3.button("Correct", key="insp_correct", on_click=_do,
              args=("correct", run_id, round_, doc_id, choice),
              help="Label the document with the class chosen on the left.")
    b4.button("Skip", key="insp_skip", on_click=_do, args=("skip", run_id, round_, doc_id))


def main() -> None:
    project = ui.require_project()
    st.title("Pseudo-label inspector")
    with ui.session() as s:
        runs = [r for r in run_service.list_runs(s, project.id, kind="train")
                if insp.rounds_with_pseudo_labels(s, r.id)]
        if not runs:
            st.info("No pseudo-labels yet. Once a run's teacher (round 0) has trained, it "
                    "labels unlabelled documents at the start of round 1; they appear here "
                    "then, while the student trains.", icon=":material/psychology:")
            return
        by_id = {r.id: r for r in runs}
        c1, c2 = st.columns([3, 1])
        ui.remember_run("insp_run", list(by_id), runs[0].id)
        run_id = c1.selectbox("Run", list(by_id), key="insp_run",
                              format_func=lambda i: f"{by_id[i].title} · {by_id[i].status}")
        ui.show_run_in_url(run_id)
        rounds = insp.rounds_with_pseudo_labels(s, run_id)
        round_ = c2.selectbox("Round", rounds, index=len(rounds) - 1, key=f"insp_round_{run_id}",
                              help="Pseudo-labels given by the teacher of this round.")
        overview = insp.round_overview(s, run_id, round_)
        live = not by_id[run_id].finished and round_ == by_id[run_id].current_round
        classes = project_classes(s, project.id)
        m1, m2, m3 = st.columns(3)
        m1.metric("Pseudo-labelled documents", overview["total"])
        m2.metric("With a meta weight", overview["weighted"])
        if overview["with_gold"]:
            m3.metric("Agree with gold", f"{overview['agree']}/{overview['with_gold']}")

        f1, f2, f3, f4 = st.columns(4)
        label = f1.selectbox("Class", ["(all)", *classes], key="insp_class")
        low = f2.checkbox("Low weight only", key="insp_low",
                          help="Weights below half the round's mean weight.")
        disagree = f3.checkbox("Disagrees with gold", key="insp_disagree",
                               disabled=not overview["with_gold"])
        sort = f4.selectbox("Sort by", list(insp.SORTS), key="insp_sort")
        hide = st.checkbox("Hide documents that have a label by now", value=True, key="insp_hide")
        filters = insp.Filters(
            label=None if label == "(all)" else label, low_weight=0.5 if low else None,
            disagree_with_gold=disagree, hide_labelled=hide,
            exclude_ids=tuple(sorted(_skipped(run_id, round_))),
        )
        df = insp.pseudo_label_table(s, run_id, round_, filters, sort)
        accepted = insp.accepted_count(s, project.id)

    message = st.session_state.pop("inspector_message", None)
    if message:
        (st.success if message[0] == "ok" else ui.error)(ui.md(message[1]))
    if live:
        st.caption("This round is training now: meta weights fill in while its student "
                   "trains (documents without one show -).")
    st.caption(f"{accepted} accepted pseudo-labels in this project count as training labels "
               "for the next run.")
    if df.empty:
        st.info("No pseudo-label matches these filters.", icon=":material/filter_alt_off:")
        return
    _review(df, run_id, round_, classes)
    st.subheader(f"Matching pseudo-labels ({len(df)}{'+' if len(df) >= 200 else ''})")
    st.dataframe(insp.display_table(df.drop(columns=["current_source"])), hide_index=True)


main()
