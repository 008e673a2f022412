"""A project's labels out of the database: one row per labelled document with its full
text, the label, where the label came from, the held-out and gold flags, timestamps, and
the train runs that used it; written as CSV, JSONL, Parquet or a `datasets` folder.

Used by the labelling page (download buttons) and `python -m db export-labels`; a file
exported here imports back as a corpus with its label column (same texts, same labels).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
import zipfile
from datetime import UTC
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import SUCCEEDED, Document, Label, LabelClass, Project, Run

FORMATS = ("csv", "jsonl", "parquet", "datasets")
FILE_NAMES = {"csv": "labels.csv", "jsonl": "labels.jsonl", "parquet": "labels.parquet",
              "datasets": "labels_dataset"}
MIME = {"csv": "text/csv", "jsonl": "application/jsonl",
        "parquet": "application/vnd.apache.parquet", "datasets": "application/zip"}
TIMESTAMPS = ("labelled_at", "updated_at")

# The columns, in order; text_b only when the project has text pairs.
SCHEMA = pa.schema([
    ("document_id", pa.int64()),
    ("text", pa.string()),
    ("text_b", pa.string()),
    ("label", pa.string()),
    ("source", pa.string()),  # human | accepted_pseudo | imported_gold (db.models)
    ("held_out", pa.bool_()),  # evaluation set: never trained on
    ("gold_label", pa.string()),  # the document's evaluation-only gold label, if imported
    ("labelled_at", pa.timestamp("us", tz="UTC")),  # the label row was created
    ("updated_at", pa.timestamp("us", tz="UTC")),  # last change (class, held-out flag)
    ("trained_runs", pa.list_(pa.int64())),
])


class LabelExportError(ValueError):
    """Nothing to export, or a format we do not write; the message says what to do."""


def _trained_runs(session: Session, project_id: int):
    """(run id, start, class names) of the project's succeeded train runs."""
    runs = session.execute(
        select(Run.id, Run.started_at, Run.config)
        .where(Run.project_id == project_id, Run.kind == "train", Run.status == SUCCEEDED,
               Run.started_at.is_not(None))
        .order_by(Run.id)
    ).all()
    return [(rid, started, set((config or {}).get("verbalizer") or {}))
            for rid, started, config in runs]


def labels_table(session: Session, project_id: int) -> pa.Table:
    """Every label of the project, oldest first, as an Arrow table (see SCHEMA).

    `trained_runs` lists the succeeded train runs that read the label as it is now: a run
    reads the labels when it starts, and trains on those not held out whose class its
    verbalizer has; a label changed after a run started is not the one that run used.
    """
    rows = session.execute(
        select(Label, Document.text, Document.text_b, Document.gold_label, LabelClass.name)
        .join(Document, Document.id == Label.document_id)
        .join(LabelClass, LabelClass.id == Label.label_class_id)
        .where(Label.project_id == project_id)
        .order_by(Label.id)
    ).all()
    runs = _trained_runs(session, project_id)
    columns: dict[str, list] = {name: [] for name in SCHEMA.names}
    for label, text, text_b, gold, name in rows:
        columns["document_id"].append(label.document_id)
        columns["text"].append(text)
        columns["text_b"].append(text_b)
        columns["label"].append(name)
        columns["source"].append(label.source)
        columns["held_out"].append(bool(label.held_out))
        columns["gold_label"].append(gold)
        columns["labelled_at"].append(label.created_at.replace(tzinfo=UTC))  # stored naive UTC
        columns["updated_at"].append(label.updated_at.replace(tzinfo=UTC))
        columns["trained_runs"].append(
            [] if label.held_out else
            [rid for rid, started, classes in runs if label.updated_at <= started and name in classes])
    table = pa.table(columns, schema=SCHEMA)
    if not any(columns["text_b"]):
        table = table.drop_columns(["text_b"])
    return table


def _records(table: pa.Table) -> list[dict]:
    """Rows as JSON-ready dicts: timestamps as ISO 8601 strings in UTC."""
    rows = table.to_pylist()
    for row in rows:
        for key in TIMESTAMPS:
            row[key] = row[key].isoformat()
    return rows


def _write_csv(table: pa.Table, path: Path) -> None:
    # The text is written exactly as stored (no apostrophe before '=', '+', ...): this file
    # is data for re-import and training, not a spreadsheet; see README "Exporting labels".
    frame = pd.DataFrame(_records(table), columns=table.column_names)
    frame["trained_runs"] = [json.dumps(runs) for runs in frame["trained_runs"]]
    frame.to_csv(path, index=False)


def _write_jsonl(table: pa.Table, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in _records(table):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_datasets(table: pa.Table, path: Path) -> None:
    from datasets import Dataset

    if path.exists():  # save_to_disk writes into a folder; stale shards must not linger
        shutil.rmtree(path)
    Dataset(table).save_to_disk(str(path))


def write_labels(table: pa.Table, fmt: str, path: str | Path) -> Path:
    """Write `table` in `fmt` to `path` (a folder for "datasets"); returns the path."""
    path = Path(path)
    writers = {"csv": _write_csv, "jsonl": _write_jsonl, "datasets": _write_datasets,
               "parquet": lambda t, p: pq.write_table(t, p)}
    if fmt not in writers:
        raise LabelExportError(f"Unknown format {fmt!r}: choose from {', '.join(FORMATS)}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    writers[fmt](table, path)
    return path


def file_name(project_name: str, fmt: str) -> str:
    """A download name such as `my-project-labels.csv` (`.zip` for the datasets folder)."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", project_name).strip("-.") or "project"
    suffix = {"csv": ".csv", "jsonl": ".jsonl", "parquet": ".parquet", "datasets": "-dataset.zip"}
    return f"{slug}-labels{suffix[fmt]}"


def labels_bytes(table: pa.Table, fmt: str, folder_name: str = "labels_dataset") -> bytes:
    """The file of `fmt` as bytes, for a download; the datasets folder comes zipped, under
    `folder_name/` (unzip, then `datasets.load_from_disk(folder_name)`)."""
    with tempfile.TemporaryDirectory(prefix="list-labels-") as tmp:
        path = write_labels(table, fmt, Path(tmp) / folder_name)
        if fmt != "datasets":
            return path.read_bytes()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
            for file in sorted(path.rglob("*")):
                if file.is_file():
                    zf.write(file, Path(folder_name) / file.relative_to(path))
        return buffer.getvalue()


def find_project(session: Session, key: str) -> Project:
    """A project by id or by exact name; the error lists the projects there are."""
    project = session.get(Project, int(key)) if key.isdigit() else None
    project = project or session.scalar(select(Project).where(Project.name == key))
    if project is None:
        names = [f"{p.id}: {p.name}" for p in session.scalars(select(Project).order_by(Project.id))]
        raise LabelExportError(f"No project {key!r}. Projects: {'; '.join(names) or 'none'}.")
    return project


def export_labels(session: Session, project_id: int, out_dir: str | Path,
                  formats: tuple[str, ...] = FORMATS) -> tuple[int, list[Path]]:
    """Write the project's labels into `out_dir` (labels.csv, labels.jsonl, labels.parquet,
    labels_dataset/); returns (number of labels, paths written)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise LabelExportError(f"Unknown format(s) {unknown}: choose from {', '.join(FORMATS)}.")
    table = labels_table(session, project_id)
    if table.num_rows == 0:
        raise LabelExportError("The project has no labels yet: label some documents first.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LabelExportError(f"{out} is a file: give a folder to write the labels into.")
    return table.num_rows, [write_labels(table, fmt, out / FILE_NAMES[fmt]) for fmt in formats]


def export_from_url(url: str, project: str, out_dir: str | Path,
                    formats: tuple[str, ...] = FORMATS) -> str:
    """`python -m db export-labels`: open the database at `url` (read only), export the
    labels of `project` (id or name); returns a summary line for the user."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from db.session import make_engine
    from db.settings import safe_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:") \
            and not Path(parsed.database).is_file():
        raise LabelExportError(f"There is no database file at {parsed.database}: give the URL "
                               "of the app's database (--database-url sqlite:///path/list.db).")
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            found = find_project(session, project)
            count, paths = export_labels(session, found.id, out_dir, formats)
    except SQLAlchemyError as exc:
        raise LabelExportError(
            f"Cannot read the labels from {safe_url(url)}: {type(exc).__name__}: {exc}. Is it "
            "the app's database, at the current schema (python -m db upgrade)?") from None
    finally:
        engine.dispose()
    return (f"{count} labels of project {found.id} ({found.name!r}) written to: "
            + ", ".join(str(p) for p in paths))
