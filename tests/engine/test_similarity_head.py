"""The similarity head: the prompt of an encoder without a pretrained MLM head."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from list_engine import AdapterConfig, LiSTConfig, LiSTTrainer, PromptClassifier
from list_engine.prompts import Verbalizer, label_descriptions
from tests.engine.plain_similarity import similarity_probs

from .conftest import TEMPLATE, WORDS

TEXTS = ["a great movie", "boring and bad", "x " * 100, "fine"]


def _similarity_rule(model_dir, texts, descriptions, max_length=128):
    """What the head must compute before training, written with plain transformers."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = AutoModel.from_pretrained(model_dir).eval()

    def embed(items):
        batch = tok(items, padding=True, truncation=True, max_length=max_length,
                    return_tensors="pt")
        with torch.no_grad():
            h = enc(**batch).last_hidden_state
        m = batch["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)

    logits = 20.0 * embed(texts) @ embed(descriptions).T
    return torch.softmax(logits, -1).numpy()


def test_label_descriptions():
    v = Verbalizer({"neg": "terrible", "pos": "great"})
    assert label_descriptions("{text} It was {mask}.", v) == ["It was terrible.", "It was great."]
    assert label_descriptions("{mask} news: {text}", v)[1] == "great news:"
    assert label_descriptions("{text_a}? {mask}, {text_b}", v) == ["terrible,", "great,"]
    assert label_descriptions(None, v) == ["terrible", "great"]


def test_head_chosen_from_the_checkpoint(headless_bert, tiny_bert_dir, caplog):
    with caplog.at_level(logging.INFO, logger="list_engine.modeling"):
        sim = PromptClassifier.create(str(headless_bert), TEMPLATE, WORDS, device="cpu")
    assert sim.head == "similarity" and not sim.mlm_head_pretrained
    assert "similarity head" in caplog.text and "no pretrained MLM head" in caplog.text
    assert PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS,
                                   device="cpu").head == "mlm"
    forced = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu",
                                     head="similarity")
    assert forced.head == "similarity"
    assert PromptClassifier.create(str(tiny_bert_dir), None, WORDS, mode="classic",
                                   device="cpu").head == "classic"
    with pytest.raises(ValueError, match="head must be"):
        PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, head="cosine")


def test_zero_shot_is_the_similarity_rule(headless_bert):
    clf = PromptClassifier.create(str(headless_bert), TEMPLATE, WORDS, device="cpu",
                                  adapter=AdapterConfig(init_std=0.0))
    expected = _similarity_rule(headless_bert, TEXTS, ["It was terrible.", "It was great."])
    np.testing.assert_allclose(clf.predict_proba(TEXTS), expected, atol=1e-5)
    # Only adapters and the head train; the MLM head is not used at all.
    assert all("adapter" in n or n.startswith("classifier.") for n in clf.trainable_names)
    trainable, total = clf.parameter_counts()
    assert 0 < trainable < total


def test_multi_word_descriptions_are_allowed(headless_bert):
    words = {"neg": "I hated this movie", "pos": "I loved this movie"}
    clf = PromptClassifier.create(str(headless_bert), "{text}{mask}", words, device="cpu")
    assert clf.predict_proba(["good"]).shape == (1, 2)


def test_training_moves_it_and_save_load_round_trips(headless_bert, labeled, unlabeled,
                                                     tmp_path):
    clf = PromptClassifier.create(str(headless_bert), TEMPLATE, WORDS, device="cpu")
    before = clf.predict_proba(TEXTS)
    config = LiSTConfig(teacher_steps=8, teacher_lr=1e-2, rounds=1, unlabeled_steps=4,
                        labeled_steps=2, student_lr=1e-2, labeled_batch_size=4,
                        unlabeled_batch_size=4, meta_batch_size=2, max_length=32,
                        device="cpu", kd_warmup_fraction=0.5)
    result = LiSTTrainer(clf, config, labeled, unlabeled).train()
    after = clf.predict_proba(TEXTS)
    assert result.status == "completed" and not np.allclose(before, after, atol=1e-4)
    clf.save_pretrained(tmp_path / "m")
    config_json = json.loads((tmp_path / "m" / "list_prompt.json").read_text())
    assert config_json["head"] == "similarity"
    loaded = PromptClassifier.from_pretrained(tmp_path / "m", device="cpu")
    assert loaded.head == "similarity"
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), after)


def test_merged_export_loads_with_plain_transformers(headless_bert, tmp_path):
    from transformers import AutoModel

    clf = PromptClassifier.create(str(headless_bert), TEMPLATE, WORDS, device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # random noise on every trainable tensor, adapters included
        for p in clf.trainable_parameters().values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    before = clf.predict_proba(TEXTS)
    clf.save_merged(tmp_path / "merged")
    prompt = json.loads((tmp_path / "merged" / "list_prompt.json").read_text())
    assert prompt["head"] == "similarity" and prompt["pooling"] == "mean"
    encoder = AutoModel.from_pretrained(tmp_path / "merged").eval()
    head = load_file(str(tmp_path / "merged" / "list_head.safetensors"))
    batch = clf.collate(clf.encode(TEXTS))
    np.testing.assert_allclose(similarity_probs(encoder, head, batch), before, atol=1e-5)
