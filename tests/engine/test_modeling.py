from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from list_engine import (
    Example,
    ModelLoadError,
    PromptClassifier,
    mean_pooled_embeddings,
    resolve_model_path,
)

from .conftest import TEMPLATE, WORDS


def test_resolve_default():
    assert resolve_model_path("default").endswith("model") or "minilm" in resolve_model_path(
        "default").lower()
    assert resolve_model_path("/x/y") == "/x/y"


def test_untrained_head_detected_and_recorded(headless_bert, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        clf = PromptClassifier.create(str(headless_bert), TEMPLATE, WORDS, device="cpu",
                                      head="mlm")
    assert clf.mlm_head_pretrained is False and clf.head == "mlm"
    assert "no pretrained MLM head" in caplog.text and "zero-shot is chance" in caplog.text
    again = PromptClassifier.create(str(headless_bert), TEMPLATE, WORDS, device="cpu",
                                    head="mlm")
    # the untrained head is initialised deterministically (same in every process)
    a, b = clf.trainable_state(), again.trainable_state()
    for name in a:
        if "adapter" not in name:
            assert torch.equal(a[name], b[name]), name
    clf.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "list_prompt.json").read_text())
    assert saved["mlm_head_pretrained"] is False


def test_pretrained_head_flag(tiny_bert_dir):
    assert PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS,
                                   device="cpu").mlm_head_pretrained


def test_unreachable_hub_name_is_explained(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="no-such-org/no-such-model.*local"):
        PromptClassifier.create("no-such-org/no-such-model", TEMPLATE, WORDS, device="cpu")


def test_save_load_round_trip(tiny_bert_dir, tmp_path):
    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu")
    with torch.no_grad():  # make every trainable tensor non-trivial
        gen = torch.Generator().manual_seed(0)
        for p in clf.trainable_parameters().values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    texts = ["a great movie", "boring and bad", "x " * 100]
    before = clf.predict_proba(texts)
    clf.save_pretrained(tmp_path / "m", metrics={"accuracy": 0.5})
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["adapter_config.json", "adapter_model.safetensors", "list_prompt.json",
                     "list_weights.safetensors"]
    raw = (tmp_path / "m" / "list_prompt.json").read_text()
    config = json.loads(raw)
    assert list(config) == sorted(config)
    for key in ("base_model", "base_model_sha256", "adapter", "template", "verbalizer",
                "labels", "mode", "metrics", "mlm_head_pretrained", "library_version",
                "environment"):
        assert key in config, key
    assert len(config["base_model_sha256"]) == 64
    loaded = PromptClassifier.from_pretrained(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(loaded.predict_proba(texts), before)
    assert loaded.labels == ["neg", "pos"] and loaded.metrics == {"accuracy": 0.5}


def test_save_load_keeps_class_order(tiny_bert_dir, tmp_path):
    """Labels not in alphabetical order survive the sorted-keys JSON config."""
    words = {"pos": "great", "neg": "terrible", "mid": "fine"}
    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, words, device="cpu")
    before = clf.predict_proba(["a great movie", "dull"])
    clf.save_pretrained(tmp_path / "m")
    loaded = PromptClassifier.from_pretrained(tmp_path / "m", device="cpu")
    assert loaded.labels == ["pos", "neg", "mid"]
    np.testing.assert_array_equal(loaded.predict_proba(["a great movie", "dull"]), before)


def test_predict_keeps_order_and_examples(tiny_bert_dir):
    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu")
    texts = ["long " * 30, "short", "medium length text here"]
    batched = clf.predict_proba(texts, batch_size=2)
    single = np.concatenate([clf.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    np.testing.assert_allclose(batched.sum(1), 1.0, atol=1e-6)
    assert clf.predict([Example("short")]) [0] in ("neg", "pos")
    metrics = clf.evaluate([Example("good", label="pos"), Example("bad", label="neg")])
    assert set(metrics) >= {"accuracy", "macro_f1", "per_class", "confusion", "labels"}
    assert np.array(metrics["confusion"]).sum() == 2


def test_classic_and_full_modes(tiny_bert_dir):
    classic = PromptClassifier.create(str(tiny_bert_dir), None, WORDS, mode="classic",
                                      device="cpu")
    names = classic.trainable_names
    assert all("adapter" in n or n.startswith("classifier.") for n in names)
    assert classic.predict_proba(["a", "b c"]).shape == (2, 2)
    full = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, mode="full",
                                   device="cpu")
    trainable, total = full.parameter_counts()
    assert trainable == total and not any("adapter" in n for n in full.trainable_names)


def test_mean_pooled_embeddings(tiny_bert_dir):
    emb = mean_pooled_embeddings(["hello world", "a", "hello world"], model=str(tiny_bert_dir),
                                 device="cpu", batch_size=2)
    assert emb.shape == (3, 32) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(emb[0], emb[2], atol=1e-5)
