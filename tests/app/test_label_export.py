"""Labels out (db/label_export.py): every format carries the full text, label, source,
flags, timestamps and trained runs; exported, then imported into a new project with the
corpus import, every format gives back the same labels. Also the command line and the
labelling page's download buttons."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from app.services import labelling as L
from app.services.corpus import import_documents, read_table
from app.services.projects import create_project
from db import label_export
from db.models import ACCEPTED_PSEUDO, HUMAN, IMPORTED_GOLD, SUCCEEDED, Document, Label, Run
from tests.conftest import ROOT

LONG = "A long review. " * 40  # far past the 120 characters of the labels table on the page
TEXTS = {
    LONG.strip(): "positive",
    'Quotes "inside", commas, and a second line\nright here': "negative",
    "=SUM(A1:A3) starts like a formula": "negative",
    "Ünïcödé — 日本語 ✓": "positive",
    "held out for evaluation": "positive",
    "accepted from the teacher": "negative",
}


@pytest.fixture()
def labelled(db, project):
    """The project with 7 documents (gold labels on all), 6 labelled: 4 by hand, one held
    out, one accepted pseudo-label; a succeeded train run that read them."""
    docs = list(TEXTS) + ["never labelled"]
    gold = [TEXTS.get(t, "positive") for t in docs]
    import_documents(db, project.id, pd.DataFrame({"text": docs, "gold": gold}),
                     text_column="text", label_column="gold")
    classes = {c: L.add_label_class(db, project.id, c).id for c in ("positive", "negative")}
    ids = {d.text: d.id for d in db.scalars(select(Document).where(Document.project_id == project.id))}
    for text, name in TEXTS.items():
        source = ACCEPTED_PSEUDO if text.startswith("accepted") else HUMAN
        L.set_label(db, project.id, ids[text], classes[name], source=source)
    L.mark_held_out(db, project.id, [ids["held out for evaluation"]])
    db.commit()
    newest = max(db.scalars(select(Label.updated_at)))
    run = Run(project_id=project.id, kind="train", status=SUCCEEDED,
              started_at=newest + timedelta(microseconds=1), finished_at=newest + timedelta(seconds=9),
              config={"template": "{text} It was {mask}.",
                      "verbalizer": {"positive": "great", "negative": "terrible"}})
    db.add(run)
    db.commit()
    return project, ids, run.id


def test_the_table_has_full_text_source_flags_times_and_runs(db, labelled):
    project, ids, run_id = labelled
    table = label_export.labels_table(db, project.id)
    assert table.column_names == ["document_id", "text", "label", "source", "held_out",
                                  "gold_label", "labelled_at", "updated_at", "trained_runs"]
    rows = {r["text"]: r for r in table.to_pylist()}
    assert {t: r["label"] for t, r in rows.items()} == TEXTS
    assert rows[LONG.strip()]["text"] == LONG.strip()  # not truncated
    assert rows["accepted from the teacher"]["source"] == ACCEPTED_PSEUDO
    assert rows["Ünïcödé — 日本語 ✓"]["source"] == HUMAN
    assert [t for t, r in rows.items() if r["held_out"]] == ["held out for evaluation"]
    assert all(r["gold_label"] == TEXTS[t] for t, r in rows.items())
    assert all(r["labelled_at"].tzinfo is not None and r["labelled_at"] <= r["updated_at"]
               for r in rows.values())
    # the run trained on every label but the held-out one
    assert {t: r["trained_runs"] for t, r in rows.items()} == \
        {t: ([] if t.startswith("held out") else [run_id]) for t in TEXTS}

    # A label changed after the run started is not the one the run trained on.
    negative = next(c.id for c in L.list_label_classes(db, project.id) if c.name == "negative")
    L.set_label(db, project.id, ids["Ünïcödé — 日本語 ✓"], negative)
    db.commit()
    rows = {r["text"]: r for r in label_export.labels_table(db, project.id).to_pylist()}
    assert rows["Ünïcödé — 日本語 ✓"]["trained_runs"] == []
    assert rows[LONG.strip()]["trained_runs"] == [run_id]


def _read_back(data: bytes, fmt: str, tmp_path) -> pd.DataFrame:
    """The exported file as the corpus import sees it (strings)."""
    if fmt != "datasets":
        return read_table(data, f"labels.{fmt}")
    from datasets import load_from_disk

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(tmp_path / "unzipped")
    (folder,) = (tmp_path / "unzipped").iterdir()
    return load_from_disk(str(folder)).to_pandas()


@pytest.mark.parametrize("fmt", label_export.FORMATS)
def test_round_trip_export_then_import_into_a_new_project(db, labelled, fmt, tmp_path):
    project, _, run_id = labelled
    table = label_export.labels_table(db, project.id)
    data = label_export.labels_bytes(table, fmt)
    frame = _read_back(data, fmt, tmp_path)
    held = frame["held_out"].astype(str).str.lower() == "true"
    assert sorted(frame.loc[held, "text"]) == ["held out for evaluation"]
    assert set(frame["source"]) == {HUMAN, ACCEPTED_PSEUDO}
    runs = [r if isinstance(r, str) else json.dumps([int(x) for x in r])
            for r in frame["trained_runs"]]
    assert sorted(runs) == sorted(["[]"] + [f"[{run_id}]"] * 5)

    copy = create_project(db, f"Re-imported from {fmt}")
    report = import_documents(db, copy.id, frame, text_column="text", label_column="label",
                              labels_as_training=True)
    assert report.training_labels == len(TEXTS)
    again = {r["text"]: r for r in label_export.labels_table(db, copy.id).to_pylist()}
    assert {t: r["label"] for t, r in again.items()} == TEXTS  # same texts, same labels
    assert {r["source"] for r in again.values()} == {IMPORTED_GOLD}


def test_export_refuses_an_empty_project_and_unknown_formats(db, project, tmp_path):
    with pytest.raises(label_export.LabelExportError, match="no labels yet"):
        label_export.export_labels(db, project.id, tmp_path)
    with pytest.raises(label_export.LabelExportError, match="Unknown format"):
        label_export.export_labels(db, project.id, tmp_path, formats=("xlsx",))


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIST_")}
    return subprocess.run([sys.executable, "-m", "db", "export-labels", *args], cwd=ROOT,
                          env=dict(env, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                          timeout=300)


def test_command_line_writes_every_format_from_a_database_url(db, labelled, data_env, tmp_path):
    project, _, _ = labelled
    url = data_env.database_url
    out = tmp_path / "out"
    proc = _cli("--database-url", url, "--project", project.name, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"{len(TEXTS)} labels of project {project.id}" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == \
        ["labels.csv", "labels.jsonl", "labels.parquet", "labels_dataset"]
    from datasets import load_from_disk

    assert sorted(load_from_disk(str(out / "labels_dataset"))["text"]) == sorted(TEXTS)
    lines = (out / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    assert {json.loads(line)["text"] for line in lines} == set(TEXTS)
    assert sorted(pd.read_parquet(out / "labels.parquet")["text"]) == sorted(TEXTS)

    by_id = _cli("--database-url", url, "--project", str(project.id), "--out", str(out / "csv"),
                 "--format", "csv")
    assert by_id.returncode == 0 and [p.name for p in (out / "csv").iterdir()] == ["labels.csv"]

    missing = _cli("--database-url", url, "--project", "nope", "--out", str(out))
    assert missing.returncode == 2 and f"{project.id}: {project.name}" in missing.stderr
    no_file = _cli("--database-url", f"sqlite:///{tmp_path}/absent.db", "--project", "1",
                   "--out", str(out))
    assert no_file.returncode == 2 and "no database file" in no_file.stderr
    bad_format = _cli("--database-url", url, "--project", "1", "--out", str(out),
                      "--format", "xlsx")
    assert bad_format.returncode == 2 and "Unknown format" in bad_format.stderr


def test_labelling_page_offers_the_four_downloads(db, labelled):
    from tests.app.test_pages import open_app

    at = open_app("labelling")
    buttons = at.get("download_button")
    assert [b.proto.label for b in buttons] == \
        ["CSV", "JSONL", "Parquet", "datasets folder (zip)"]
    assert not at.exception


@pytest.mark.browser
@pytest.mark.timeout(900)
def test_download_buttons_deliver_the_files_in_chromium(db, labelled, data_env, tmp_path):
    """The buttons build their file on click (Streamlit's deferred download): the CSV and the
    zipped datasets folder that reach the browser hold every label."""
    from playwright.sync_api import expect, sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS, ms, open_page, streamlit_app

    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed")
    env = dict(os.environ, LIST_DATA_DIR=str(data_env.data_dir), LIST_MODEL=data_env.model,
               LIST_DEVICE="cpu", PYTHONUNBUFFERED="1")
    env.pop("LIST_DATABASE_URL", None)
    got = {}
    with streamlit_app(env, tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = open_page(browser, {"width": 1400, "height": 1000})
            page.goto(f"{url}/labelling")
            page.get_by_text("Export labels").click()
            for fmt in ("csv", "datasets"):
                button = page.locator(f".st-key-labels_export_{fmt} button")
                expect(button).to_be_visible()
                with page.expect_download(timeout=ms(60)) as download:
                    button.click()
                got[fmt] = tmp_path / download.value.suggested_filename
                download.value.save_as(got[fmt])
        finally:
            browser.close()
    assert got["csv"].name == "Test-project-labels.csv"
    frame = read_table(got["csv"].read_bytes(), got["csv"].name)
    assert dict(zip(frame["text"], frame["label"], strict=True)) == TEXTS
    frame = _read_back(got["datasets"].read_bytes(), "datasets", tmp_path)
    assert dict(zip(frame["text"], frame["label"], strict=True)) == TEXTS
