"""Label set page (issue 16): the form is empty after a label is added; the gold labels of an
import are offered as the label set; a next-step link once there are two labels."""

from __future__ import annotations

import pandas as pd

from app.services import gold
from app.services import labelling as L
from app.services.corpus import import_documents
from tests.app.test_pages import open_app, texts


def test_form_is_cleared_after_adding_and_kept_after_an_error(db, project):
    at = open_app("label_set")
    at.text_input(key="new_label_name").input("Positive")
    at.text_area(key="new_label_desc").input("Liked the film")
    at.text_input(key="new_label_word").input("great")
    at.button(key="add_label").click().run()
    assert not at.exception, at.exception
    assert "Label added" in texts(at.success)
    assert at.text_input(key="new_label_name").value == ""
    assert at.text_area(key="new_label_desc").value == ""
    assert at.text_input(key="new_label_word").value == ""
    assert not at.get("page_link") or all("Next" not in str(p.proto.label)
                                          for p in at.get("page_link"))
    at.text_input(key="new_label_name").input("positive")
    at.button(key="add_label").click().run()
    assert "already a label" in texts(at.error)
    assert at.text_input(key="new_label_name").value == "positive"  # kept to fix it
    at.text_input(key="new_label_name").input("Negative")
    at.button(key="add_label").click().run()
    links = [p.proto.label for p in at.get("page_link")]
    assert any("Next: label" in label for label in links)


def test_gold_labels_of_an_import_are_offered(db, project):
    df = pd.DataFrame({"text": [f"doc {i}" for i in range(7)],
                       "label": ["sport", "tech", "sport", "sport", "tech", "<b>politics</b>", ""]})
    import_documents(db, project.id, df, text_column="text", label_column="label")
    L.add_label_class(db, project.id, "Sport")
    assert gold.missing_classes(db, project.id) == [("tech", 2), ("<b>politics</b>", 1)]
    at = open_app("label_set")
    assert "gold labels not in this label set: tech (2), <b>politics</b> (1)" in texts(at.info)
    at.button(key="labels_from_gold").click().run()
    assert not at.exception, at.exception
    assert "2 labels added from the gold labels" in texts(at.success)
    db.rollback()
    assert [c.name for c in L.list_label_classes(db, project.id)] == [
        "Sport", "tech", "<b>politics</b>"]
    assert gold.missing_classes(db, project.id) == []
    at.run()
    assert "gold labels not in this label set" not in texts(at.info)


def test_import_links_to_the_label_set_and_says_it_is_offered(db, project):
    from tests.app.test_pages import paste

    at = paste(open_app("import_data"), "text,label\ngood film,pos\nbad film,neg\n")
    at.button(key="do_import").click().run()
    assert not at.exception, at.exception
    links = [p.proto.label for p in at.get("page_link")]
    assert "Next: define the labels (offered from the import's gold labels)" in links
