"""Bad input, everywhere it can enter (issue 15): one table of kinds of bad input, each tried
through the path a user takes (the service functions the pages call, or the command line),
expecting a clear message that says what to fix, no traceback, and nothing stored changed.

Kinds already tested elsewhere are listed in ELSEWHERE with the test that covers them (a test
below checks those tests still exist), so this table does not repeat them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from app.services import ServiceError, corpus, labelling, predict, projects, prompts, training
from db.models import (
    Document,
    ImportBatch,
    Label,
    LabelClass,
    LabelEvent,
    Project,
    PromptConfig,
    Run,
)
from tests.conftest import ROOT

TABLES = (Project, ImportBatch, Document, LabelClass, Label, LabelEvent, PromptConfig, Run)
TEMPLATE = "{text} It was {mask}."


@dataclass(frozen=True)
class Case:
    kind: str
    attempt: Callable  # (session, project, tokenizer) -> None; must raise ServiceError
    message: str  # regex the message must match: it says what to fix


def import_bytes(data: bytes, name: str):
    def attempt(s, project, _tok):
        table = corpus.open_table(data, name)
        info = corpus.scan_table(table)
        corpus.import_documents(s, project.id, table, rows_expected=info.rows, filename=name,
                                file_format=table.file_format,
                                text_column=corpus.guess_text_column(info.sample))
    return attempt


def import_frame(df: pd.DataFrame, **columns):
    def attempt(s, project, _tok):
        corpus.import_documents(s, project.id, df, **columns)
    return attempt


def save_prompt(template: str, words: dict):
    def attempt(s, project, tok):
        prompts.save_prompt_config(s, project.id, template=template, verbalizer=words,
                                   model="default", tokenizer=tok)
    return attempt


def custom_training(**knobs):
    def attempt(_s, _project, _tok):
        training.build_list_config("custom", knobs)
    return attempt


def start_training():
    def attempt(s, project, _tok):
        config = s.scalar(select(PromptConfig).where(PromptConfig.project_id == project.id))
        training.start_training(s, project.id, config.id, eval_source="none",
                                list_config=training.build_list_config("quick"))
    return attempt


def label_class(name: str):
    def attempt(s, project, _tok):
        labelling.add_label_class(s, project.id, name)
    return attempt


def project_named(name: str):
    def attempt(s, _project, _tok):
        projects.create_project(s, name)
    return attempt


def label_unknown_document(s, project, _tok):
    labelling.set_label(s, project.id, 10**9, None)


CASES = [
    Case("empty file", import_bytes(b"", "empty.csv"), "file is empty"),
    Case("header without rows", import_bytes(b"text\n", "header.csv"), "no data rows"),
    Case("binary file named .csv", import_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
                                               "photo.csv"), "PNG image, not a text file"),
    Case("wrong encoding (latin-1 read as UTF-8)",
         import_bytes("text\ncafé crème\n".encode("latin-1"), "latin1.csv"),
         r"not valid UTF-8 .*line 2.*cp1252 or latin-1"),
    Case("malformed JSONL", import_bytes(b'{"text": "a"}\n{"text": \n', "bad.jsonl"),
         r"Malformed JSONL: line 2"),
    Case("malformed Parquet", import_bytes(b"PAR1\x00\x01 not really parquet", "bad.parquet"),
         "Not a readable Parquet file"),
    Case("huge field (over the maximum document size)",
         import_bytes(b'text\n"' + b"x" * 1_000_001 + b'"\n', "huge.csv"),
         r"1,000,001 characters.*maximum document size.*Split"),
    Case("text column that does not exist", import_frame(pd.DataFrame({"body": ["a"]}),
                                                        text_column="text"),
         "'text' is not in the file. Columns found: 'body'"),
    Case("template without a mask", save_prompt("{text} It was great.",
                                                {"positive": "great", "negative": "bad"}),
         r"no \{mask\}: add one"),
    Case("template with two masks", save_prompt("{text} {mask} It was {mask}.",
                                                {"positive": "great", "negative": "bad"}),
         r"2 \{mask\} placeholders: keep exactly one"),
    Case("multi-token label word", save_prompt(TEMPLATE, {"positive": "great",
                                                          "negative": "unwatchably"}),
         r"'unwatchably' .* is 3 tokens .* exactly one known token"),
    Case("duplicate label words", save_prompt(TEMPLATE, {"positive": "great",
                                                         "negative": "great"}),
         r"duplicate label word.*'great'.*its own word"),
    Case("label word for a label the project lacks",
         save_prompt(TEMPLATE, {"positive": "great", "negative": "bad", "other": "meh"}),
         "not in the project: other"),
    Case("zero labels", start_training(), r"No training label yet for: positive, negative"),
    Case("negative learning rate", custom_training(teacher_lr=-1e-3),
         r"teacher_lr must be a finite number > 0, got -0.001"),
    Case("NaN learning rate", custom_training(teacher_lr=float("nan")),
         r"teacher_lr must be a finite number > 0, got nan"),
    Case("10^9 steps", custom_training(teacher_steps=10**9),
         r"teacher_steps must be an int from 0 to 1,000,000"),
    Case("negative rounds", custom_training(rounds=-1), r"rounds must be an int from 0"),
    Case("duplicate label name (other case)", label_class("POSITIVE"), "already a label"),
    Case("empty label name", label_class("   "), "needs a name"),
    Case("empty project name", project_named(""), "needs a name"),
    Case("over-long project name", project_named("x" * 201), "too long"),
    Case("label for a document that is not there", label_unknown_document, "not in this project"),
]

# Kinds covered by tests elsewhere (the same paths); test_elsewhere_still_exists keeps this true.
ELSEWHERE = {
    "UTF-16 without a BOM": "tests/app/test_import_faults.py::test_utf16_le_without_bom_imports_as_text_not_garbage",
    "ragged CSV rows": "tests/app/test_import_faults.py::test_ragged_rows_are_refused_with_line_numbers_and_nothing_is_imported",
    "a bad line late in a huge file": "tests/app/test_import_faults.py::test_a_bad_line_late_in_a_big_file_rolls_back_every_chunk",
    "huge file (memory stays bounded)": "tests/app/test_import_faults.py::test_import_memory_does_not_grow_with_the_file",
    "special tokens as label words": "tests/engine/test_hostile_numbers.py::test_special_tokens_are_not_label_words",
    "inf / negative seed / 0 adapter size": "tests/app2/test_training_service.py::test_hostile_custom_settings_are_clear_errors",
    "one class": "tests/app2/test_training_service.py::test_refuses_fewer_than_two_classes",
    "a class without labels": "tests/app2/test_training_service.py::test_refuses_a_class_without_labels",
    "non-finite loss while training": "tests/engine/test_hostile_numbers.py::test_a_non_finite_loss_stops_training_with_a_clear_message",
    "CLI: bad --config and --out": "tests/engine/test_hostile_numbers.py::test_cli_train_refuses_bad_config_and_out_before_training",
    "CLI: a 300,000-character document": "tests/engine/test_cli_data.py::test_cli_trains_and_predicts_with_a_300000_character_document",
    "formula-looking texts in prediction CSVs": "tests/engine/test_hostile_numbers.py::test_cli_predictions_are_safe_to_open_in_a_spreadsheet",
    "HTML, script and Markdown in texts and names, shown in Chromium": "tests/app/test_hostile_text_browser.py::test_hostile_text_stays_text_on_every_page",
}


def snapshot(s) -> dict:
    s.rollback()  # a fresh read
    return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in TABLES}


@pytest.fixture()
def db(data_env):
    from db.migrate import upgrade_to_head
    from db.session import get_session

    upgrade_to_head()
    with get_session() as session:
        yield session


@pytest.fixture()
def ready(db, tiny_bert_dir):
    """A project with documents, two labels (no labels given yet) and a saved prompt."""
    from transformers import AutoTokenizer

    project = projects.create_project(db, "Bad input")
    corpus.import_documents(db, project.id, pd.DataFrame({"text": ["good film", "bad film",
                                                                   "fine film"]}),
                            text_column="text")
    labelling.add_label_class(db, project.id, "positive", "", "great")
    labelling.add_label_class(db, project.id, "negative", "", "bad")
    prompts.save_prompt_config(db, project.id, template=TEMPLATE,
                               verbalizer={"positive": "great", "negative": "bad"},
                               model="default")
    return project, AutoTokenizer.from_pretrained(str(tiny_bert_dir))


def test_the_table_is_big_enough():
    assert len(CASES) + len(ELSEWHERE) >= 20 and len(CASES) >= 20


@pytest.mark.parametrize("case", CASES, ids=[c.kind for c in CASES])
def test_bad_input_is_a_clear_error_and_stores_nothing(db, ready, case):
    project, tok = ready
    before = snapshot(db)
    with pytest.raises(ServiceError) as err:
        case.attempt(db, project, tok)
    message = str(err.value)
    assert re.search(case.message, message), message
    assert "Traceback" not in message and len(message) < 600
    db.rollback()
    assert snapshot(db) == before  # no partial rows


def test_zero_rounds_is_a_teacher_only_run_by_design():
    """0 rounds is not an error: it trains the teacher and skips self-training."""
    cfg = training.build_list_config("custom", {"rounds": 0})
    assert cfg["rounds"] == 0


def test_path_traversal_in_names_stays_inside_the_data_dir(db, data_env):
    project = projects.create_project(db, "../../etc/passwd")  # a name is just text
    from db.label_export import file_name

    assert "/" not in file_name(project.name, "csv") and ".." not in file_name(project.name, "csv")
    saved = predict.save_upload(project.id, b"text\nhello\n", "../../../evil.csv", "text")
    assert saved.resolve().is_relative_to(data_env.data_dir.resolve())
    assert saved.parent.name == f"project-{project.id}"


def test_html_in_texts_and_names_is_stored_as_text(db, ready):
    project, _ = ready
    hostile = "<script>alert(1)</script> **bold** [x](javascript:alert(1))"
    report = corpus.import_documents(db, project.id, pd.DataFrame({"text": [hostile]}),
                                     text_column="text")
    assert report.imported == 1
    assert db.scalar(select(Document.text).where(Document.text == hostile)) == hostile


def test_cli_refuses_an_empty_labelled_file_without_a_traceback(tmp_path):
    (tmp_path / "labeled.csv").write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, "-m", "list_engine", "train", "--labeled", str(tmp_path / "labeled.csv"),
         "--verbalizer", '{"neg": "terrible", "pos": "great"}', "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "empty" in proc.stderr.lower(), proc.stderr[-2000:]
    assert not (tmp_path / "out").exists()


def test_elsewhere_still_exists():
    for kind, node in ELSEWHERE.items():
        path, name = node.split("::")
        assert f"def {name}(" in (Path(ROOT) / path).read_text(), kind
