"""Several label words per class: a class scores the mean of its words' scores (MLM head) or
its description embedding is the mean of its words' (similarity head), on tiny BERT and
RoBERTa; save/load, the PEFT view and the merged export keep the probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from list_engine import PromptClassifier, PromptError, Verbalizer, validate_prompt

from .conftest import TEMPLATE

TEXTS = ["a great fun movie", "boring and bad", "i love this film", "awful", "fine"]
MULTI = {"neg": "terrible, bad, awful", "pos": "great, good"}


def words_for(model: str) -> dict[str, str]:
    # RoBERTa's BPE: the leading-space form of the first word carries over to the others.
    return {k: " " + v for k, v in MULTI.items()} if model == "tiny_roberta_dir" else MULTI


def test_words_are_split_on_commas_and_keep_the_first_words_leading_space():
    v = Verbalizer(MULTI)
    assert v.word_lists == [["terrible", "bad", "awful"], ["great", "good"]]
    assert v.words_per_class == [3, 2] and v.is_multi_word
    assert Verbalizer({"a": " great, good", "b": " bad"}).word_lists == [[" great", " good"],
                                                                         [" bad"]]
    assert Verbalizer({"a": ["great", "good"], "b": "bad"}).words == ["great", "good", "bad"]
    assert not Verbalizer({"a": "great", "b": "bad"}).is_multi_word


@pytest.mark.parametrize("mapping, expected", [
    ({"a": "great, good", "b": "good"}, "duplicate label word(s) ['good']"),
    ({"a": "great, , good", "b": "bad"}, "empty label word for label(s) ['a']"),
    ({"a": "great,", "b": "bad"}, "empty label word for label(s) ['a']"),
])
def test_bad_word_lists_are_clear_errors(mapping, expected):
    with pytest.raises(PromptError, match=__import__("re").escape(expected)):
        Verbalizer(mapping)


def test_each_word_is_checked_with_the_tokenizer(tiny_bert_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    problems = validate_prompt(TEMPLATE, {"neg": "terrible, zzzqqq", "pos": "great"}, tok)
    assert len(problems) == 1 and "'zzzqqq' (label 'neg')" in problems[0]


def plain_mlm_class_probs(clf: PromptClassifier, model_dir, per_class: list[int],
                          ids: list[int]) -> np.ndarray:
    """Mean of the label words' logits per class, from a plain transformers MLM."""
    from transformers import AutoModelForMaskedLM

    model = AutoModelForMaskedLM.from_pretrained(model_dir).eval()
    batch = clf.collate(clf.encode(TEXTS))
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    words = logits[torch.arange(len(TEXTS)), batch["mask_pos"]][:, ids]  # (B, K)
    scores = torch.stack([g.mean(1) for g in words.split(per_class, dim=1)], dim=1)
    return torch.softmax(scores, -1).numpy()


@pytest.mark.parametrize("model", ["tiny_bert_dir", "tiny_roberta_dir"])
def test_an_untrained_mlm_classifier_scores_the_mean_of_its_words(model, request):
    base = request.getfixturevalue(model)
    clf = PromptClassifier.create(str(base), TEMPLATE, words_for(model), device="cpu",
                                  head="mlm")
    ids = clf.verbalizer.token_ids(clf.tokenizer)
    assert len(ids) == 5 and clf.num_classes == 2
    expected = plain_mlm_class_probs(clf, base, [3, 2], ids)
    np.testing.assert_allclose(clf.predict_proba(TEXTS), expected, atol=1e-5)


def perturb(clf: PromptClassifier) -> None:
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in clf.trainable_parameters().values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)


@pytest.mark.parametrize("model", ["tiny_bert_dir", "tiny_roberta_dir"])
def test_trained_multi_word_mlm_model_survives_save_peft_and_merge(model, request, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForMaskedLM

    base = request.getfixturevalue(model)
    clf = PromptClassifier.create(str(base), TEMPLATE, words_for(model), device="cpu",
                                  head="mlm")
    perturb(clf)
    expected = clf.predict_proba(TEXTS)
    batch = clf.collate(clf.encode(TEXTS))

    out = clf.save_pretrained(tmp_path / "m")
    prompt = json.loads((out / "list_prompt.json").read_text())
    assert prompt["label_words_per_class"] == [3, 2] and len(prompt["label_token_ids"]) == 5
    reloaded = PromptClassifier.from_pretrained(out, device="cpu")
    np.testing.assert_allclose(reloaded.predict_proba(TEXTS), expected, atol=1e-6)

    def class_probs(mlm) -> np.ndarray:
        with torch.no_grad():
            logits = mlm(input_ids=batch["input_ids"],
                         attention_mask=batch["attention_mask"]).logits
        words = logits[torch.arange(len(TEXTS)), batch["mask_pos"]][:, prompt["label_token_ids"]]
        groups = words.split(prompt["label_words_per_class"], dim=1)
        return torch.softmax(torch.stack([g.mean(1) for g in groups], 1), -1).numpy()

    peft = PeftModel.from_pretrained(AutoModelForMaskedLM.from_pretrained(base), out).eval()
    np.testing.assert_allclose(class_probs(peft), expected, atol=1e-5)

    clf.save_merged(tmp_path / "merged")
    merged_prompt = json.loads((tmp_path / "merged" / "list_prompt.json").read_text())
    assert merged_prompt["label_words_per_class"] == [3, 2]
    merged = AutoModelForMaskedLM.from_pretrained(tmp_path / "merged").eval()
    np.testing.assert_allclose(class_probs(merged), expected, atol=1e-5)


def test_the_model_card_snippet_averages_each_classes_words(tiny_bert_dir, tmp_path):
    """The snippet every exported model card carries, run as written."""
    from list_engine.hub import peft_snippet

    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, MULTI, device="cpu", head="mlm")
    perturb(clf)
    text = "some text to classify"
    expected = dict(zip(clf.labels, clf.predict_proba([text])[0].tolist(), strict=True))
    out = clf.save_pretrained(tmp_path / "m")
    code = peft_snippet(json.loads((out / "list_prompt.json").read_text()), folder=str(out),
                        base=str(tiny_bert_dir)).replace("print(probs)", "")
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - our own generated snippet
    for label in clf.labels:
        assert scope["probs"][label] == pytest.approx(expected[label], abs=1e-5)


def test_similarity_head_starts_from_the_mean_of_the_words_descriptions(headless_bert,
                                                                         tmp_path):
    from list_engine.modeling import _embed_texts

    clf = PromptClassifier.create(str(headless_bert), TEMPLATE, MULTI, device="cpu",
                                  head="similarity")
    single = PromptClassifier.create(str(headless_bert), TEMPLATE, {"neg": "bad", "pos": "good"},
                                     device="cpu", head="similarity")
    emb = _embed_texts(clf.module.mlm, clf.tokenizer,
                       ["It was terrible.", "It was bad.", "It was awful.", "It was great.",
                        "It was good."])
    expected = torch.stack([emb[:3].mean(0), emb[3:].mean(0)])
    got = clf.module.classifier.label_embeddings.detach()
    torch.testing.assert_close(got, expected.to(got.dtype), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got, single.module.classifier.label_embeddings.detach())
    # and it trains and reloads like any other
    perturb(clf)
    out = clf.save_pretrained(tmp_path / "multi-sim")
    assert json.loads((out / "list_prompt.json").read_text())["verbalizer"] == MULTI
    np.testing.assert_allclose(PromptClassifier.from_pretrained(out, device="cpu")
                               .predict_proba(TEXTS), clf.predict_proba(TEXTS), atol=1e-6)


def test_lists_of_words_work_as_well_as_comma_strings(tiny_bert_dir):
    a = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, MULTI, device="cpu", head="mlm")
    b = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE,
                                {"neg": ["terrible", "bad", "awful"], "pos": ["great", "good"]},
                                device="cpu", head="mlm")
    np.testing.assert_allclose(a.predict_proba(TEXTS), b.predict_proba(TEXTS), atol=1e-7)


@pytest.mark.parametrize("model, head", [("tiny_bert_dir", "mlm"), ("tiny_roberta_dir", "mlm"),
                                         ("headless_bert", "similarity")])
def test_list_self_training_with_several_words_per_label(model, head, request, labeled,
                                                         unlabeled, tmp_path):
    """A whole (tiny) LiST run: teacher, pseudo-labels, student rounds, then save and reload."""
    from list_engine import LiSTTrainer

    from .test_self_training import tiny_config

    base = request.getfixturevalue(model)
    clf = PromptClassifier.create(str(base), TEMPLATE, words_for(model), device="cpu",
                                  head=head)
    before = clf.predict_proba(TEXTS)
    result = LiSTTrainer(clf, tiny_config(), labeled, unlabeled, eval=labeled).train()
    assert result.status == "completed" and result.rounds_completed == 2
    after = clf.predict_proba(TEXTS)
    assert after.shape == (len(TEXTS), 2) and not np.allclose(before, after)
    out = clf.save_pretrained(tmp_path / "m")
    np.testing.assert_allclose(PromptClassifier.from_pretrained(out, device="cpu")
                               .predict_proba(TEXTS), after, atol=1e-6)
