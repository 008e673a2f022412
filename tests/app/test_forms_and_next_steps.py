"""Issue 26: forms that fought the user (label panels folding shut, a long name pasted into
nothing, a header-only CSV), a stop word as a suggested label word, one upload limit, and a
next step once the labels are in and once the prompt is saved."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from app.services import ServiceError
from app.services import labelling as L
from tests.app.test_pages import open_app, paste, texts

ROOT = Path(__file__).resolve().parents[2]


def _panel(at, class_id: int):
    """The label panel (expander) holding a class's name field."""
    for exp in at.get("expander"):
        if any(getattr(w, "key", None) == f"lc_name_{class_id}" for w in exp.text_input):
            return exp
    raise AssertionError(f"no panel for class {class_id}")


# ---------------------------------------------------------------- label panels


def test_the_label_panel_being_edited_stays_open(db, sentiment_project):
    pos, neg = L.list_label_classes(db, sentiment_project.id)
    at = open_app("label_set")
    assert not _panel(at, pos.id).proto.expanded  # folded until edited
    at.text_input(key=f"lc_word_{neg.id}").input("bad").run()  # Enter / blur: a rerun
    assert not at.exception
    assert _panel(at, neg.id).proto.expanded, "the edited panel folded shut"
    assert not _panel(at, pos.id).proto.expanded
    at.text_input(key=f"lc_name_{neg.id}").input("Negative review").run()
    at.button(key=f"lc_save_{neg.id}").click().run()  # a new title: drawn anew, still open
    assert "Label saved" in texts(at.success)
    assert _panel(at, neg.id).proto.expanded
    at.button(key=f"lc_delete_{pos.id}").click().run()  # the confirmation is in the panel
    assert _panel(at, pos.id).proto.expanded
    assert at.button(key=f"lc_delete_yes_{pos.id}")


# ---------------------------------------------------------------- names over 200 characters


def test_a_pasted_name_over_200_characters_is_kept_and_explained(db, project):
    long_name = "A very long label name " * 10 + "x" * 13  # 243 characters
    assert len(long_name) == 243
    at = open_app("label_set")
    at.text_input(key="new_label_name").input(long_name).run()
    assert at.text_input(key="new_label_name").value == long_name  # not dropped
    expected = "Label names are at most 200 characters; this one has 243."
    assert expected in texts(at.error)
    at.button(key="add_label").click().run()
    errors = [texts([e]) for e in at.error]
    assert sum(expected in e for e in errors) == 1, errors  # said once, not twice
    assert "needs a name" not in texts(at.error)
    assert L.list_label_classes(db, project.id) == []
    at.text_input(key="new_label_name").input(long_name[:200]).run()
    assert not at.error
    at.button(key="add_label").click().run()
    db.rollback()
    cls = L.list_label_classes(db, project.id)[0]
    assert cls.name == long_name[:200].strip()
    # the same in a label's own panel
    at.text_input(key=f"lc_name_{cls.id}").input(long_name).run()
    assert expected in texts(at.error)
    at.button(key=f"lc_save_{cls.id}").click().run()
    assert sum(expected in texts([e]) for e in at.error) == 1
    db.rollback()
    assert L.list_label_classes(db, project.id)[0].name == long_name[:200].strip()


def test_the_service_says_the_limit_and_the_length(db, project):
    with pytest.raises(ServiceError, match="at most 200 characters; this one has 201"):
        L.add_label_class(db, project.id, "n" * 201)


# ---------------------------------------------------------------- header-only files


def test_a_header_only_csv_is_not_called_empty(db, project):
    at = paste(open_app("import_data"), "text,label\n")
    message = texts(at.error)
    assert "column names (text, label) but no data rows" in message
    assert "empty" not in message.lower()
    from app.services.predict import read_upload

    with pytest.raises(ServiceError, match=r"column names \(text\) but no data rows"):
        read_upload(b"text\r\n", "predict.csv")


# ---------------------------------------------------------------- suggested label words


@pytest.mark.parametrize("name, word", [
    ("An awful experience from start to finish", "awful"),
    ("The best of the year", "best"),
    ("Of interest to the sales team", "interest"),
    ("World", "world"),
    ("5 stars", "stars"),
    ("Not spam", "not"),  # a negation is meaning: "spam" would say the opposite
    ("The", "the"),  # stop words only: nothing better to offer
    ("", ""),
])
def test_a_stop_word_is_never_the_suggested_label_word(name, word):
    assert L.suggest_word(name) == word


def test_a_label_added_without_a_word_gets_a_content_word(db, project):
    cls = L.add_label_class(db, project.id, "An excellent, well made film")
    assert cls.verbalizer_word == "excellent"


def test_the_label_set_page_suggests_a_content_word(db, project):
    at = open_app("label_set")
    at.text_input(key="new_label_name").input("An awful experience").run()
    assert at.text_input(key="new_label_word").placeholder == "awful"


# ---------------------------------------------------------------- one upload limit


def test_the_uploader_the_page_and_the_server_agree_on_the_upload_limit(db, project):
    from app.services import predict
    from app.services.corpus import UPLOAD_LIMIT_MB

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == UPLOAD_LIMIT_MB
    at = open_app("import_data")
    assert f"up to {UPLOAD_LIMIT_MB} MB" in texts(at.info)
    uploader = at.get("file_uploader")[0]
    assert uploader.proto.max_upload_size_mb == UPLOAD_LIMIT_MB
    assert predict.MAX_UPLOAD_BYTES == UPLOAD_LIMIT_MB * 2**20


# ---------------------------------------------------------------- next steps


def _links(at) -> list[tuple[str, str]]:
    return [(p.proto.page, p.proto.label) for p in at.get("page_link")]


def test_labelling_offers_the_next_step_at_the_target(db, sentiment_project):
    pid = sentiment_project.id
    pos, neg = L.list_label_classes(db, pid)
    at = open_app("labelling")
    at.number_input(key="lab_target").set_value(4).run()
    assert not any("Next:" in label for _, label in _links(at))
    from db.models import Document

    docs = [d.id for d in db.query(Document).filter_by(project_id=pid).order_by(Document.id)]
    for doc, cls in zip(docs[:4], [pos, pos, neg, neg], strict=True):
        L.set_label(db, pid, doc, cls.id)
    at.run()
    assert not at.exception, at.exception
    nxt = [(page, label) for page, label in _links(at) if label.startswith("Next:")]
    assert len(nxt) == 1 and nxt[0][0] == "prompt", _links(at)
    assert "Next: Prompt design (4 / 4 labels" in nxt[0][1]


def test_next_step_is_training_once_a_prompt_is_saved():
    counts = [L.ClassCount(1, "a", 15, 15), L.ClassCount(2, "b", 15, 15)]
    assert L.next_step(counts, 30, has_prompt=False)[0] == "views/prompt.py"
    page, label = L.next_step(counts, 30, has_prompt=True)
    assert page == "views/train.py" and label.startswith("Next: Train")
    assert L.next_step(counts, 31, has_prompt=False) is None  # not there yet
    lopsided = [L.ClassCount(1, "a", 30, 15), L.ClassCount(2, "b", 0, 15)]
    assert L.next_step(lopsided, 30, has_prompt=False) is None  # a class without labels


def test_saving_the_prompt_offers_training_next(db, sentiment_project):
    at = open_app("prompt")
    assert not any(label.startswith("Next: Train") for _, label in _links(at))
    at.selectbox(key="pr_preset").set_value("sentiment")
    at.button(key="pr_use_preset").click().run()
    at.button(key="pr_save").click().run()
    assert "Saved prompt version 1" in texts(at.success)
    nxt = [(page, label) for page, label in _links(at) if label.startswith("Next: Train")]
    assert len(nxt) == 1 and nxt[0][0] == "train", _links(at)
