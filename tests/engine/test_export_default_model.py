"""PEFT and merged-export parity on the packaged default model (all-MiniLM-L6-v2, 22.7M
parameters): the model users actually get, with random noise on every trainable tensor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from list_engine import PromptClassifier, resolve_model_path
from tests.engine.plain_similarity import similarity_probs

from .conftest import TEMPLATE, WORDS

pytestmark = pytest.mark.slow

TEXTS = ["a great fun movie", "boring and bad", "i love this film", "awful", "fine",
         "the plot was thin but the acting carried it " * 3]


def noisy(**kwargs) -> PromptClassifier:
    clf = PromptClassifier.create("default", TEMPLATE, WORDS, device="cpu", **kwargs)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in clf.trainable_parameters().values():
            p.add_(torch.randn(p.shape, generator=gen) * p.detach().float().std().clamp(min=0.02))
    return clf


def mask_scores(model, clf: PromptClassifier, ids: list[int]) -> np.ndarray:
    batch = clf.collate(clf.encode(TEXTS))
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    scores = logits[torch.arange(len(TEXTS)), batch["mask_pos"]][:, ids]
    return torch.softmax(scores, -1).numpy()


def test_default_model_similarity_head_with_peft(tmp_path):
    from peft import PeftModel
    from transformers import AutoModel

    clf = noisy()
    assert clf.head == "similarity"
    expected = clf.predict_proba(TEXTS)
    out = clf.save_pretrained(tmp_path / "m")
    assert json.loads((out / "adapter_config.json").read_text())[
        "base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    encoder = PeftModel.from_pretrained(AutoModel.from_pretrained(resolve_model_path("default")),
                                        out).eval()
    head = load_file(str(out / "list_head.safetensors"))
    batch = clf.collate(clf.encode(TEXTS))
    np.testing.assert_allclose(similarity_probs(encoder, head, batch), expected, atol=1e-5)


def test_default_model_mlm_head_with_peft_and_merged(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForMaskedLM

    clf = noisy(head="mlm")
    expected = clf.predict_proba(TEXTS)
    out = clf.save_pretrained(tmp_path / "m")
    ids = json.loads((out / "list_prompt.json").read_text())["label_token_ids"]
    base = AutoModelForMaskedLM.from_pretrained(resolve_model_path("default"))
    peft_model = PeftModel.from_pretrained(base, out).eval()
    np.testing.assert_allclose(mask_scores(peft_model, clf, ids), expected, atol=1e-5)
    clf.save_merged(tmp_path / "merged")
    merged = AutoModelForMaskedLM.from_pretrained(tmp_path / "merged").eval()
    np.testing.assert_allclose(mask_scores(merged, clf, ids), expected, atol=1e-5)
