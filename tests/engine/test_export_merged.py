"""The merged export through plain transformers gives the unmerged classifier's probabilities
(every trainable tensor perturbed by its own random noise, which a softmax cannot cancel)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from list_engine import PromptClassifier

from .conftest import TEMPLATE, WORDS

TEXTS = ["a great fun movie", "boring and bad", "i love this film", "awful", "fine"]


def perturb(clf: PromptClassifier, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in clf.trainable_parameters().values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)


@pytest.mark.parametrize("model", ["tiny_bert_dir", "tiny_roberta_dir", "headless_bert"])
def test_merged_mlm_head_through_plain_transformers(model, request, tmp_path):
    from transformers import AutoModelForMaskedLM

    base = request.getfixturevalue(model)
    words = {"neg": " terrible", "pos": " great"} if model == "tiny_roberta_dir" else WORDS
    clf = PromptClassifier.create(str(base), TEMPLATE, words, device="cpu", head="mlm")
    perturb(clf)
    expected = clf.predict_proba(TEXTS)
    batch = clf.collate(clf.encode(TEXTS))
    clf.save_merged(tmp_path / "merged")
    prompt = json.loads((tmp_path / "merged" / "list_prompt.json").read_text())
    plain, info = AutoModelForMaskedLM.from_pretrained(tmp_path / "merged",
                                                       output_loading_info=True)
    assert not info["missing_keys"], info["missing_keys"]
    with torch.no_grad():
        logits = plain.eval()(input_ids=batch["input_ids"],
                              attention_mask=batch["attention_mask"]).logits
    scores = logits[torch.arange(len(TEXTS)), batch["mask_pos"]][:, prompt["label_token_ids"]]
    np.testing.assert_allclose(torch.softmax(scores, -1).numpy(), expected, atol=1e-5)


def test_merged_full_mode_through_plain_transformers(tiny_bert_dir, tmp_path):
    from transformers import AutoModelForMaskedLM

    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu",
                                  mode="full", head="mlm")
    perturb(clf)
    expected = clf.predict_proba(TEXTS)
    batch = clf.collate(clf.encode(TEXTS))
    clf.save_merged(tmp_path / "merged")
    ids = json.loads((tmp_path / "merged" / "list_prompt.json").read_text())["label_token_ids"]
    plain = AutoModelForMaskedLM.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        logits = plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    scores = logits[torch.arange(len(TEXTS)), batch["mask_pos"]][:, ids]
    np.testing.assert_allclose(torch.softmax(scores, -1).numpy(), expected, atol=1e-5)


def test_merged_similarity_head_through_plain_automodel(headless_bert, tmp_path):
    """The snippet of the model card: AutoModel + list_head.safetensors."""
    from transformers import AutoModel, AutoTokenizer

    clf = PromptClassifier.create(str(headless_bert), TEMPLATE, WORDS, device="cpu")
    assert clf.head == "similarity"
    perturb(clf)
    expected = clf.predict_proba(TEXTS)
    clf.save_merged(tmp_path / "merged")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "merged")
    encoder = AutoModel.from_pretrained(tmp_path / "merged").eval()
    head = load_file(str(tmp_path / "merged" / "list_head.safetensors"))
    enc = tokenizer(TEXTS, padding=True, truncation=True, max_length=clf.max_length,
                    return_tensors="pt")
    with torch.no_grad():
        h = encoder(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    pooled = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    emb = torch.nn.functional.normalize(head["label_embeddings"], dim=-1)
    logits = head["log_scale"].exp() * pooled @ emb.T + head["bias"]
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), expected, atol=1e-5)


def test_merged_similarity_head_runs_in_sentence_transformers(headless_bert, tmp_path):
    """sentence-transformers (a dev dependency here) reads the merged folder as Transformer ->
    mean pooling -> normalise -> Dense, whose output is the class logits."""
    st = pytest.importorskip("sentence_transformers")
    clf = PromptClassifier.create(str(headless_bert), TEMPLATE, WORDS, device="cpu")
    perturb(clf, seed=3)
    expected = clf.predict_proba(TEXTS)
    clf.save_merged(tmp_path / "merged")
    model = st.SentenceTransformer(str(tmp_path / "merged"), device="cpu")
    logits = model.encode(TEXTS, convert_to_tensor=True)
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), expected, atol=1e-5)
