"""Labelling page (issue 16): undo right after a skip brings the skipped document back (it
used to undo the label before it); keyword hits are marked in the text, which stays text."""

from __future__ import annotations

import pandas as pd

from app.highlight import highlight
from app.services import labelling as L
from app.services.corpus import import_documents
from tests.app.test_pages import open_app, texts


def test_undo_after_a_skip_undoes_the_skip(db, sentiment_project):
    pid = sentiment_project.id
    pos, _ = L.list_label_classes(db, pid)
    at = open_app("labelling")
    first = at.session_state["labelling_nav"][pid]["history"][0]
    at.button(key="lab_class_0").click().run()  # label the first
    skipped = at.session_state["labelling_nav"][pid]["history"][1]
    at.button(key="lab_skip").click().run()  # skip the second
    assert skipped in at.session_state["labelling_nav"][pid]["skipped"]
    at.button(key="lab_undo").click().run()
    assert not at.exception, at.exception
    nav = at.session_state["labelling_nav"][pid]
    assert skipped not in nav["skipped"] and nav["history"][nav["pos"]] == skipped
    assert "Undone: the skip" in texts(at.success)
    db.rollback()
    assert L.label_of(db, first).label_class_id == pos.id  # the label before it stays
    at.button(key="lab_undo").click().run()  # next undo: that label
    db.rollback()
    assert L.label_of(db, first) is None


def test_keyword_hits_are_marked_and_hostile_text_stays_text(db, project):
    hostile = "<script>alert(1)</script> the Acting <b>was</b> acting & more"
    import_documents(db, project.id, pd.DataFrame({"text": [hostile]}), text_column="text")
    L.add_label_class(db, project.id, "positive")
    L.add_label_class(db, project.id, "negative")
    at = open_app("labelling")
    at.sidebar.radio(key="lab_strategy").set_value("keyword").run()
    at.sidebar.text_input(key="lab_keyword").input("acting").run()
    assert not at.exception, at.exception
    shown = "".join(h.proto.body for h in at.get("html") if "<mark>" in h.proto.body)
    assert ("&lt;script&gt;alert(1)&lt;/script&gt; the <mark>Acting</mark> &lt;b&gt;was&lt;/b&gt; "
            "<mark>acting</mark> &amp; more") in shown
    assert "<script>" not in shown and "<b>" not in shown


def test_highlight_escapes_every_piece():
    assert highlight("a<b>&amp;", "") == "a&lt;b&gt;&amp;amp;"
    assert highlight("x & y", "&") == "x <mark>&amp;</mark> y"
    assert highlight("amp &amp", "amp") == "<mark>amp</mark> &amp;<mark>amp</mark>"
    assert highlight("(a+b)", "a+b") == "(<mark>a+b</mark>)"  # the keyword is literal
