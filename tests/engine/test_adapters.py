from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForMaskedLM,
    BertConfig,
    DistilBertConfig,
    ElectraConfig,
    MPNetConfig,
    RobertaConfig,
    XLMRobertaConfig,
)

from list_engine import AdapterConfig, PromptClassifier
from list_engine.adapters import AdapterLinear, UnsupportedArchitectureError, inject_adapters

from .conftest import TEMPLATE, WORDS

SMALL = dict(vocab_size=99, hidden_size=12, num_hidden_layers=2, num_attention_heads=2,
             intermediate_size=24)


@pytest.mark.parametrize(("config", "expected"), [
    (BertConfig(**SMALL), {"attention.output.dense", "output.dense"}),
    (RobertaConfig(**SMALL), {"attention.output.dense", "output.dense"}),
    (XLMRobertaConfig(**SMALL), {"attention.output.dense", "output.dense"}),
    (ElectraConfig(embedding_size=8, **SMALL), {"attention.output.dense", "output.dense"}),
    (MPNetConfig(**SMALL), {"attention.attn.o", "output.dense"}),
    (DistilBertConfig(vocab_size=99, dim=12, n_layers=2, n_heads=2, hidden_dim=24),
     {"attention.out_lin", "ffn.lin2"}),
])
def test_target_map_matches_real_modules(config, expected):
    torch.manual_seed(0)
    model = AutoModelForMaskedLM.from_config(config)
    names = inject_adapters(model, config.model_type, AdapterConfig(bottleneck=3), 12)
    assert len(names) == 4  # two per layer, two layers
    assert {n.split(".", 4)[-1] for n in names} == expected
    wrapped = [m for m in model.modules() if isinstance(m, AdapterLinear)]
    assert len(wrapped) == 4 and wrapped[0].adapter_down.weight.shape == (3, 12)
    assert wrapped[0].adapter_down.bias is None and wrapped[0].adapter_up.bias is None


def test_unsupported_architecture_names_it():
    with pytest.raises(UnsupportedArchitectureError, match="'gpt2'"):
        inject_adapters(torch.nn.Linear(2, 2), "gpt2", AdapterConfig(), 2)


def test_only_intended_parameters_train(tiny_bert_dir):
    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu")
    trainable = [n for n, p in clf.module.named_parameters() if p.requires_grad]
    assert trainable == clf.trainable_names
    for name in trainable:
        assert (".adapter_down." in name or ".adapter_up." in name
                or name.startswith("mlm.cls.predictions.")), name
    head = {n for n in trainable if n.startswith("mlm.cls.")}
    assert head == {"mlm.cls.predictions.transform.dense.weight",
                    "mlm.cls.predictions.transform.dense.bias",
                    "mlm.cls.predictions.transform.LayerNorm.weight",
                    "mlm.cls.predictions.transform.LayerNorm.bias",
                    "mlm.cls.predictions.decoder.weight", "mlm.cls.predictions.decoder.bias"}
    params = dict(clf.module.named_parameters())
    assert params["mlm.cls.predictions.decoder.weight"].shape == (2, 32)  # label rows only
    assert not params["mlm.bert.embeddings.word_embeddings.weight"].requires_grad
    n_trainable, n_total = clf.parameter_counts()
    bottleneck = round(32 / 6)
    adapters = 2 * 2 * 2 * 32 * bottleneck  # layers x sites x (down + up)
    assert n_trainable == adapters + (32 * 32 + 32) + 2 * 32 + (2 * 32 + 2)  # dense, LN, rows
    assert n_total > 10 * n_trainable


def test_identity_at_init(tiny_bert_dir):
    texts = ["a great movie", "boring and bad"]
    plain = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu",
                                    adapter=AdapterConfig(init_std=0.0))
    small = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu")
    # init_std=0: exactly the base model; default 2e-4: within a tight tolerance
    batch = plain.collate(plain.encode(texts))
    with torch.no_grad():
        base_hidden = plain.module.mlm.base_model(input_ids=batch["input_ids"],
                                                  attention_mask=batch["attention_mask"])[0]
        plain.merge()
        merged_hidden = plain.module.mlm.base_model(input_ids=batch["input_ids"],
                                                    attention_mask=batch["attention_mask"])[0]
    assert torch.equal(base_hidden, merged_hidden)
    np.testing.assert_allclose(small.predict_proba(texts), plain.predict_proba(texts), atol=1e-4)


def test_merge_is_exact(tiny_bert_dir):
    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu",
                                  adapter=AdapterConfig(init_std=0.2))
    texts = ["a great movie", "boring and bad", "fine"]
    before = clf.predict_proba(texts)
    assert clf.merge() == 4
    assert not any(isinstance(m, AdapterLinear) for m in clf.module.modules())
    np.testing.assert_allclose(clf.predict_proba(texts), before, atol=1e-5)
    assert abs(before - 0.5).max() > 1e-3  # the adapters did change the model


@pytest.mark.parametrize("kind", ["roberta", "xlm-roberta", "electra", "mpnet", "distilbert"])
def test_prompt_classifier_on_every_architecture(kind, tiny_bert_dir, tmp_path):
    """Head paths of the target map work end to end (WordPiece vocab reused for all)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    vocab = len(tokenizer)
    small = dict(SMALL, vocab_size=vocab, max_position_embeddings=64,
                 pad_token_id=tokenizer.pad_token_id)
    config = {
        "roberta": lambda: RobertaConfig(**small),
        "xlm-roberta": lambda: XLMRobertaConfig(**small),
        "electra": lambda: ElectraConfig(embedding_size=8, **small),
        "mpnet": lambda: MPNetConfig(**small),
        "distilbert": lambda: DistilBertConfig(vocab_size=vocab, dim=12, n_layers=2, n_heads=2,
                                               hidden_dim=24, max_position_embeddings=64,
                                               pad_token_id=tokenizer.pad_token_id),
    }[kind]()
    torch.manual_seed(0)
    AutoModelForMaskedLM.from_config(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    clf = PromptClassifier.create(str(tmp_path), TEMPLATE, WORDS, device="cpu")
    assert clf.model_type == kind and clf.mlm_head_pretrained
    probs = clf.predict_proba(["a great movie", "bad"])
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1.0, atol=1e-6)
    names = clf.trainable_names
    assert sum("adapter_down" in n for n in names) == 4
    head = [n for n in names if "adapter" not in n]
    assert any(n.endswith("decoder.weight") or n.endswith("lm_head.weight")
               or n.endswith("vocab_projector.weight") for n in head), head
    assert len(head) >= 5  # transform dense (w, b), LayerNorm (w, b), label rows (w, b)
