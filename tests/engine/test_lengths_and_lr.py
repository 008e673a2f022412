"""max_length from the documents, and the learning rate chosen by cross-validation."""

from __future__ import annotations

import json

import pytest

from list_engine import Callback, LiSTConfig, LiSTTrainer, PromptClassifier, load_tokenizer
from list_engine.lengths import choose_max_length, model_max_length

from .conftest import TEMPLATE, WORDS


def test_choose_max_length_follows_the_documents(tiny_bert_dir):
    tok = load_tokenizer(str(tiny_bert_dir))
    short = ["a good film"] * 50
    long = ["word " * 400] * 50
    assert choose_max_length(short, tok, cap=256) == 16  # the floor
    assert choose_max_length(long, tok, cap=256) == 256  # the model's cap
    mixed = ["word " * n for n in range(1, 101)]  # 95th percentile ~ 95 words + 2 specials
    length = choose_max_length(mixed, tok, cap=512)
    assert length % 8 == 0 and 96 <= length <= 112
    assert choose_max_length(mixed, tok, cap=512, extra_tokens=8) == length + 8
    assert choose_max_length([], tok, cap=64) == 64


def test_model_max_length_reads_the_sentence_transformers_limit(tiny_bert_dir, tmp_path):
    import shutil

    for f in tiny_bert_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    tok = load_tokenizer(str(tmp_path))
    assert model_max_length(str(tmp_path), tok) <= 512
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 100}))
    assert model_max_length(str(tmp_path), tok) == 100


def _tiny_config(**overrides) -> LiSTConfig:
    base = dict(teacher_steps=3, rounds=1, unlabeled_steps=2, labeled_steps=1,
                labeled_batch_size=2, unlabeled_batch_size=2, meta_batch_size=2, device="cpu",
                teacher_lr=1e-3, student_lr=1e-3)
    return LiSTConfig(**{**base, **overrides})


def test_auto_max_length_is_used_and_reported(tiny_bert_dir, labeled, unlabeled):
    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu",
                                  max_length=None)
    assert clf.max_length == clf.model_max_length
    seen = {}
    trainer = LiSTTrainer(clf, _tiny_config(max_length=None), labeled, unlabeled)
    trainer.add_callback(type("C", (Callback,), {"on_train_start": lambda self, info: seen.update(info)})())
    trainer.train()
    assert 16 <= seen["max_length"] <= 64 and clf.max_length == seen["max_length"]
    assert seen["head"] == "mlm"


def test_lr_chosen_by_cross_validation_and_kept_on_resume(tiny_bert_dir, labeled, unlabeled,
                                                          tmp_path):
    config = _tiny_config(lr_candidates=[1e-2, 1e-5])
    assert config.lr_candidates == (1e-5, 1e-2)
    # 2 folds x 2 candidates x ceil(3 / 2) steps (a fold has half the labels), teacher, round
    assert config.fold_steps == 2 and config.total_steps == 2 * 2 * 2 + 3 + 3
    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu")
    phases = []
    trainer = LiSTTrainer(clf, config, labeled, unlabeled)
    trainer.add_callback(type("C", (Callback,), {"on_step": lambda self, e: phases.append(e.phase)})())
    result = trainer.train(checkpoint_dir=tmp_path)
    first = result.metrics[0]
    assert first["selected_lr"] in (1e-5, 1e-2) and trainer.selected_lr == first["selected_lr"]
    assert set(first["lr_cv_accuracy"]) == {"1e-05", "0.01"}
    assert phases.count("select_lr") == 8 and len(phases) == config.total_steps
    again = LiSTTrainer(PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS,
                                                device="cpu"), config, labeled, unlabeled)
    again.train(resume_from=tmp_path / "round-0")
    assert again.selected_lr == first["selected_lr"]


@pytest.mark.parametrize("bad", [[], [0.0], [float("nan")], "fast"])
def test_bad_lr_candidates_are_refused(bad):
    with pytest.raises(ValueError, match="lr_candidates"):
        LiSTConfig(lr_candidates=bad)
