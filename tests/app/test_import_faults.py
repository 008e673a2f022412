"""Corpus import faults from the reliability probe (issue 17) and `datasets` in (issue 12),
through the service path the import page takes: open_table -> scan_table -> import_documents.
Each bad file is refused with a message that says what to fix, and nothing stored is lost."""

from __future__ import annotations

import random
import tracemalloc

import pandas as pd
import pytest
from sqlalchemy import func, select

from app.services import ServiceError, corpus
from db.models import Document, ImportBatch, Label, LabelClass
from tests.conftest import both_engines


def pytest_generate_tests(metafunc):
    both_engines(metafunc)  # the chunked import's queries run on SQLite and PostgreSQL


def docs(db, project_id) -> list[str]:
    db.rollback()  # a fresh snapshot
    return list(db.scalars(select(Document.text).where(Document.project_id == project_id)
                           .order_by(Document.id)))


def import_file(db, project_id, data: bytes, name: str, encoding: str = "auto", **columns):
    """What the page does: read the whole file once (preview), then import it in chunks."""
    table = corpus.open_table(data, name, encoding=encoding)
    info = corpus.scan_table(table)
    columns.setdefault("text_column", corpus.guess_text_column(info.sample))
    return corpus.import_documents(db, project_id, table, rows_expected=info.rows,
                                   filename=name, file_format=table.file_format, **columns)


@pytest.fixture()
def stored(db, project):
    """A project that already holds documents, which no failed import may touch."""
    corpus.import_documents(db, project.id, pd.DataFrame({"text": ["kept one", "kept two"]}),
                            text_column="text")
    return project


def assert_untouched(db, project) -> None:
    assert docs(db, project.id) == ["kept one", "kept two"]
    assert db.scalar(select(func.count()).select_from(ImportBatch)) == 1


def test_utf16_le_without_bom_imports_as_text_not_garbage(db, stored):
    data = "text,label\ncafé au lait,a\nnaïve question,b\n".encode("utf-16-le")
    report = import_file(db, stored.id, data, "windows.csv", label_column="label")
    assert report.imported == 2
    assert docs(db, stored.id)[2:] == ["café au lait", "naïve question"]


def test_ragged_rows_are_refused_with_line_numbers_and_nothing_is_imported(db, stored):
    data = b"text,label\nfine,a\nmissing label\nalso fine,b\ntoo,many,fields\n"
    with pytest.raises(ServiceError, match="line 3 has 1, line 5 has 3"):
        import_file(db, stored.id, data, "ragged.csv")
    assert_untouched(db, stored)


def test_binary_junk_read_as_latin1_is_refused(db, stored):
    junk = random.Random(1).randbytes(3_000)
    with pytest.raises(ServiceError, match="not a text file"):
        import_file(db, stored.id, junk, "junk.txt", encoding="latin-1")
    assert_untouched(db, stored)


def test_a_csv_without_a_text_column_warns(db, project):
    data = b"id,score\n1001,0.25\n1002,0.5\n1003,0.75\n"
    table = corpus.open_table(data, "numbers.csv")
    info = corpus.scan_table(table)
    column = corpus.guess_text_column(info.sample)
    assert "looks like numbers or codes" in corpus.text_column_warning(info.sample[column], column)
    report = corpus.import_documents(db, project.id, table, text_column=column)
    assert report.imported == 3
    assert len(report.warnings) == 1 and "contain no letter" in report.warnings[0]
    words = corpus.import_documents(db, project.id, pd.DataFrame({"text": ["a real text"]}),
                                    text_column="text")
    assert words.warnings == ()


def test_a_bad_line_late_in_a_big_file_rolls_back_every_chunk(db, stored):
    """The import reads and inserts chunk by chunk; a bad line after thousands of inserted
    rows must still leave nothing behind (one transaction)."""
    good = "".join(f"document {i},a\n" for i in range(12_000))
    data = ("text,label\n" + good + "broken row without label\n").encode()
    table = corpus.open_table(data, "late.csv")
    table.chunk_rows = 2_500
    with pytest.raises(ServiceError, match=r"line 12,002 has 1.*Nothing was imported"):
        corpus.import_documents(db, stored.id, table, text_column="text", label_column="label")
    assert_untouched(db, stored)


def test_chunked_import_dedups_across_chunks_and_labels_every_chunk(db, project):
    rows = [f"doc {i % 700},{'pos' if i % 2 else 'neg'}" for i in range(1_000)]
    table = corpus.open_table(("text,label\n" + "\n".join(rows) + "\n").encode(), "d.csv")
    table.chunk_rows = 300
    report = corpus.import_documents(db, project.id, table, text_column="text",
                                     label_column="label", labels_as_training=True,
                                     rows_expected=1_000)
    assert (report.rows_total, report.imported, report.duplicates) == (1_000, 700, 300)
    assert report.training_labels == 700
    assert sorted(db.scalars(select(LabelClass.name))) == ["neg", "pos"]
    assert db.scalar(select(func.count()).select_from(Label)) == 700
    again = import_file(db, project.id, b"text\ndoc 5\nnew doc\n", "again.csv")
    assert (again.imported, again.duplicates) == (1, 1)


@pytest.mark.sqlite_only
def test_import_memory_does_not_grow_with_the_file(db, project):
    """Python memory at the peak of an import (read + insert) is about the same for a file
    four times as big: the file is streamed, never held as Python objects whole."""

    def peak(n_rows: int, name: str) -> int:
        lines = "".join(f"the document number {i} says {'words ' * 20}{i},x\n"
                        for i in range(n_rows))
        data = ("text,label\n" + lines).encode()
        table = corpus.open_table(data, name)
        table.chunk_rows = 1_000
        tracemalloc.start()
        try:
            corpus.import_documents(db, project.id, table, text_column="text")
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, big = peak(3_000, "small.csv"), peak(12_000, "big.csv")
    assert big < 1.5 * small, (small, big)


def test_long_documents_import_and_too_long_ones_are_refused(db, stored):
    long_doc = "word " * 60_000  # 300,000 characters
    report = import_file(db, stored.id, f'text\n"{long_doc}"\nshort\n'.encode(), "long.csv")
    assert report.imported == 2 and len(docs(db, stored.id)[2]) == len(long_doc.strip())
    too_long = "x" * (corpus.reading.MAX_DOCUMENT_CHARS + 1)
    with pytest.raises(ServiceError, match="maximum document size"):
        import_file(db, stored.id, f"text\n{too_long}\n".encode(), "huge.csv")


def test_json_and_hub_offline_through_the_service(db, project, monkeypatch):
    report = import_file(db, project.id, b'[{"text": "from json"}]', "a.json")
    assert report.imported == 1
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ServiceError, match="Hub cannot be reached"):
        corpus.scan_table(corpus.open_table("someone/reviews"))


@pytest.fixture()
def datasets_folder(tmp_path):
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"])})
    train = datasets.Dataset.from_dict(
        {"sentence": ["a great film", "an awful film", "great fun"], "label": [1, 0, 1]},
        features=features)
    test = datasets.Dataset.from_dict({"sentence": ["dull"], "label": [0]}, features=features)
    datasets.DatasetDict({"train": train, "test": test}).save_to_disk(str(tmp_path / "reviews"))
    return tmp_path / "reviews"


def test_a_datasets_folder_imports_with_label_names(db, project, datasets_folder):
    assert corpus.dataset_splits(str(datasets_folder)) == ["train", "test"]
    table = corpus.open_table(str(datasets_folder), split="train")
    info = corpus.scan_table(table)
    assert (info.rows, info.columns, info.file_format) == (3, ["sentence", "label"], "datasets")
    report = corpus.import_documents(db, project.id, table, text_column="sentence",
                                     label_column="label", labels_as_training=True)
    assert (report.imported, report.training_labels) == (3, 3)
    assert sorted(db.scalars(select(LabelClass.name))) == ["negative", "positive"]
    with pytest.raises(ServiceError, match="pick one"):
        corpus.scan_table(corpus.open_table(str(datasets_folder)))


@pytest.mark.sqlite_only
def test_import_page_reads_a_datasets_folder(db, project, datasets_folder):
    from tests.app.test_pages import open_app, texts

    at = open_app("import_data")
    at.radio(key="import_source").set_value("A datasets folder or Hub id").run()
    at.text_input(key="dataset_source").input(str(datasets_folder)).run()
    assert at.selectbox(key="dataset_split").options == ["train", "test"]
    at.selectbox(key="dataset_split").set_value("test").run()
    assert not at.exception
    assert at.selectbox(key="col_text").value == "sentence"
    assert at.selectbox(key="col_label").value == "label"
    at.button(key="do_import").click().run()
    assert "1 documents imported" in texts(at.success)
    assert docs(db, project.id) == ["dull"]
    batch = db.scalar(select(ImportBatch))
    assert batch.file_format == "datasets" and batch.filename.endswith("reviews:test")


@pytest.mark.sqlite_only
def test_import_page_warns_about_a_numbers_column(db, project):
    from tests.app.test_pages import open_app, paste, texts

    at = paste(open_app("import_data"), "id,amount\n1,20.5\n2,31.0\n")
    assert "looks like numbers or codes" in texts(at.warning)
    at.button(key="do_import").click().run()
    assert "2 documents imported" in texts(at.warning) and not at.success  # not a success
    assert "contain no letter" in texts(at.warning)


@pytest.mark.sqlite_only
def test_a_flag_column_taken_as_the_text_is_not_called_a_success(db, project):
    from tests.app.test_pages import open_app, paste, texts

    rows = "\n".join(f"{i},{'y' if i % 3 else 'n'}" for i in range(50))
    at = paste(open_app("import_data"), "id,flag\n" + rows + "\n")
    assert at.selectbox(key="col_text").value == "flag"  # the only column with letters
    assert "looks like a label or a flag" in texts(at.warning)
    at.button(key="do_import").click().run()
    assert "2 documents imported, 0 empty rows skipped, 48 duplicates skipped" in texts(
        at.warning) and not at.success
    assert "Only 2 different texts in 50 rows" in texts(at.warning)


def test_short_or_few_values_warn_before_and_after_import(db, project):
    short = pd.DataFrame({"text": [f"ok {i}" for i in range(30)]})
    assert "very short values" in corpus.text_column_warning(short["text"], "text")
    report = corpus.import_documents(db, project.id, short, text_column="text")
    assert report.imported == 30 and "are under 8 characters" in report.warnings[0]
    few = pd.Series(["yes", "no"] * 15)
    assert "only 2 different values in 30 rows" in corpus.text_column_warning(few, "c")
    sentences = pd.Series([f"a real sentence number {i}" for i in range(30)])
    assert corpus.text_column_warning(sentences, "c") is None


@pytest.mark.sqlite_only
def test_import_page_refuses_bad_lines_before_importing(db, project):
    from tests.app.test_pages import open_app, paste, texts

    at = open_app("import_data")
    assert at.selectbox(key="import_encoding").value == "auto"
    at = paste(at, "text,label\nok,a\nbad\n")
    assert "line 3 has 1" in texts(at.error)
    assert "do_import" not in [b.key for b in at.button]
    assert docs(db, project.id) == []


@pytest.mark.sqlite_only
def test_import_page_upload_of_utf16_without_bom(db, project):
    from tests.app.test_pages import open_app, texts

    at = open_app("import_data")
    data = "text,label\ncafé au lait,a\nnaïve question,b\n".encode("utf-16-le")
    at.file_uploader(key="import_file_0").upload("windows.csv", data, "text/csv").run()
    assert not at.exception, at.exception
    assert "2 rows, 2 column(s). Read as UTF-16-LE." in texts(at.caption)
    at.button(key="do_import").click().run()
    assert "2 documents imported" in texts(at.success)
    assert docs(db, project.id) == ["café au lait", "naïve question"]


@pytest.mark.sqlite_only
def test_import_page_hub_id_offline_says_what_to_do(db, project, monkeypatch):
    from tests.app.test_pages import open_app, texts

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = open_app("import_data")
    at.radio(key="import_source").set_value("A datasets folder or Hub id").run()
    at.text_input(key="dataset_source").input("someone/reviews").run()
    assert not at.exception
    assert "Hub cannot be reached" in texts(at.error) and "save_to_disk" in texts(at.error)
    assert "do_import" not in [b.key for b in at.button]


# -- a large import lets others write between its chunks, and still undoes itself ----------


@pytest.fixture()
def commit_every_chunk(monkeypatch):
    """What a large import does: commit between chunks (here after every chunk)."""
    monkeypatch.setattr(corpus, "LOCK_HOLD_SECONDS", 0.0)


def test_a_chunk_committed_import_that_fails_late_leaves_nothing(db, stored, commit_every_chunk):
    good = "".join(f"document {i},label {i % 3}\n" for i in range(6_000))
    data = ("text,label\n" + good + "broken row without label\n").encode()
    table = corpus.open_table(data, "late.csv")
    table.chunk_rows = 1_000
    classes_before = db.scalar(select(func.count()).select_from(LabelClass))
    with pytest.raises(ServiceError, match=r"Nothing was imported"):
        corpus.import_documents(db, stored.id, table, text_column="text", label_column="label",
                                labels_as_training=True)
    assert_untouched(db, stored)  # documents, labels and the batch row are gone again
    assert db.scalar(select(func.count()).select_from(LabelClass)) == classes_before
    assert db.scalar(select(func.count()).select_from(Label)) == 0


@pytest.mark.sqlite_only
def test_others_can_write_while_a_large_import_runs(db, project, commit_every_chunk):
    """Between chunks the import releases SQLite's write lock: a label saved from another
    connection meanwhile goes in at once, not after the whole import."""
    import threading
    import time

    from app.services import labelling
    from db.session import get_session

    corpus.import_documents(db, project.id, pd.DataFrame({"text": ["first"]}), text_column="text")
    cls = labelling.add_label_class(db, project.id, "a")
    first_id = db.scalar(select(Document.id).where(Document.text == "first"))
    n_rows = 60_000  # several seconds of import even on a fast, quiet machine
    rows = "".join(f"row {i}\n" for i in range(n_rows))
    table = corpus.open_table(("text\n" + rows).encode(), "big.csv")
    table.chunk_rows = 500
    saved_at = []

    def label_meanwhile():
        time.sleep(0.5)
        with get_session() as s:
            labelling.set_label(s, project.id, first_id, cls.id)
            saved_at.append(time.monotonic())

    other = threading.Thread(target=label_meanwhile)
    other.start()
    report = corpus.import_documents(db, project.id, table, text_column="text")
    import_ended = time.monotonic()
    other.join()
    assert report.imported == n_rows
    # the label went in while the import still ran, not after it released the database
    assert saved_at and saved_at[0] < import_ended, (saved_at, import_ended)
