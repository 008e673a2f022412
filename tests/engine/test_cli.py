"""End to end: the command line with the packaged default model on a small generated set."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POS = ["great", "wonderful", "fun", "moving", "brilliant", "charming"]
NEG = ["terrible", "boring", "awful", "dull", "painful", "messy"]
NOUNS = ["movie", "film", "story", "plot", "cast", "ending"]


def write(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def rows(n: int, offset: int, labelled: bool = True) -> list[dict]:
    out = []
    for i in range(n):
        j = i + offset
        label = "pos" if j % 2 == 0 else "neg"
        adj = (POS if label == "pos" else NEG)[(j // 2) % 6]
        row = {"text": f"the {NOUNS[(j // 3) % 6]} was really {adj} overall"}
        if labelled:
            row["label"] = label
        out.append(row)
    return out


def run(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "list_engine", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "2",
                               "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_cli_train_predict_evaluate(tmp_path):
    labeled = write(tmp_path / "l.csv", rows(12, 0))
    unlabeled = write(tmp_path / "u.csv", rows(48, 100, labelled=False))
    evaluation = write(tmp_path / "e.csv", rows(24, 500))
    out = tmp_path / "model"
    overrides = {"teacher_steps": 30, "unlabeled_steps": 30, "labeled_steps": 10,
                 "unlabeled_sample_size": 32, "max_length": 24}
    proc = run("train", "--labeled", str(labeled), "--unlabeled", str(unlabeled),
               "--eval", str(evaluation), "--template", "{text} It was {mask}.",
               "--verbalizer", '{"neg": "terrible", "pos": "great"}', "--model", "default",
               "--preset", "quick", "--rounds", "1", "--seed", "3", "--device", "cpu",
               "--config", json.dumps(overrides), "--out", str(out))
    assert "no pretrained MLM head" in proc.stderr  # said once, in the log
    assert "round 1 " in proc.stderr or "it/s" in proc.stderr or "step/s" in proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["round"] for m in metrics["rounds"]] == [0, 1]
    assert metrics["status"] == "completed" and metrics["mlm_head_pretrained"] is False
    config = json.loads((out / "list_prompt.json").read_text())
    assert config["base_model"] == "default" and config["mlm_head_pretrained"] is False
    assert (out / "list_weights.safetensors").stat().st_size < 5_000_000

    pred = tmp_path / "p.csv"
    run("predict", "--model-dir", str(out), "--input", str(evaluation), "--output", str(pred),
        "--device", "cpu")
    with open(pred) as fh:
        got = list(csv.DictReader(fh))
    assert len(got) == 24 and {"prediction", "prob_neg", "prob_pos"} <= set(got[0])

    proc = run("evaluate", "--model-dir", str(out), "--data", str(evaluation), "--device", "cpu")
    result = json.loads(proc.stdout)
    assert result["accuracy"] == pytest.approx(metrics["rounds"][-1]["accuracy"])
    accuracies = [m["accuracy"] for m in metrics["rounds"]]
    assert min(accuracies) > 0.7, accuracies  # the generated task is easy: it must learn


def test_cli_reports_bad_prompt_cleanly(tmp_path, capsys):
    from list_engine.__main__ import main

    labeled = write(tmp_path / "l.csv", rows(4, 0))
    code = main(["train", "--labeled", str(labeled), "--template", "{text} {mask}",
                 "--verbalizer", '{"pos": "great"}', "--no-self-training", "--out",
                 str(tmp_path / "m")])
    assert code == 2 and "at least 2" in capsys.readouterr().err
