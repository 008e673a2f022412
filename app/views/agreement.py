"""Agreement: for every pair of annotators, the documents both labelled, how often they
agreed, and Cohen's kappa (agreement corrected for chance); then those documents side by
side, disagreements first."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import ui
from app.services import agreement

st.title("Agreement")
project = ui.require_project()

with ui.session() as s:
    pairs = agreement.pairs(s, project.id)
if not pairs:
    st.info("No document has labels from two annotators yet. On the Labelling page, pick the "
            "\"Second opinion\" strategy to label, without seeing the first label, documents "
            "that someone else labelled.", icon=":material/group:")
    st.stop()

st.dataframe(pd.DataFrame([{
    "annotator A": p.name_a, "annotator B": p.name_b, "documents labelled by both": p.documents,
    "agreement": f"{p.percent:.0f}%",
    "Cohen's kappa": "not defined" if p.kappa is None else f"{p.kappa:.2f}",
} for p in pairs]), hide_index=True, width="stretch")
st.caption("Kappa is 1 for perfect agreement and 0 for what chance alone would give; it is "
           "not defined for fewer than 2 documents or when both used a single label.")

choice = st.selectbox("Documents of", range(len(pairs)), key="agree_pair",
                      format_func=lambda i: f"{pairs[i].name_a} and {pairs[i].name_b}")
pair = pairs[choice]
with ui.session() as s:
    table = agreement.both_table(s, project.id, pair.user_a, pair.user_b)
st.dataframe(table, hide_index=True, width="stretch")
st.caption("The current label of a document is the last one given; change it on the "
           "Labelling page (All labels) after you settle a disagreement.")
