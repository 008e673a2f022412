"""Smoke tests of the benchmark scripts: tiny model, generated data, 1 seed, a few steps.

They keep the benchmark from rotting; they say nothing about accuracy or speed. No network:
the data loaders are swapped for a generated data set and the model is the tiny BERT.
"""

from __future__ import annotations

import json

import pytest

from bench import baselines, data, fewshot, report, speed

TINY = {  # a LiST run of a handful of steps
    "teacher_steps": 2, "rounds": 1, "unlabeled_steps": 4, "labeled_steps": 1,
    "unlabeled_sample_size": 8, "labeled_batch_size": 4, "unlabeled_batch_size": 4,
    "meta_batch_size": 2, "max_length": 32, "eval_batch_size": 16, "device": "cpu",
}


@pytest.fixture()
def tiny_data(monkeypatch):
    """Every loader returns the generated data set (as 'mr' and 'bbc')."""
    task = data.synthetic_task(n_per_class=16)
    for name in ("mr", "bbc"):
        monkeypatch.setitem(data.LOADERS, name, lambda name=name: task.__class__(
            name, task.examples, task.template, task.words, task.test_size))
    return task


def _sets(overrides: dict) -> list[str]:
    return [arg for k, v in overrides.items() for arg in ("--set", f"{k}={json.dumps(v)}")]


def test_fewshot_cli_all_methods(tmp_path, tiny_data, tiny_bert_dir):
    out = tmp_path / "results.json"
    overrides = {k: v for k, v in TINY.items() if k not in ("device", "max_length")}
    records = fewshot.main([
        "--data", "mr", "--model", str(tiny_bert_dir), "--seeds", "1", "--methods", "all",
        "--n-labeled", "8", "--max-unlabeled", "12", "--max-test", "8", "--device", "cpu",
        "--max-length", "32", "--setfit-iterations", "1", "--no-isolate",
        "--output", str(out), *_sets(overrides),
    ])
    assert [r["method"] for r in records] == list(baselines.METHODS)
    failed = {r["method"]: r.get("error") for r in records if r.get("error")}
    assert not failed, failed
    for r in records:
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["macro_f1"] <= 1.0
        assert r["n_labeled"] == 8 and r["n_test"] == 8
    zero = next(r for r in records if r["method"] == "zero_shot")
    assert zero["train_s"] == 0
    # the tiny BERT checkpoint has an MLM head (random, but present), so no "meaningless" mark
    assert zero["mlm_head_pretrained"] and "meaningless" not in zero["note"]
    assert zero["head"] == "mlm" and {r["max_length"] for r in records} == {32}
    mlm_zero = next(r for r in records if r["method"] == "zero_shot_mlm")
    assert mlm_zero["head"] == "mlm"
    saved = report.load_results(out)
    assert len(saved["fewshot"]["runs"]) == len(records)
    md = (tmp_path / "RESULTS.md").read_text()
    table = md.split("### Few-shot")[1].split("\nAims (computed")[0]  # not the notes' prose
    assert "LiST (quick preset)" in table and "| not run |" not in table, table

    # --resume skips what is already there
    again = fewshot.main(["--data", "mr", "--model", str(tiny_bert_dir), "--seeds", "1",
                          "--methods", "logreg", "--n-labeled", "8", "--max-unlabeled", "12",
                          "--max-test", "8", "--max-length", "32", "--no-isolate",
                          "--output", str(out), "--resume", "--no-report"])
    assert again == []


def test_fewshot_parallel_workers_and_native_length(tmp_path, tiny_data, tiny_bert_dir):
    """--workers runs methods side by side; without --max-length every method gets the
    body's native length (the tiny BERT's tokenizer limit here)."""
    from list_engine import load_tokenizer
    from list_engine.lengths import model_max_length

    out = tmp_path / "results.json"
    overrides = {k: v for k, v in TINY.items() if k not in ("device", "max_length")}
    records = fewshot.main([
        "--data", "mr,bbc", "--model", str(tiny_bert_dir), "--seeds", "1",
        "--methods", "logreg,zero_shot", "--n-labeled", "8", "--max-unlabeled", "12",
        "--max-test", "8", "--device", "cpu", "--workers", "2", "--no-report",
        "--output", str(out), *_sets(overrides)])
    native = model_max_length(str(tiny_bert_dir), load_tokenizer(str(tiny_bert_dir)))
    assert len(records) == 4 and not [r for r in records if r.get("error")]
    assert {r["max_length"] for r in records} == {native}
    assert {(r["data"], r["method"]) for r in records} == {
        (d, m) for d in ("mr", "bbc") for m in ("logreg", "zero_shot")}
    assert len(report.load_results(out)["fewshot"]["runs"]) == 4
    with pytest.raises(ValueError, match="isolated"):
        fewshot.main(["--data", "mr", "--model", str(tiny_bert_dir), "--workers", "2",
                      "--no-isolate", "--output", str(out)])


def test_isolated_run_measures_rss(tiny_bert_dir):
    task = data.synthetic_task(n_per_class=8)
    split = data.make_split(task, 0, n_labeled=4, max_test=4)
    from bench.runner import run_isolated

    rec = run_isolated(baselines.run_method, {
        "method": "logreg", "model": str(tiny_bert_dir), "template": task.template,
        "words": task.words, "split": split, "options": baselines.RunOptions(device="cpu"),
        "max_length": 32})
    assert rec.get("error") is None, rec
    assert rec["peak_rss_mb"] > 50


def test_speed_smoke(tmp_path, tiny_data, tiny_bert_dir):
    out = tmp_path / "results.json"
    overrides = {k: v for k, v in TINY.items() if k != "device"}
    records = speed.main([
        "--model", str(tiny_bert_dir), "--devices", "cpu", "--presets", "quick",
        "--n-sentences", "16", "--n-articles", "8", "--batch-size", "4", "--n-labeled", "8", "--n-unlabeled", "12",
        "--repeats", "1", "--no-isolate", "--output", str(out), *_sets(overrides),
    ])
    errors = [r for r in records if r.get("error")]
    assert not errors, errors
    sections = [r["section"] for r in records]
    assert sections.count("inference") == 2 and "list_run" in sections and "estimate" in sections
    run = next(r for r in records if r["section"] == "list_run")
    phases = run["phases"]["phases"]
    assert phases["teacher"]["steps"] == 2 and phases["kd"]["steps"] + phases["meta"]["steps"] == 4
    assert run["meta_overhead"] is None or run["meta_overhead"] > 0
    md = (tmp_path / "RESULTS.md").read_text()
    assert "Inference throughput" in md and "wall time by phase" in md


def test_report_marks_missing_cells(tmp_path):
    path = report.results_path("test machine", "2026-01-01", tmp_path)
    report.start_section(path, "fewshot", "python -m bench.fewshot", {"name": "m"}, {})
    report.append_run(path, "fewshot", {
        "data": "mr", "model": "default", "method": "logreg", "seed": 0, "n_labeled": 30,
        "n_unlabeled": 10, "n_test": 5, "accuracy": 0.5, "macro_f1": 0.4, "train_s": 1.0,
        "peak_rss_mb": 100.0, "trainable_params": 770, "total_params": None, "note": ""})
    md = report.render([path])
    assert "| LogReg on frozen mean-pooled embeddings | 50.0 | 40.0 | 1 |" in md  # 1 seed: no ±
    assert "| LiST (quick preset) | not run |" in md
    assert "list_quick vs prompt_adapters: not run" in md
