"""Hostile numbers that used to pass validation (issue: reliability probe). Each fails clearly."""

from __future__ import annotations

import pytest
import torch

from list_engine import LiSTConfig, PromptClassifier
from list_engine.__main__ import main as cli
from list_engine.training import NonFiniteLossError, Stepper, make_optimizer

from .conftest import TEMPLATE, WORDS


@pytest.mark.parametrize(("field", "value", "message"), [
    ("teacher_lr", float("inf"), "teacher_lr must be a finite number"),
    ("student_lr", float("nan"), "student_lr must be a finite number"),
    ("teacher_lr", 10.0, "learning rates above 1.0"),
    ("teacher_steps", 10**9, "teacher_steps must be an int from 0 to 1,000,000"),
    ("rounds", 1000, "rounds must be an int from 0 to 100"),
    ("seed", -1, "seed must be an int"),
    ("seed", 2**40, "seed must be an int"),
    ("weight_decay", float("inf"), "weight_decay must be a finite"),
    ("grad_clip", float("nan"), "grad_clip must be a finite"),
    ("lr_candidates", [1e-4, float("inf")], "lr_candidates"),
])
def test_config_refuses_hostile_numbers(field, value, message):
    with pytest.raises(ValueError, match=message):
        LiSTConfig(**{field: value})


def test_a_non_finite_loss_stops_training_with_a_clear_message():
    param = torch.nn.Parameter(torch.ones(3))
    optimizer, scheduler = make_optimizer([param], 1e-3, 10, LiSTConfig())
    stepper = Stepper(optimizer, scheduler, [param], 1.0)
    stepper.step((param * 2).sum())  # a finite loss steps as before
    before = param.detach().clone()
    with pytest.raises(NonFiniteLossError, match="diverged.*Lower the learning rate"):
        stepper.step((param * float("inf")).sum())
    assert torch.equal(param.detach(), before)  # no NaN written into the weights


def test_predict_refuses_a_bad_batch_size(tiny_bert_dir, tmp_path, capsys):
    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu")
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        clf.predict_proba(["a text"], batch_size=-1)
    clf.save_pretrained(tmp_path / "m")
    (tmp_path / "in.csv").write_text("text\nfine\n")
    with pytest.raises(SystemExit) as exit_info:
        cli(["predict", "--model-dir", str(tmp_path / "m"), "--input", str(tmp_path / "in.csv"),
             "--output", str(tmp_path / "out.csv"), "--batch-size", "-1"])
    assert exit_info.value.code == 2 and "must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()


def test_cli_train_refuses_bad_config_and_out_before_training(tmp_path, capsys):
    labeled = tmp_path / "l.csv"
    labeled.write_text("text,label\ngood,pos\nbad,neg\n")
    base = ["train", "--labeled", str(labeled), "--verbalizer", '{"neg": "bad", "pos": "good"}',
            "--template", "{text} It was {mask}."]
    for config, message in (("[1, 2]", "must be a JSON object"), ("{rounds: 1", "--config is not")):
        with pytest.raises(SystemExit, match=message):
            cli([*base, "--config", config, "--out", str(tmp_path / "m")])
    (tmp_path / "taken").write_text("x")
    with pytest.raises(SystemExit, match="existing file"):
        cli([*base, "--out", str(tmp_path / "taken")])


def test_cli_predictions_are_safe_to_open_in_a_spreadsheet(tiny_bert_dir, tmp_path):
    import csv

    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu")
    clf.save_pretrained(tmp_path / "m")
    (tmp_path / "in.csv").write_text('text\n"=HYPERLINK(""http://x"")"\n@SUM(A1)\nplain\n')
    assert cli(["predict", "--model-dir", str(tmp_path / "m"), "--input",
                str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.csv")]) == 0
    with open(tmp_path / "out.csv", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    assert texts == ["'=HYPERLINK(\"http://x\")", "'@SUM(A1)", "plain"]


@pytest.mark.parametrize("word", ["[MASK]", "[SEP]", "[CLS]"])
def test_special_tokens_are_not_label_words(tiny_bert_dir, word):
    from list_engine import PromptError, load_tokenizer
    from list_engine.prompts import Verbalizer

    tok = load_tokenizer(str(tiny_bert_dir))
    problems = Verbalizer({"neg": word, "pos": "good"}).word_problems(tok)
    assert any("special token" in p for p in problems)
    with pytest.raises(PromptError, match="special token"):
        PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, {"neg": word, "pos": "good"},
                                device="cpu")
