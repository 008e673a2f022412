"""Smoke test of bench/active.py: the three strategies end to end on generated data with the
tiny BERT (says nothing about which strategy is better)."""

from __future__ import annotations

import json

from bench import active
from tests.bench.test_smoke import TINY, _sets


def test_active_cli_all_strategies_and_resume(tmp_path, tiny_bert_dir, capsys):
    out = tmp_path / "active.json"
    overrides = {k: v for k, v in TINY.items() if k not in ("device", "max_length")}
    argv = ["--data", "synthetic", "--model", str(tiny_bert_dir), "--seeds", "1",
            "--max-length", "32", "--device", "cpu", "--output", str(out), *_sets(overrides)]
    records = active.main(argv)
    assert [r["strategy"] for r in records] == list(active.STRATEGIES)
    for r in records:
        assert r["n_labelled"] == active.N_LABELS and 0 <= r["accuracy"] <= 1
        assert sum(r["label_counts"].values()) == active.N_LABELS
    guided = [r for r in records if r["strategy"] in active.MODEL_GUIDED]
    assert len(guided) == 2 and all("first_run_s" in r for r in guided)  # a first model on 10
    assert guided[0]["first_run_s"] == guided[1]["first_run_s"]  # trained once, shared
    saved = json.loads(out.read_text())
    assert len(saved["runs"]) == 4 and saved["max_length"] == 32
    printed = capsys.readouterr().out
    assert "uncertain_diverse - random:" in printed and "uncertain_regions - random:" in printed
    again = active.main([*argv, "--resume"])  # nothing left to run
    assert again == saved["runs"]
