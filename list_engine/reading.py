"""One reader for every table a user hands over.

The app's corpus import and prediction upload, the worker's predict input and the command
line all read files through `Table`, so they accept the same formats and fail with the same
messages: CSV (',' ';' '|' or tab, sniffed from the header), TSV, JSONL, JSON (a list of
objects), TXT (one document per line), Parquet, and a Hugging Face `datasets` folder
(`save_to_disk`) or Hub id.

Every cell comes back as a Python string ('' when missing). Tables are read in chunks of
rows (`for chunk in table`), so a big import never holds the whole file as Python objects,
and a `Table` can be read again from the start (a retried transaction reads it twice).

Refused with a `ReadError` whose message says what to fix: binary files, undecodable bytes
(the line is named), UTF-16 without a byte-order mark is detected and read as UTF-16, CSV
rows whose field count differs from the header (their line numbers), malformed JSON lines,
documents longer than `MAX_DOCUMENT_CHARS`, and a Hub id while the Hub is unreachable.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

# The longest document accepted (characters, any column): about 500 pages. The model reads
# only its first few hundred tokens, so longer inputs are almost surely a broken file.
MAX_DOCUMENT_CHARS = 1_000_000
CHUNK_ROWS = 10_000  # rows per chunk a Table yields
SAMPLE_BYTES = 1 << 16  # how much of a file encoding and binary detection look at

FORMATS = ("csv", "tsv", "jsonl", "json", "txt", "parquet", "datasets")
EXTENSIONS = {
    "csv": "csv", "tsv": "tsv", "tab": "tsv", "jsonl": "jsonl", "ndjson": "jsonl",
    "json": "json", "txt": "txt", "text": "txt", "parquet": "parquet", "pq": "parquet",
}
UPLOAD_TYPES = sorted(EXTENSIONS)  # file extensions an upload widget should accept
ENCODINGS = ("auto", "utf-8", "utf-16", "utf-16-le", "utf-16-be", "cp1252", "latin-1")
TXT_COLUMN = "text"  # the one column of a .txt file
TEXT_NAMES = ("text", "sentence", "document", "content", "body", "review", "text_a")
LABEL_NAMES = ("label", "labels", "class", "category", "gold", "target", "topic")
FORMATS_HELP = ("CSV, TSV, JSONL, JSON, TXT (one document per line), Parquet, or a "
                "`datasets` folder")


class ReadError(ValueError):
    """A table that cannot be read; the message says what to fix."""


def detect_format(name: str) -> str:
    """The format of a file, from its extension."""
    ext = Path(name).suffix.lower().lstrip(".")
    if ext in EXTENSIONS:
        return EXTENSIONS[ext]
    if ext in ("xlsx", "xlsm", "xls", "ods"):
        raise ReadError("Spreadsheets are not read directly: save the sheet as CSV (UTF-8) "
                        "and use that file.")
    shown = ("." + ext) if ext else "(no extension)"
    raise ReadError(f"Unsupported file type {shown}: use .csv, .tsv, .jsonl, .json, "
                    ".txt (one document per line) or .parquet, or a `datasets` folder.")


def split_source(spec: str) -> tuple[str, str | None]:
    """'DIR:train' -> ('DIR', 'train'): a split of a `datasets` folder or Hub id, for the
    command line. A spec that exists as a path is taken whole."""
    if Path(spec).exists() or ":" not in spec:
        return spec, None
    source, _, split = spec.rpartition(":")
    if source and re.fullmatch(r"[\w.-]+", split):
        return source, split
    return spec, None


@dataclass(frozen=True)
class TableInfo:
    """What a full pass over a table found (for a preview before importing)."""

    columns: list[str]
    rows: int
    sample: pd.DataFrame  # the first rows
    file_format: str
    encoding: str | None  # the text encoding read with; None for Parquet and datasets


class Table:
    """A table to read: bytes, a binary file object, a file path, a `datasets` folder or a
    Hub dataset id. Iterating yields DataFrames of strings of at most `chunk_rows` rows,
    indexed by row number across the whole table; each iteration starts from the top."""

    def __init__(self, source: bytes | str | os.PathLike | IO[bytes], *, name: str = "",
                 file_format: str | None = None, encoding: str = "auto",
                 split: str | None = None, chunk_rows: int = CHUNK_ROWS):
        self.source = source
        self.name = name or getattr(source, "name", "") or (
            "" if isinstance(source, (bytes, bytearray, memoryview)) else str(source))
        self.encoding = encoding or "auto"
        self.split = split
        self.chunk_rows = chunk_rows
        self.encoding_used: str | None = None
        self._path: Path | None = None
        if isinstance(source, (bytes, bytearray, memoryview)) or hasattr(source, "read"):
            fmt = file_format or detect_format(self.name)
        else:
            path = Path(source)
            if path.is_dir():
                fmt = "datasets"
            elif path.is_file():
                self._path = path
                fmt = file_format or detect_format(self.name)
            elif file_format == "datasets" or _looks_like_hub_id(str(source)):
                fmt = "datasets"
            else:
                raise ReadError(f"No such file or folder: {source}")
        if fmt not in FORMATS:
            raise ReadError(f"Unknown format {fmt!r}; expected one of {', '.join(FORMATS)}.")
        if split is not None and fmt != "datasets":
            raise ReadError(f"A split ({split!r}) only applies to a `datasets` folder or Hub "
                            "id, not to a file.")
        self.file_format = fmt

    # ------------------------------------------------------------------ public
    def __iter__(self) -> Iterator[pd.DataFrame]:
        rows = 0
        for chunk in self._chunks():
            _check_sizes(chunk)
            rows += len(chunk)
            yield chunk
        if rows == 0:
            raise ReadError("The file has no data rows.")

    def read(self) -> pd.DataFrame:
        """The whole table as one DataFrame (for small inputs: the CLI, a prediction upload)."""
        chunks = list(self)
        columns = list(dict.fromkeys(c for chunk in chunks for c in chunk.columns))
        return pd.concat([c.reindex(columns=columns, fill_value="") for c in chunks])

    def scan(self, sample_rows: int = 1000) -> TableInfo:
        """Read the whole table once, keeping only its columns, row count and first rows."""
        columns: dict[str, None] = {}
        rows, sample = 0, None
        for chunk in self:
            columns.update(dict.fromkeys(chunk.columns))
            if sample is None:
                sample = chunk.head(sample_rows).copy()
            rows += len(chunk)
        sample = sample.reindex(columns=list(columns), fill_value="")
        return TableInfo(columns=list(columns), rows=rows, sample=sample,
                         file_format=self.file_format, encoding=self.encoding_used)

    # ------------------------------------------------------------------ formats
    def _chunks(self) -> Iterator[pd.DataFrame]:
        if self.file_format == "datasets":
            yield from self._dataset_chunks()
        elif self.file_format == "parquet":
            yield from self._parquet_chunks()
        else:
            with self._lines() as lines:
                if self.file_format == "csv":
                    yield from _delimited_chunks(lines, None, "CSV", self.chunk_rows)
                elif self.file_format == "tsv":
                    yield from _delimited_chunks(lines, "\t", "TSV", self.chunk_rows)
                elif self.file_format == "jsonl":
                    yield from _jsonl_chunks(lines, self.chunk_rows)
                elif self.file_format == "json":
                    yield from _json_chunks(lines, self.chunk_rows)
                else:
                    yield from _txt_chunks(lines, self.chunk_rows)

    @contextmanager
    def _binary(self) -> Iterator[IO[bytes]]:
        if self._path is not None:
            with open(self._path, "rb") as fh:
                yield fh
        elif hasattr(self.source, "read"):
            self.source.seek(0)  # the caller's file: read it, never close it
            yield self.source
        else:
            yield io.BytesIO(self.source)  # shares the bytes: no copy

    @contextmanager
    def _lines(self) -> Iterator[Iterator[str]]:
        """The file's lines, decoded and checked (line endings kept, as csv wants them)."""
        with self._binary() as raw:
            sample = raw.read(SAMPLE_BYTES)
            if not sample.strip(b" \t\r\n\x00\xef\xbb\xbf\xfe\xff"):
                raise ReadError("The file is empty.")
            codec = _choose_encoding(sample, self.encoding)
            if not codec.startswith(("utf-16", "utf-32")):
                _refuse_binary(sample)
            self.encoding_used = codec.replace("utf-8-sig", "utf-8")
            raw.seek(0)
            stream = io.TextIOWrapper(raw, encoding=codec, errors="strict", newline="")
            try:
                yield _checked_lines(stream, lambda: self._decode_error(codec))
            finally:
                stream.detach()  # leave the underlying file to its owner

    def _decode_error(self, codec: str) -> ReadError:
        """Where exactly the first undecodable byte is (only on the error path)."""
        decoder = codecs.getincrementaldecoder(codec)("strict")
        offset, lines = 0, 1
        with self._binary() as raw:
            raw.seek(0)
            while block := raw.read(1 << 20):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    # exc.object may start with up to 3 bytes held over from the last block
                    held = len(exc.object) - len(block)
                    at = max(exc.start - held, 0)
                    lines += block[:at].count(b"\n")
                    return _decode_message(codec, exc.object[exc.start], offset + at, lines)
                offset += len(block)
                lines += block.count(b"\n")
        return _decode_message(codec, None, offset, lines)

    def _parquet_chunks(self) -> Iterator[pd.DataFrame]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        with self._binary() as raw:
            start = 0
            try:
                parquet = pq.ParquetFile(raw)
                batches = parquet.iter_batches(batch_size=self.chunk_rows)
                for batch in batches:
                    frame = _as_strings(batch.to_pandas(), start)
                    start += len(frame)
                    yield frame
            except (pa.ArrowException, OSError) as exc:
                raise ReadError(f"Not a readable Parquet file: {exc}") from None

    def _dataset(self):
        import datasets

        source = str(self.source)
        if Path(source).is_dir():
            try:
                data = datasets.load_from_disk(source)
            except FileNotFoundError:
                raise ReadError(
                    f"{source} is a folder but not a dataset saved with `save_to_disk` "
                    "(it has no dataset_info.json / state.json). Give a folder written by "
                    "`Dataset.save_to_disk` or `DatasetDict.save_to_disk`, or a file."
                ) from None
        else:
            data = _load_hub_dataset(source, self.split)
        if isinstance(data, datasets.DatasetDict):
            splits = list(data)
            if self.split is None and len(splits) == 1:
                return data[splits[0]]
            if self.split is None:
                raise ReadError(f"{source} holds the splits {', '.join(splits)}: pick one "
                                f"(on the command line: {source}:{splits[0]}).")
            if self.split not in data:
                raise ReadError(f"{source} has no split {self.split!r}; its splits are "
                                f"{', '.join(splits)}.")
            return data[self.split]
        if self.split is not None and Path(source).is_dir():
            raise ReadError(f"{source} holds one dataset, not splits: leave out the split "
                            f"({self.split!r}).")
        return data

    def _dataset_chunks(self) -> Iterator[pd.DataFrame]:
        from datasets import ClassLabel

        data = self._dataset()
        class_labels = {c: f for c, f in data.features.items() if isinstance(f, ClassLabel)}
        start = 0
        for batch in data.iter(batch_size=self.chunk_rows):
            for column, feature in class_labels.items():  # 0/1 -> the label names
                batch[column] = [feature.int2str(v) if v is not None and v >= 0 else ""
                                 for v in batch[column]]
            frame = _as_strings(pd.DataFrame(batch, columns=data.column_names), start)
            start += len(frame)
            yield frame


def read_table(source, **kwargs) -> pd.DataFrame:
    """The whole table at `source` as a DataFrame of strings (see `Table`)."""
    return Table(source, **kwargs).read()


def dataset_splits(source: str) -> list[str]:
    """The split names of a `datasets` folder or Hub id ([] for a single saved Dataset)."""
    import datasets

    if Path(source).is_dir():
        try:
            data = datasets.load_from_disk(source)
        except FileNotFoundError:
            raise ReadError(f"{source} is a folder but not a dataset saved with "
                            "`save_to_disk`.") from None
        return list(data) if isinstance(data, datasets.DatasetDict) else []
    _require_hub(source)
    try:
        return list(datasets.get_dataset_split_names(source))
    except (OSError, ValueError) as exc:
        raise ReadError(f"Could not read the splits of Hub dataset {source!r}: {exc}") from None


# ---------------------------------------------------------------------------- columns
def guess_text_column(df: pd.DataFrame) -> str:
    """The column most likely to hold the documents: a 'text'-like name, else the longest
    column that holds words (not numbers or codes), else the longest."""
    for name in TEXT_NAMES:
        for column in df.columns:
            if column.lower() == name:
                return column
    head = df.head(200)

    def mean_length(column: str) -> float:
        return float(head[column].str.len().mean()) if len(head) else 0.0

    wordy = [c for c in df.columns if letterless_share(head[c]) <= 0.5]
    return max(wordy or list(df.columns), key=mean_length)


def guess_label_column(df: pd.DataFrame) -> str | None:
    for column in df.columns:
        if column.lower() in LABEL_NAMES:
            return column
    return None


def letterless_share(values: pd.Series) -> float:
    """Share of the non-empty values that contain no letter at all (numbers, ids, dates)."""
    values = values.astype(str).str.strip()
    values = values[values.ne("")]
    if values.empty:
        return 0.0
    return float((~values.str.contains(r"[^\W\d_]", regex=True)).mean())


FEW_VALUES_ROWS = 20  # below this many values, "few distinct" and "short" say nothing
SHORT_CHARS = 8


def text_column_warning(values: pd.Series, column: str) -> str | None:
    """A warning when the chosen text column looks like numbers, codes, a flag or a label
    rather than the documents: no letters, a handful of distinct values, or values too short
    to be documents."""
    share = letterless_share(values)
    if share > 0.5:
        return (f"The text column {column!r} looks like numbers or codes, not text: "
                f"{share:.0%} of its values contain no letter. Pick the column that holds the "
                "documents.")
    return few_or_short_warning(values, column)


def few_or_short_warning(values: pd.Series, column: str) -> str | None:
    """The flag/label case: letters, but few distinct values or very short ones."""
    values = values.astype(str).str.strip()
    values = values[values.ne("")]
    if len(values) < FEW_VALUES_ROWS:
        return None
    distinct = values.nunique()
    if distinct <= max(2, len(values) // 10):
        return (f"The text column {column!r} has only {distinct} different values in "
                f"{len(values):,} rows: it looks like a label or a flag, not the documents. "
                "Pick the column that holds the text.")
    if values.str.len().median() < SHORT_CHARS:
        return (f"The text column {column!r} holds very short values (half of them under "
                f"{SHORT_CHARS} characters): is it the column that holds the text?")
    return None


# ---------------------------------------------------------------------------- internals
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_BINARY_SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx or Word .docx file is one)"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"PAR1", "a Parquet file (give it the extension .parquet)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (.xls or .doc)"),
)
# Bytes that no text file contains (control characters other than tab and line breaks).
_CONTROL_BYTES = bytes(range(0, 9)) + bytes(range(14, 32)) + b"\x7f"


def _looks_like_hub_id(text: str) -> bool:
    return bool(_HUB_ID.fullmatch(text)) and Path(text).suffix.lower().lstrip(".") not in \
        EXTENSIONS


def _choose_encoding(sample: bytes, wanted: str) -> str:
    """A byte-order mark wins; then UTF-16 without one (NUL in every other byte); then the
    encoding asked for ('auto' is UTF-8)."""
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16")):
        if sample.startswith(bom):
            return codec
    wanted = wanted.strip().lower().replace("_", "-")
    if wanted.startswith(("utf-16", "utf-32")):
        return wanted
    even, odd = sample[0::2], sample[1::2]
    if len(sample) >= 8:  # shorter: too little to tell UTF-16 from binary
        if odd.count(0) > 0.3 * len(odd) and even.count(0) < 0.05 * len(even):
            return "utf-16-le"
        if even.count(0) > 0.3 * len(even) and odd.count(0) < 0.05 * len(odd):
            return "utf-16-be"
    if wanted in ("auto", "utf-8", "utf8"):
        return "utf-8-sig"  # reads plain UTF-8 too, and drops a BOM
    try:
        codecs.lookup(wanted)
    except LookupError:
        raise ReadError(f"Unknown encoding {wanted!r}; use one of {', '.join(ENCODINGS)}.") \
            from None
    return wanted


def _refuse_binary(sample: bytes) -> None:
    for signature, what in _BINARY_SIGNATURES:
        if sample.startswith(signature):
            raise ReadError(f"This is {what}, not a text file. Upload {FORMATS_HELP}; "
                            "export a spreadsheet as CSV first.")
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    if b"\x00" in sample or controls > max(2, len(sample) // 100):
        raise ReadError(
            f"This is not a text file: its first {len(sample):,} bytes hold {controls:,} "
            f"binary control bytes. Upload {FORMATS_HELP}; export a spreadsheet as CSV first "
            "(UTF-16 text: pick the utf-16 encoding)."
        )


def _decode_message(codec: str, byte: int | None, offset: int, line: int) -> ReadError:
    shown = codec.replace("utf-8-sig", "utf-8").upper()
    what = f"undecodable byte 0x{byte:02x}" if byte is not None else "an incomplete character"
    return ReadError(
        f"The file is not valid {shown} text ({what} at byte {offset:,}, line {line:,}). "
        "Re-save it as UTF-8, or pick the file's real encoding (e.g. cp1252 or latin-1 for "
        "older Windows/Excel exports, utf-16 for some Windows tools)."
    )


def _checked_lines(stream: io.TextIOBase, decode_error) -> Iterator[str]:
    number = 0
    try:
        for line in stream:
            number += 1
            if "\x00" in line:
                raise ReadError(f"Line {number:,} contains a NUL character: this is not a text "
                                f"file, or not in the chosen encoding. Upload {FORMATS_HELP}.")
            yield line
    except UnicodeDecodeError:
        raise decode_error() from None


def _sniff_delimiter(header: str) -> str:
    """',' unless the header line clearly uses ';', '|' or a tab (European Excel exports)."""
    counts = {d: header.count(d) for d in (",", ";", "|", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] > counts[","] else ","


def _allow_long_csv_fields() -> None:
    # The csv module refuses fields over 131,072 characters by default (a long e-mail);
    # our limit is the maximum document size. Only ever raised, never lowered.
    if csv.field_size_limit() < MAX_DOCUMENT_CHARS + 1:
        csv.field_size_limit(MAX_DOCUMENT_CHARS + 1)


def _column_names(header: list[str]) -> list[str]:
    names = [h.strip() or f"column_{i + 1}" for i, h in enumerate(header)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ReadError(f"The file has two columns named {name!r}; rename one of them.")
        seen.add(name)
    return names


def _frame(rows: list[list[str]], columns: list[str], start: int) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns, dtype=object,
                        index=pd.RangeIndex(start, start + len(rows)))


def _delimited_chunks(lines: Iterator[str], sep: str | None, kind: str,
                      chunk_rows: int) -> Iterator[pd.DataFrame]:
    _allow_long_csv_fields()
    lines = iter(lines)
    header_line = next((line for line in lines if line.strip()), None)
    if header_line is None:
        raise ReadError("The file is empty: there is no header row and no data.")
    sep = sep or _sniff_delimiter(header_line)
    options = {"quoting": csv.QUOTE_NONE} if kind == "TSV" else {}
    reader = csv.reader(_prepend(header_line, lines), delimiter=sep, strict=True, **options)
    advice = (f"Check that the delimiter is {_SEPARATOR_NAMES[sep]} and that every field "
              "holding the delimiter, a quote or a line break is in double quotes.")
    rows: list[list[str]] = []
    bad: list[tuple[int, int]] = []
    n_bad, start = 0, 0
    try:
        columns = _column_names(next(reader))
        width = len(columns)
        for fields in reader:
            if not fields:
                continue  # a blank line
            if len(fields) != width:
                if len(fields) > width and not "".join(fields[width:]).strip():
                    fields = fields[:width]  # trailing empty fields (a delimiter at line end)
                else:
                    n_bad += 1
                    if len(bad) < 10:
                        bad.append((reader.line_num, len(fields)))
                    continue
            if n_bad:
                continue  # the file is refused: only count the other bad rows
            rows.append(fields)
            if len(rows) == chunk_rows:
                yield _frame(rows, columns, start)
                start, rows = start + len(rows), []
    except csv.Error as exc:
        if "field limit" in str(exc):
            raise ReadError(
                f"Malformed {kind}: line {reader.line_num:,} has a field longer than "
                f"{MAX_DOCUMENT_CHARS:,} characters, the maximum document size. Split that "
                "document, or close the quote that runs on (an unclosed quote reads the rest "
                "of the file as one field)."
            ) from None
        reason = "a quoted field is not closed" if "end of data" in str(exc) else str(exc)
        raise ReadError(f"Malformed {kind}: {reason} (line {reader.line_num:,}). {advice}") \
            from None
    if n_bad:
        shown = ", ".join(f"line {line:,} has {n}" for line, n in bad)
        more = f" and {n_bad - len(bad):,} more" if n_bad > len(bad) else ""
        raise ReadError(
            f"Malformed {kind}: {n_bad:,} row(s) do not have the {width} field(s) of the "
            f"header ({', '.join(columns)}): {shown}{more}. {advice}"
        )
    if rows:
        yield _frame(rows, columns, start)
    elif not start:  # a header only: not "empty", and the user should see which header
        shown = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")
        raise ReadError(f"The file has column names ({shown}) but no data rows: add at least "
                        "one row below the header.")


_SEPARATOR_NAMES = {",": "a comma", ";": "a semicolon", "|": "a '|'", "\t": "a tab"}


def _prepend(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _jsonl_chunks(lines: Iterator[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    columns: dict[str, None] = {}  # every key seen so far, in order
    records: list[dict[str, str]] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ReadError(
                f"Malformed JSONL: line {number:,} is not valid JSON ({exc.msg}, column "
                f"{exc.colno}). Each line must be one JSON object."
            ) from None
        if not isinstance(record, dict):
            raise ReadError(f"Malformed JSONL: line {number:,} is a JSON "
                            f"{type(record).__name__}, not an object such as "
                            '{"text": "..."}.')
        row = {str(k): _cell_to_str(v) for k, v in record.items()}
        columns.update(dict.fromkeys(row))
        records.append(row)
        if len(records) == chunk_rows:
            yield _records_frame(records, list(columns), start)
            start, records = start + len(records), []
    if records:
        yield _records_frame(records, list(columns), start)


def _records_frame(records: list[dict], columns: list[str], start: int) -> pd.DataFrame:
    return _frame([[r.get(c, "") for c in columns] for r in records], columns, start)


def _json_chunks(lines: Iterator[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A JSON list of objects, an object holding one such list, or an object of equal-length
    column lists. Read whole (JSON cannot be streamed by line); JSON Lines named .json work."""
    text = "".join(lines)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # one object per line: JSON Lines
            yield from _jsonl_chunks(iter(text.split("\n")), chunk_rows)
            return
        raise ReadError(f"Malformed JSON: {exc.msg} at line {exc.lineno:,}, column "
                        f"{exc.colno}.") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1 and len(data) == 1:
            data = lists[0]  # {"data": [...]}
        elif lists and len(lists) == len(data) and len({len(v) for v in lists}) == 1:
            data = [dict(zip(data, row, strict=True)) for row in zip(*data.values(), strict=True)]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ReadError('A .json file must hold a list of objects, e.g. [{"text": "...", '
                        '"label": "..."}, ...]; this one holds something else.')
    columns = list(dict.fromkeys(str(k) for r in data for k in r))
    for start in range(0, len(data), chunk_rows):
        part = data[start:start + chunk_rows]
        rows = [[_cell_to_str(r.get(c)) for c in columns] for r in part]
        yield _frame(rows, columns, start)


def _txt_chunks(lines: Iterator[str], chunk_rows: int) -> Iterator[pd.DataFrame]:
    rows: list[list[str]] = []
    start = 0
    for line in lines:
        rows.append([line.rstrip("\r\n")])
        if len(rows) == chunk_rows:
            yield _frame(rows, [TXT_COLUMN], start)
            start, rows = start + len(rows), []
    if rows:
        yield _frame(rows, [TXT_COLUMN], start)


def _cell_to_str(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, str):
        return value
    if hasattr(value, "tolist"):  # numpy arrays and scalars from Parquet / datasets
        value = value.tolist()
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _as_strings(df: pd.DataFrame, start: int) -> pd.DataFrame:
    """Every column as Python strings ('' for missing), rows numbered from `start`."""
    columns = _column_names([str(c) for c in df.columns])
    out = {}
    for name, column in zip(columns, df.columns, strict=True):
        series = df[column]
        if series.dtype == object:
            out[name] = [_cell_to_str(v) for v in series]
        else:
            out[name] = series.astype("string").fillna("").astype(object).tolist()
    return pd.DataFrame(out, columns=columns, dtype=object,
                        index=pd.RangeIndex(start, start + len(df)))


def _check_sizes(chunk: pd.DataFrame) -> None:
    for column in chunk.columns:
        lengths = chunk[column].str.len()
        if len(lengths) and lengths.max() > MAX_DOCUMENT_CHARS:
            row = int(lengths.idxmax()) + 1
            raise ReadError(
                f"Row {row:,}, column {column!r} has {int(lengths.max()):,} characters, more "
                f"than {MAX_DOCUMENT_CHARS:,}, the maximum document size. Split it into "
                "smaller documents."
            )


def _require_hub(name: str) -> None:
    from .loading import hub_reachable  # fast: a socket check, no retries

    if not hub_reachable():
        raise ReadError(
            f"{name!r} is not a local file or folder, and the Hugging Face Hub cannot be "
            "reached from here, so it cannot be fetched as a dataset. On a machine with "
            f"access run `datasets.load_dataset({name!r}).save_to_disk('DIR')`, copy DIR "
            "here and give its path instead."
        )


def _load_hub_dataset(name: str, split: str | None):
    import datasets

    _require_hub(name)
    try:
        return datasets.load_dataset(name, split=split)
    except (OSError, ValueError) as exc:  # not found, no such split, network gone
        raise ReadError(f"Could not load Hub dataset {name!r}: {type(exc).__name__}: "
                        f"{str(exc)[:300]}") from None
