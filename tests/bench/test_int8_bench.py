"""Smoke test of bench/int8.py: tiny model, generated data, 1 seed, a handful of steps.
It keeps the script from rotting; it says nothing about int8's accuracy or speed."""

from __future__ import annotations

import json

from bench import data
from bench import int8 as bench_int8


def test_int8_bench_cli(tmp_path, monkeypatch, tiny_bert_dir, capsys):
    task = data.synthetic_task(n_per_class=16)
    monkeypatch.setitem(data.LOADERS, "mr", lambda: task.__class__(
        "mr", task.examples, task.template, task.words, task.test_size))
    out = tmp_path / "int8.json"
    sets = {"teacher_steps": 2, "rounds": 0, "lr_candidates": [1e-3], "labeled_batch_size": 4}
    argv = ["--data", "mr", "--model", str(tiny_bert_dir), "--seeds", "1", "--n-labeled", "8",
            "--n-unlabeled", "8", "--max-test", "8", "--max-length", "32", "--repeats", "1",
            "--no-isolate", "--machine", "test", "--output", str(out)]
    for key, value in sets.items():
        argv += ["--set", f"{key}={json.dumps(value)}"]
    records = bench_int8.main(argv)
    assert len(records) == 1 and not records[0].get("error"), records[0].get("error")
    r = records[0]
    assert r["n_test"] == 8 and r["int8_layers"] == 12
    assert 0.0 <= r["agreement"] <= 1.0 and r["fp32"]["texts_s"] > 0 and r["int8"]["texts_s"] > 0
    saved = json.loads(out.read_text())
    assert saved["kind"] == "int8" and len(saved["runs"]) == 1
    [summary] = saved["summary"]
    assert summary["data"] == "mr" and summary["seeds"] == [0]
    printed = capsys.readouterr().out
    verdict = "yes" if summary["holds_accuracy"] else "no"
    assert f"mr: int8 holds accuracy within 0.5 points: {verdict}" in printed


def test_verdict_is_the_worst_seed():
    def run(seed, fp32, int8):
        return {"data": "mr", "model": "m", "seed": seed, "n_labeled": 30, "n_unlabeled": 9,
                "n_test": 1000, "max_length": 64, "batch_size": 64, "overrides": {},
                "fp32": {"accuracy": fp32, "texts_s": 10.0},
                "int8": {"accuracy": int8, "texts_s": 20.0}, "accuracy_drop": fp32 - int8,
                "agreement": 0.99, "speedup": 2.0}

    [ok] = bench_int8.summarize([run(0, 0.700, 0.696), run(1, 0.700, 0.710)])
    assert ok["holds_accuracy"] and abs(ok["worst_drop_points"] - 0.4) < 1e-9
    [bad] = bench_int8.summarize([run(0, 0.700, 0.694), run(1, 0.700, 0.710)])
    assert not bad["holds_accuracy"]
    # a re-run of a seed replaces the earlier one
    [again] = bench_int8.summarize([run(0, 0.700, 0.694), run(0, 0.700, 0.700)])
    assert again["holds_accuracy"] and again["seeds"] == [0]
