"""Smoke test of bench/import_memory.py (1 MB): it builds the CSV, imports it in a child
process and reports memory and time. Says nothing about the numbers at 300 MB."""

from __future__ import annotations

import json

from bench import import_memory


def test_import_memory_bench_runs_on_one_megabyte(capsys, tmp_path):
    assert import_memory.main(["--mb", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["mode"] == "streamed" and 0.9 < result["file_mb"] < 1.2
    assert result["imported"] + result["duplicates"] == result["rows"] > 1_000
    assert result["peak_rss_mb"] >= result["rss_before_mb"] > 0


def test_build_csv_repeats_some_rows(tmp_path):
    rows = import_memory.build_csv(tmp_path / "c.csv", 0.2)
    lines = (tmp_path / "c.csv").read_text().splitlines()
    assert len(lines) == rows + 1 and len(set(lines)) < len(lines)
