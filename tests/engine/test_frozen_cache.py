"""Adapters in the top layers only, and the frozen layers below them computed once per
document: the cached path must be the same model as the full forward pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from list_engine import AdapterConfig, LiSTTrainer, PromptClassifier
from list_engine.adapters import adapter_modules, adapters_disabled, layer_index

from .conftest import TEMPLATE, WORDS
from .test_self_training import tiny_config

TEXTS = ["a great fun movie with a long story", "bad", "i hate this film, boring and sad",
         "good and great music"]


def make(model_dir, layers=1, mode="prompt", head="auto"):
    return PromptClassifier.create(str(model_dir), TEMPLATE if mode != "classic" else None,
                                   WORDS, mode=mode, device="cpu", head=head,
                                   adapter=AdapterConfig(layers=layers, init_std=0.05))


def test_adapters_only_in_the_top_layers(tiny_bert_dir):
    clf = make(tiny_bert_dir, layers=1)
    assert {layer_index(n) for n, _ in adapter_modules(clf.module)} == {1}
    assert clf.cache_start == 1
    every = make(tiny_bert_dir, layers=None)
    assert {layer_index(n) for n, _ in adapter_modules(every.module)} == {0, 1}
    assert every.cache_start == 0  # nothing frozen below the first adapter: nothing cached
    assert clf.parameter_counts()[0] < every.parameter_counts()[0]


@pytest.mark.parametrize("head,mode", [("mlm", "prompt"), ("similarity", "prompt"),
                                       ("auto", "classic")])
def test_cached_logits_and_gradients_equal_the_full_pass(tiny_bert_dir, head, mode):
    clf = make(tiny_bert_dir, mode=mode, head=head)
    encoded = clf.encode(TEXTS)
    cached = clf.cache_frozen(encoded)
    assert all(e.hidden is not None for e in cached)
    np.testing.assert_allclose(clf.predict_encoded(cached), clf.predict_encoded(encoded),
                               atol=1e-5, rtol=0)
    grads = []
    for enc in (encoded, cached):
        clf.module.zero_grad()
        clf.module.eval()  # no dropout: the two passes must be the same function
        clf.logits(clf.collate(enc)).square().sum().backward()
        grads.append({n: p.grad.clone() for n, p in clf.trainable_parameters().items()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-5, rtol=1e-4)


def test_adapters_disabled_is_the_plain_encoder(tiny_bert_dir):
    clf = make(tiny_bert_dir)
    batch = clf.collate(clf.encode(TEXTS))
    plain = clf.module.mlm.base_model(input_ids=batch["input_ids"],
                                      attention_mask=batch["attention_mask"])[0]
    for _, module in adapter_modules(clf.module):  # the adapters' effect, removed by hand
        module.adapter_up.weight.data.zero_()
    zeroed = clf.module.mlm.base_model(input_ids=batch["input_ids"],
                                       attention_mask=batch["attention_mask"])[0]
    clf2 = make(tiny_bert_dir)
    with adapters_disabled(clf2.module):
        off = clf2.module.mlm.base_model(input_ids=batch["input_ids"],
                                         attention_mask=batch["attention_mask"])[0]
    assert not torch.allclose(plain, zeroed, atol=1e-4)  # the adapters did something
    torch.testing.assert_close(off, zeroed, atol=1e-6, rtol=0)
    emb = clf2.frozen_embeddings(clf2.cache_frozen(clf2.encode(TEXTS)))
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_training_on_the_cache_equals_training_without_it(tiny_bert_dir, labeled, unlabeled):
    cfg = tiny_config(adapter={"layers": 1}, student_init="teacher", neighbour_weight=0.5,
                      neighbours=3, pseudo_label_temperature=0.5, token_drop=0.2)
    cached = make(tiny_bert_dir)
    uncached = make(tiny_bert_dir)
    uncached.module.cache_start = 0  # the full forward pass at every step
    assert cached.cache_start == 1 and uncached.cache_start == 0
    # The one intended difference: cached frozen layers ran once, without dropout; with
    # dropout off everywhere the two runs must be the same computation.
    for clf in (cached, uncached):
        for module in clf.module.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    for clf in (cached, uncached):
        LiSTTrainer(clf, cfg, labeled, unlabeled).train()
    np.testing.assert_allclose(cached.predict_proba(TEXTS), uncached.predict_proba(TEXTS),
                               atol=1e-5, rtol=0)


def test_top_layer_adapters_save_load_and_export(tiny_bert_dir, labeled, unlabeled, tmp_path):
    clf = make(tiny_bert_dir)
    LiSTTrainer(clf, tiny_config(adapter={"layers": 1}), labeled, unlabeled).train()
    clf.save_pretrained(tmp_path / "m")
    peft = json.loads((tmp_path / "m" / "adapter_config.json").read_text())
    assert peft["target_modules"] and all(".layer.1." in t for t in peft["target_modules"]
                                          if ".layer." in t)
    again = PromptClassifier.from_pretrained(tmp_path / "m", device="cpu")
    assert again.adapter_config.layers == 1 and again.cache_start == 1
    np.testing.assert_allclose(again.predict_proba(TEXTS), clf.predict_proba(TEXTS),
                               atol=1e-5, rtol=0)
