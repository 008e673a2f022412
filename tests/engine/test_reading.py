"""The one file reader (list_engine/reading.py): every format, and every bad file refused
with a message that says what to fix (issues 15 and 17)."""

from __future__ import annotations

import io
import json
import random
import time

import pandas as pd
import pytest

from list_engine.reading import (
    MAX_DOCUMENT_CHARS,
    ReadError,
    Table,
    dataset_splits,
    guess_text_column,
    read_table,
    split_source,
    text_column_warning,
)

CSV = "text,label\nhello world,a\n\"quoted, comma\",b\n\"two\nlines\",a\n"


def rows(df: pd.DataFrame) -> list[list[str]]:
    return df.to_numpy().tolist()


@pytest.mark.parametrize(("data", "name", "expected"), [
    (CSV.encode(), "a.csv", [["hello world", "a"], ["quoted, comma", "b"], ["two\nlines", "a"]]),
    (b"text;label\nbonjour, le monde;a\n", "eu.csv", [["bonjour, le monde", "a"]]),
    (b"text\tlabel\ntabbed, text\tb\n", "tabs.csv", [["tabbed, text", "b"]]),
    (b'text\tlabel\nsay "hi"\tx\n', "f.tsv", [['say "hi"', "x"]]),
    (b'{"text": "one", "n": 1}\n\n{"text": "two", "x": [1]}\n', "f.jsonl",
     [["one", "1", ""], ["two", "", "[1]"]]),
    (b'[{"text": "one", "label": "a"}, {"text": "two", "label": null}]', "f.json",
     [["one", "a"], ["two", ""]]),
    (b'{"data": [{"text": "one"}]}', "wrapped.json", [["one"]]),
    (b'{"text": ["one", "two"], "label": ["a", "b"]}', "columns.json", [["one", "a"], ["two", "b"]]),
    (b'{"text": "one"}\n{"text": "two"}\n', "lines.json", [["one"], ["two"]]),
    ("first line\r\nzweite Zeile ä\n\nlast".encode(), "f.txt",
     [["first line"], ["zweite Zeile ä"], [""], ["last"]]),
    (b"text,label,\na,b,\n", "trailing-comma.csv", [["a", "b", ""]]),
    (b"\xef\xbb\xbftext\nbom\n", "bom.csv", [["bom"]]),
])
def test_formats(data, name, expected):
    assert rows(read_table(data, name=name)) == expected


def test_parquet_values_become_strings():
    buf = io.BytesIO()
    pd.DataFrame({"body": ["p1", None], "score": [1, 2], "tags": [["a"], []]}).to_parquet(buf)
    df = read_table(buf.getvalue(), name="x.parquet")
    assert rows(df) == [["p1", "1", '["a"]'], ["", "2", "[]"]]


def test_utf16_without_bom_is_detected():
    text = "text,label\ncafé au lait,a\nnaïve,b\n"
    for codec in ("utf-16-le", "utf-16-be", "utf-16"):
        table = Table(text.encode(codec), name="u.csv")
        assert rows(table.read()) == [["café au lait", "a"], ["naïve", "b"]]
    assert table.encoding_used == "utf-16"
    # The user's 8-bit choice cannot turn UTF-16 into NUL-riddled garbage.
    table = Table(text.encode("utf-16-le"), name="u.csv", encoding="latin-1")
    assert rows(table.read())[0] == ["café au lait", "a"] and table.encoding_used == "utf-16-le"


def test_ragged_rows_are_refused_with_their_line_numbers():
    data = b"text,label\na,b\nshort\nc,d\ne,f,g\n\"multi\nline\",h\ni\n"
    with pytest.raises(ReadError) as err:
        read_table(data, name="ragged.csv")
    message = str(err.value)
    assert "3 row(s) do not have the 2 field(s)" in message
    assert "line 3 has 1" in message and "line 5 has 3" in message and "line 8 has 1" in message
    assert "delimiter is a comma" in message


def test_ragged_rows_late_in_a_chunked_file_are_refused_too():
    data = ("text,label\n" + "doc,a\n" * 2_500 + "short\n").encode()
    table = Table(data, name="late.csv", chunk_rows=1_000)
    with pytest.raises(ReadError, match="line 2,502 has 1"):
        list(table)


def test_binary_junk_is_not_a_text_file_whatever_the_encoding():
    junk = random.Random(0).randbytes(4_000)
    for encoding in ("latin-1", "cp1252", "auto"):
        with pytest.raises(ReadError, match="not a text file"):
            read_table(junk, name="junk.txt", encoding=encoding)


@pytest.mark.parametrize(("data", "what"), [
    (b"PK\x03\x04" + bytes(100), "ZIP archive"),
    (b"%PDF-1.7\n" + bytes(100), "PDF"),
    (b"PAR1" + bytes(100), "Parquet file"),
    (b"SQLite format 3\x00" + bytes(100), "SQLite"),
])
def test_known_binary_formats_are_named(data, what):
    with pytest.raises(ReadError, match=what):
        read_table(data, name="x.csv")


@pytest.mark.parametrize(("data", "name", "message"), [
    (b"", "empty.csv", "empty"),
    (b"  \n\n", "blank.txt", "empty"),
    (b"text\n", "header.csv", "no data rows"),
    (b'text,label\n"unclosed,a\nb,c\n', "open.csv", "Malformed CSV: a quoted field is not closed"),
    (b'text,label\n"a"b,c\n', "stray.csv", "Malformed CSV"),
    (b"a,a\n1,2\n", "dup.csv", "two columns named 'a'"),
    (b"caf\xe9 au lait\n", "latin1.txt", r"not valid UTF-8 text \(undecodable byte 0xe9 at byte 3, line 1\)"),
    (b'{"text": "ok"}\n{"text": broken}\n', "bad.jsonl", "line 2 is not valid JSON"),
    (b'["a list"]\n', "list.jsonl", "not an object"),
    (b'{"text": "a", "n": [1, 2', "bad.json", "Malformed JSON"),
    (b'"just a string"', "str.json", "list of objects"),
    (b"not parquet at all", "x.parquet", "Not a readable Parquet file"),
    (b"a\n", "x.docx", "Unsupported file type"),
    (b"a\n", "x.xlsx", "save the sheet as CSV"),
    (b"a\x00b\n", "nul.txt", "not a text file"),
    (b"text\n" + b"ok\n" * 30_000 + b"x\x00y\n", "late-nul.txt", "Line 30,002 contains a NUL"),
])
def test_bad_files_give_clear_messages(data, name, message):
    with pytest.raises(ReadError, match=message):
        read_table(data, name=name)


def test_an_undecodable_byte_deep_in_a_big_file_is_located_exactly():
    data = b"text\n" + b"fine line\n" * 200_000 + b"caf\xe9\n"
    with pytest.raises(ReadError, match="at byte 2,000,008, line 200,002"):
        read_table(data, name="big.csv")
    assert read_table(data, name="big.csv", encoding="cp1252")["text"].iloc[-1] == "café"


def test_no_field_size_limit_short_of_the_maximum_document_size(tmp_path):
    long_doc = "word " * 60_000  # 300,000 characters: over the csv module's default 131,072
    path = tmp_path / "long.csv"
    pd.DataFrame({"text": [long_doc, "short"], "label": ["a", "b"]}).to_csv(path, index=False)
    assert read_table(path)["text"].tolist() == [long_doc, "short"]

    too_long = "x" * (MAX_DOCUMENT_CHARS + 1)
    for data, name in ((f'text\n"{too_long}"\n'.encode(), "huge.csv"),
                       (f"{too_long}\n".encode(), "huge.txt"),
                       (json.dumps({"text": too_long}).encode(), "huge.jsonl")):
        with pytest.raises(ReadError, match=f"{MAX_DOCUMENT_CHARS:,}.* the maximum document size"):
            read_table(data, name=name)


def test_chunks_are_numbered_across_the_file_and_the_table_reads_again():
    data = "text\n" + "".join(f"doc {i}\n" for i in range(25))
    table = Table(data.encode(), name="c.csv", chunk_rows=10)
    first = list(table)
    assert [len(c) for c in first] == [10, 10, 5]
    assert first[2].index.tolist() == list(range(20, 25))
    assert [c["text"].tolist() for c in table] == [c["text"].tolist() for c in first]
    info = table.scan(sample_rows=3)
    assert (info.rows, info.columns, info.sample["text"].tolist()) == \
        (25, ["text"], ["doc 0", "doc 1", "doc 2"])


def test_a_file_object_is_read_but_not_closed(tmp_path):
    fh = io.BytesIO(CSV.encode())
    fh.name = "upload.csv"
    assert len(Table(fh).read()) == 3 and len(Table(fh).read()) == 3
    assert not fh.closed


def test_jsonl_columns_are_the_union_of_all_keys():
    lines = [json.dumps({"text": f"t{i}"}) for i in range(5)] + [json.dumps({"text": "x", "k": 1})]
    table = Table("\n".join(lines).encode(), name="u.jsonl", chunk_rows=2)
    assert table.scan().columns == ["text", "k"]
    assert table.read()["k"].tolist() == [""] * 5 + ["1"]


def test_text_column_guess_and_warning_for_numbers():
    df = pd.DataFrame({"id": ["1200345", "1200346"], "score": ["0.51234567", "0.9"],
                       "words": ["good", "bad"]})
    assert guess_text_column(df) == "words"  # not the longer number columns
    assert guess_text_column(pd.DataFrame({"a": ["1", "2"], "b": ["100", "200"]})) == "b"
    assert text_column_warning(df["words"], "words") is None
    warning = text_column_warning(df["score"], "score")
    assert "looks like numbers or codes" in warning and "100%" in warning
    assert text_column_warning(pd.Series(["2024-01-01", "Paris", "Lyon"]), "c") is None


def test_split_source():
    assert split_source("data/sst2:train") == ("data/sst2", "train")
    assert split_source("stanfordnlp/imdb:test") == ("stanfordnlp/imdb", "test")
    assert split_source("plain.csv") == ("plain.csv", None)
    assert split_source(r"C:\data\x.csv") == (r"C:\data\x.csv", None)


@pytest.fixture(scope="module")
def saved_datasets(tmp_path_factory):
    import datasets

    root = tmp_path_factory.mktemp("datasets")
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    train = datasets.Dataset.from_dict({"sentence": ["a good film", "a bad film", "fine"],
                                        "label": [1, 0, -1]}, features=features)
    train.save_to_disk(str(root / "single"))
    datasets.DatasetDict({"train": train, "test": train.select([0])}).save_to_disk(
        str(root / "dict"))
    (root / "not-a-dataset").mkdir()
    return root


def test_a_datasets_folder_reads_with_label_names(saved_datasets):
    df = read_table(saved_datasets / "single")
    assert rows(df) == [["a good film", "pos"], ["a bad film", "neg"], ["fine", ""]]
    assert dataset_splits(str(saved_datasets / "dict")) == ["train", "test"]
    assert dataset_splits(str(saved_datasets / "single")) == []
    assert rows(read_table(saved_datasets / "dict", split="test")) == [["a good film", "pos"]]
    with pytest.raises(ReadError, match="holds the splits train, test: pick one"):
        read_table(saved_datasets / "dict")
    with pytest.raises(ReadError, match="no split 'dev'"):
        read_table(saved_datasets / "dict", split="dev")
    with pytest.raises(ReadError, match="not a dataset saved with `save_to_disk`"):
        read_table(saved_datasets / "not-a-dataset")


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"},
                                 {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "https://127.0.0.1:9"}])
def test_a_hub_id_without_a_hub_fails_fast_with_advice(monkeypatch, env):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    start = time.monotonic()
    with pytest.raises(ReadError, match=r"Hub cannot be reached.*save_to_disk"):
        read_table("someone/some-dataset")
    with pytest.raises(ReadError, match="Hub cannot be reached"):
        dataset_splits("someone/some-dataset")
    assert time.monotonic() - start < 10


def test_missing_file_and_split_on_a_file(tmp_path):
    with pytest.raises(ReadError, match="No such file or folder"):
        Table(tmp_path / "missing.csv")
    (tmp_path / "a.csv").write_text("text\nx\n")
    with pytest.raises(ReadError, match="only applies to a `datasets` folder"):
        Table(tmp_path / "a.csv", split="train")


def test_a_big_csv_streams_in_bounded_chunks():
    data = ("text,label\n" + "".join(f"document {i} {'w' * 50},x\n" for i in range(30_000))).encode()
    sizes = [len(c) for c in Table(data, name="big.csv", chunk_rows=4_096)]
    assert sum(sizes) == 30_000 and max(sizes) == 4_096
