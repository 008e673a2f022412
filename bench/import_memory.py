"""Peak memory and time of a corpus import, the way the import page does it.

    python -m bench.import_memory --mb 300            # the issue-17 case (took 2.5 GB before)
    python -m bench.import_memory --mb 5              # smoke test
    python -m bench.import_memory --mb 300 --whole    # the old way: the whole file as one DataFrame

Builds a CSV of about `--mb` megabytes (text of 50-100 words, a label column, 2% duplicate
rows) in a temporary folder, then imports it into a fresh SQLite database (or the database of
LIST_DATABASE_URL) in a child process, so that the peak RSS is that of the import alone. Like
the page, the child holds the uploaded bytes in memory (Streamlit keeps an upload there), reads
the file once for the preview (`scan_table`) and imports it in chunks (`import_documents`).
Prints one JSON line: file size, rows, RSS before reading, peak RSS, the peak above the
uploaded bytes, and the seconds of each step.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("the a film story plot actor scene music ending great terrible good bad boring fun "
         "moving slow clever dull brilliant messy charming awful wonderful long short script "
         "director camera light sound dialogue character twist ending start middle").split()


def build_csv(path: Path, megabytes: float, seed: int = 0) -> int:
    """A CSV of about `megabytes` MB: text, label; 2% of the rows repeat an earlier text."""
    rng = random.Random(seed)
    target, rows, recent = int(megabytes * 1_000_000), 0, []
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        while fh.tell() < target:
            if recent and rng.random() < 0.02:
                text = rng.choice(recent)
            else:
                text = " ".join(rng.choices(WORDS, k=rng.randint(50, 100))) + f" #{rows}."
                if len(recent) < 1000:
                    recent.append(text)
            writer.writerow([text, rng.choice(("positive", "negative"))])
            rows += 1
    return rows


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def child(path: Path, whole: bool) -> dict:
    """Runs in a fresh process: import `path` as the page would; measure."""
    from app.services import corpus
    from app.services.projects import create_project
    from db.migrate import upgrade_to_head
    from db.session import get_session

    upgrade_to_head()
    session = get_session()
    project = create_project(session, "bench import")
    before = _rss_mb()
    data = path.read_bytes()  # the upload, held in memory like Streamlit's UploadedFile
    with_upload = _rss_mb()
    start = time.perf_counter()
    if whole:  # the old way: parse everything into one DataFrame, then import it
        table = corpus.read_table(data, path.name)
        rows = len(table)
    else:
        table = corpus.open_table(data, path.name)
        rows = corpus.scan_table(table).rows
    scanned = time.perf_counter()
    report = corpus.import_documents(session, project.id, table, text_column="text",
                                     label_column="label", rows_expected=rows,
                                     filename=path.name, file_format="csv")
    done = time.perf_counter()
    peak = _peak_mb()
    return {"mode": "whole" if whole else "streamed", "file_mb": round(len(data) / 1e6, 1),
            "rows": report.rows_total, "imported": report.imported,
            "duplicates": report.duplicates, "rss_before_mb": round(before, 1),
            "upload_bytes_mb": round(with_upload - before, 1), "peak_rss_mb": round(peak, 1),
            "peak_above_upload_mb": round(peak - with_upload, 1),
            "read_s": round(scanned - start, 2), "import_s": round(done - scanned, 2),
            "docs_per_s": round(report.imported / max(done - scanned, 1e-9))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=300.0, help="CSV size in MB")
    parser.add_argument("--whole", action="store_true",
                        help="read the whole file into one DataFrame first (the old way)")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # internal: the measured process
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(Path(args.child), args.whole)))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        path = Path(tmp) / f"corpus-{args.mb:g}mb.csv"
        start = time.perf_counter()
        n = build_csv(path, args.mb)
        print(f"built {path.name}: {path.stat().st_size / 1e6:.1f} MB, {n:,} rows in "
              f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
        env = {**os.environ, "LIST_DATA_DIR": str(Path(tmp) / "data"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                           os.environ.get("PYTHONPATH")]))}
        command = [sys.executable, "-m", "bench.import_memory", "--child", str(path)]
        proc = subprocess.run(command + (["--whole"] if args.whole else []), cwd=ROOT, env=env,
                              capture_output=True, text=True)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        print(proc.stdout.strip().splitlines()[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
