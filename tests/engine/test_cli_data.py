"""The command line reads its data with the one reader: long documents (issue 15: a field of
more than 131,072 characters killed `train` with `_csv.Error: field larger than field
limit`), every file format, `datasets` folders with splits (issue 12), clear errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from list_engine.__main__ import main as cli
from list_engine.reading import read_table

from .conftest import NEG, POS, TEMPLATE, WORDS

TINY_RUN = {"teacher_steps": 3, "unlabeled_steps": 2, "labeled_steps": 1,
            "unlabeled_sample_size": 8, "max_length": 24, "lr_candidates": None,
            "labeled_batch_size": 4, "unlabeled_batch_size": 4, "meta_batch_size": 2}
LONG_DOC = ("a great fun movie " * 16_667)[:300_000]  # 300,000 characters


def train_args(tiny_bert_dir, out, labeled: str, *extra: str) -> list[str]:
    return ["train", "--labeled", labeled, "--template", TEMPLATE,
            "--verbalizer", json.dumps(WORDS), "--model", str(tiny_bert_dir),
            "--rounds", "1", "--seed", "0", "--device", "cpu", "--no-progress",
            "--config", json.dumps(TINY_RUN), "--out", str(out), *extra]


def test_cli_trains_and_predicts_with_a_300000_character_document(tiny_bert_dir, tmp_path):
    assert len(LONG_DOC) == 300_000
    labeled = pd.DataFrame({"text": POS[:3] + NEG[:3] + [LONG_DOC],
                            "label": ["pos"] * 3 + ["neg"] * 3 + ["pos"]})
    labeled.to_csv(tmp_path / "labeled.csv", index=False)
    unlabeled = tmp_path / "unlabeled.jsonl"
    unlabeled.write_text("\n".join(json.dumps({"text": t}) for t in POS[3:] + NEG[3:] + [LONG_DOC]))
    out = tmp_path / "model"
    code = cli(train_args(tiny_bert_dir, out, str(tmp_path / "labeled.csv"),
                          "--unlabeled", str(unlabeled)))
    assert code == 0 and (out / "metrics.json").is_file()

    pd.DataFrame({"id": ["long", "short"], "text": [LONG_DOC, "a bad film"]}).to_parquet(
        tmp_path / "to_predict.parquet")
    code = cli(["predict", "--model-dir", str(out), "--input", str(tmp_path / "to_predict.parquet"),
                "--output", str(tmp_path / "pred.csv"), "--device", "cpu"])
    assert code == 0
    predictions = read_table(tmp_path / "pred.csv")
    assert predictions["text"].tolist() == [LONG_DOC, "a bad film"]
    assert set(predictions["prediction"]) <= {"neg", "pos"}
    assert {"prob_neg", "prob_pos"} <= set(predictions.columns)


def test_cli_trains_and_evaluates_on_a_datasets_folder(tiny_bert_dir, tmp_path, capsys):
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    split = {"train": (POS[:4] + NEG[:4], [1] * 4 + [0] * 4), "test": (POS[4:] + NEG[4:], [1, 1, 0, 0])}
    datasets.DatasetDict({name: datasets.Dataset.from_dict({"sentence": texts, "label": labels},
                                                           features=features)
                          for name, (texts, labels) in split.items()}
                         ).save_to_disk(str(tmp_path / "reviews"))
    folder = str(tmp_path / "reviews")
    out = tmp_path / "model"
    assert cli(train_args(tiny_bert_dir, out, f"{folder}:train", "--unlabeled", f"{folder}:test",
                          "--eval", f"{folder}:test")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["round"] for m in metrics["rounds"]] == [0, 1]
    capsys.readouterr()
    assert cli(["evaluate", "--model-dir", str(out), "--data", f"{folder}:test",
                "--device", "cpu"]) == 0
    assert 0.0 <= json.loads(capsys.readouterr().out)["accuracy"] <= 1.0

    # No split named: the error lists the splits and says how to pick one.
    assert cli(train_args(tiny_bert_dir, tmp_path / "m2", folder)) == 2
    assert "holds the splits train, test: pick one" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "name", "message"), [
    ("text,label\ngood,pos\nbad\n", "ragged.csv", "line 3 has 1"),
    ("comment,label\ngood,pos\n", "nocol.csv", "needs a text column named 'text'"),
    ("text\ngood\n", "nolabel.csv", "needs a 'label' column"),
    ("text,label\ngood,pos\nbad,\n", "emptylabel.csv", "row 2 has an empty label"),
    ('{"text": "good", "label": "pos"}\nnot json\n', "bad.jsonl", "line 2 is not valid JSON"),
])
def test_cli_data_errors_are_clear_and_come_before_training(tmp_path, capsys, content, name,
                                                           message):
    (tmp_path / name).write_text(content)
    code = cli(["train", "--labeled", str(tmp_path / name), "--template", TEMPLATE,
                "--verbalizer", json.dumps(WORDS), "--model", "/nonexistent/model",
                "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and str(tmp_path / name) in err
    assert "Traceback" not in err and not (tmp_path / "m").exists()


def test_cli_hub_dataset_offline_fails_fast(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = cli(["train", "--labeled", "someone/reviews:train", "--template", TEMPLATE,
                "--verbalizer", json.dumps(WORDS), "--out", str(tmp_path / "m")])
    assert code == 2 and "Hub cannot be reached" in capsys.readouterr().err
