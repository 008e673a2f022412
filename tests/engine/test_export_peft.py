"""The PEFT view of a saved model: plain transformers + peft give list_engine's probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from list_engine import PromptClassifier
from tests.engine.plain_similarity import similarity_probs

from .conftest import TEMPLATE, WORDS

TEXTS = ["a great fun movie", "boring and bad", "i love this film", "awful", "fine"]


def perturbed(model_dir, **kwargs) -> PromptClassifier:
    """A classifier whose every trainable tensor carries different random noise."""
    clf = PromptClassifier.create(str(model_dir), TEMPLATE, WORDS, device="cpu", **kwargs)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in clf.trainable_parameters().values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return clf


def mlm_probs_with_peft(clf: PromptClassifier, base_dir, adapter_dir) -> np.ndarray:
    from peft import PeftModel
    from transformers import AutoModelForMaskedLM

    model = PeftModel.from_pretrained(AutoModelForMaskedLM.from_pretrained(base_dir),
                                      adapter_dir).eval()
    ids = json.loads((adapter_dir / "list_prompt.json").read_text())["label_token_ids"]
    batch = clf.collate(clf.encode(TEXTS))
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"],
                       attention_mask=batch["attention_mask"]).logits  # (B, T, V)
    scores = logits[torch.arange(len(TEXTS)), batch["mask_pos"]][:, ids]
    return torch.softmax(scores, -1).numpy()


@pytest.mark.parametrize("model", ["tiny_bert_dir", "tiny_roberta_dir"])
def test_mlm_head_loads_with_peft_and_gives_the_same_probabilities(model, request, tmp_path):
    from peft import PeftConfig

    base = request.getfixturevalue(model)
    words = {"neg": " terrible", "pos": " great"} if model == "tiny_roberta_dir" else WORDS
    clf = PromptClassifier.create(str(base), TEMPLATE, words, device="cpu", head="mlm")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in clf.trainable_parameters().values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    expected = clf.predict_proba(TEXTS)
    out = clf.save_pretrained(tmp_path / "m")
    config = PeftConfig.from_pretrained(out)
    assert config.peft_type == "LORA" and config.base_model_name_or_path == str(base)
    np.testing.assert_allclose(mlm_probs_with_peft(clf, base, out), expected, atol=1e-5)
    reloaded = PromptClassifier.from_pretrained(out, device="cpu")
    np.testing.assert_array_equal(reloaded.predict_proba(TEXTS), expected)


def test_mlm_head_without_pretrained_head_loads_with_peft(headless_bert, tmp_path):
    """The transform starts from list_engine's own init, the decoder bias from zero: the
    PEFT view stores both so a plain load (random transform) is overwritten."""
    clf = perturbed(headless_bert, head="mlm")
    assert not clf.mlm_head_pretrained
    expected = clf.predict_proba(TEXTS)
    out = clf.save_pretrained(tmp_path / "m")
    np.testing.assert_allclose(mlm_probs_with_peft(clf, headless_bert, out), expected, atol=1e-5)


def test_similarity_head_loads_with_peft_on_automodel(headless_bert, tmp_path):
    from peft import PeftModel
    from transformers import AutoModel

    clf = perturbed(headless_bert)
    assert clf.head == "similarity"
    expected = clf.predict_proba(TEXTS)
    out = clf.save_pretrained(tmp_path / "m")
    saved = json.loads((out / "list_prompt.json").read_text())
    assert saved["peft_base_class"] == "AutoModel"
    encoder = PeftModel.from_pretrained(AutoModel.from_pretrained(headless_bert), out).eval()
    head = load_file(str(out / "list_head.safetensors"))
    batch = clf.collate(clf.encode(TEXTS))
    np.testing.assert_allclose(similarity_probs(encoder, head, batch), expected, atol=1e-5)
    np.testing.assert_array_equal(
        PromptClassifier.from_pretrained(out, device="cpu").predict_proba(TEXTS), expected)


@pytest.mark.parametrize("model", ["tiny_bert_dir", "tiny_roberta_dir"])
def test_classic_mode_loads_with_peft_as_sequence_classification(model, request, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    base = request.getfixturevalue(model)
    clf = perturbed(base, mode="classic")
    expected = clf.predict_proba(TEXTS)
    out = clf.save_pretrained(tmp_path / "m")
    saved = json.loads((out / "list_prompt.json").read_text())
    assert saved["peft_base_class"] == "AutoModelForSequenceClassification"
    plain = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2)
    classifier = PeftModel.from_pretrained(plain, out).eval()
    batch = clf.collate(clf.encode(TEXTS))
    with torch.no_grad():
        logits = classifier(input_ids=batch["input_ids"],
                            attention_mask=batch["attention_mask"]).logits
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), expected, atol=1e-5)


def test_transformers_loads_the_folder_directly(tiny_bert_dir, tmp_path):
    """transformers' own PEFT integration: from_pretrained(export folder) fetches the base
    model named in adapter_config.json and attaches the adapter (it used to raise KeyError)."""
    from transformers import AutoModelForMaskedLM

    clf = perturbed(tiny_bert_dir, head="mlm")
    out = clf.save_pretrained(tmp_path / "m")
    model = AutoModelForMaskedLM.from_pretrained(out).eval()
    ids = json.loads((out / "list_prompt.json").read_text())["label_token_ids"]
    batch = clf.collate(clf.encode(TEXTS))
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    scores = logits[torch.arange(len(TEXTS)), batch["mask_pos"]][:, ids]
    np.testing.assert_allclose(torch.softmax(scores, -1).numpy(), clf.predict_proba(TEXTS),
                               atol=1e-5)
