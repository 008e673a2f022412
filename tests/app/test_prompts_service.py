"""Prompt validation (WordPiece and BPE), presets, preview, zero-shot check, versions."""

from __future__ import annotations

import pytest

from app.services import ServiceError
from app.services import prompts as P
from app.services.labelling import set_label


@pytest.fixture(scope="module")
def bert_tok(tiny_bert_dir):
    return P.load_tokenizer(str(tiny_bert_dir))


@pytest.fixture(scope="module")
def roberta_tok(tiny_roberta_dir):
    return P.load_tokenizer(str(tiny_roberta_dir))


def test_wordpiece_validation(bert_tok):
    ok = P.validate("{text} It was {mask}.", {"pos": "great", "neg": "terrible"}, bert_tok,
                    ["pos", "neg"])
    assert ok == []
    problems = P.validate("{text} It was.", {"pos": "greatness123", "neg": ""}, bert_tok,
                          ["pos", "neg"])
    text = " ".join(problems)
    assert "mask" in text and "No label word for: neg" in text
    assert P.word_tokens("greatness123", bert_tok)[0] == "great"
    assert len(P.word_tokens("greatness123", bert_tok)) > 1
    suggestions = P.suggest_single_token("Technologyish", bert_tok)
    assert suggestions and all(P.is_single_token(s, bert_tok) for s in suggestions)
    report = P.word_report({"pos": "great", "neg": "greatness123"}, bert_tok)
    assert report["one token"].tolist() == [True, False]
    assert P.validate("{text} {mask} {mask}", {"a": "yes", "b": "no"}, bert_tok)
    assert P.validate("{text}", {"a": "x"}, bert_tok, ["a"], mode="classic") == [
        "The project needs at least 2 labels: define them on the Labels page."]


def test_pair_template_needs_pair_documents(db, sentiment_project, bert_tok):
    words = {"positive": "yes", "negative": "no"}
    has_pairs = P.corpus_has_pairs(db, sentiment_project.id)
    assert has_pairs is False
    problems = P.validate("{text_a}? {mask}, {text_b}", words, bert_tok, has_pairs=has_pairs)
    assert any("second text" in p for p in problems)
    assert P.validate("{text_a}? {mask}, {text_b}", words, bert_tok, has_pairs=True) == []


def test_bpe_validation_suggests_the_leading_space_form(roberta_tok):
    assert P.is_bpe(roberta_tok)
    problems = P.validate("{text} It was {mask}.", {"pos": "great", "neg": "terrible"},
                          roberta_tok)
    assert problems and "leading-space" in " ".join(problems)
    assert P.validate("{text} It was {mask}.", {"pos": " great", "neg": " terrible"},
                      roberta_tok) == []
    assert " great" in P.suggest_single_token("great", roberta_tok)
    report = P.word_report({"pos": " great", "neg": "sportsmanship"}, roberta_tok)
    assert report["one token"].tolist() == [True, False]


def test_presets_map_onto_project_labels():
    presets = P.presets()
    assert {"sentiment", "topic", "subjectivity", "question_type", "nli"} <= set(presets)
    words = P.preset_verbalizer(presets["sentiment"], ["Positive", "weird"], {"weird": "odd"})
    assert words["weird"] == "odd" and words["Positive"]


def test_preview_shows_truncation(db, sentiment_project, bert_tok):
    import pandas as pd

    from app.services.corpus import import_documents

    import_documents(db, sentiment_project.id, pd.DataFrame({"text": ["word " * 400]}),
                     text_column="text")
    docs = P.preview_documents(db, sentiment_project.id, n=20)
    previews = P.preview("{text} It was {mask}.", docs, bert_tok, max_length=32)
    long = [p for p in previews if p.truncated]
    assert len(long) == 1 and long[0].kept_chars < long[0].original_chars
    assert "[MASK]" in long[0].text and "It was" in long[0].text


def test_zero_shot_check_says_the_head_is_untrained(db, sentiment_project, tiny_bert_dir):
    from sqlalchemy import select

    from app.services.labelling import list_label_classes
    from db.models import Document

    pid = sentiment_project.id
    verbalizer = {"positive": "great", "negative": "terrible"}
    clf = P.build_classifier(str(tiny_bert_dir), "{text} It was {mask}.", verbalizer)
    with pytest.raises(ServiceError, match="Label a few"):
        P.zero_shot_check(db, pid, clf)
    pos, neg = list_label_classes(db, pid)
    docs = db.scalars(select(Document).where(Document.project_id == pid)
                      .order_by(Document.id)).all()
    set_label(db, pid, docs[0].id, pos.id)
    set_label(db, pid, docs[-1].id, neg.id)
    result = P.zero_shot_check(db, pid, clf)
    assert len(result.table) == 2 and 0 <= result.accuracy <= 1
    assert {"p(positive)", "p(negative)"} <= set(result.table.columns)
    # The tiny model's checkpoint has (random) MLM head weights, so the engine calls it
    # pretrained; the note follows the engine's flag.
    assert result.head_pretrained is clf.mlm_head_pretrained

    class UntrainedHead:  # what the packaged default model reports
        labels = ["positive", "negative"]
        mlm_head_pretrained = False

        def predict_proba(self, examples):
            import numpy as np

            return np.full((len(examples), 2), 0.5)

    result = P.zero_shot_check(db, pid, UntrainedHead())
    assert result.head_pretrained is False and "untrained" in result.note
    assert "means nothing" in result.note


def test_versioned_save(db, sentiment_project, bert_tok):
    pid = sentiment_project.id
    words = {"positive": "great", "negative": "terrible"}
    v1 = P.save_prompt_config(db, pid, template="{text} It was {mask}.", verbalizer=words,
                              model="default", tokenizer=bert_tok)
    v2 = P.save_prompt_config(db, pid, template="{text} All in all, {mask}.", verbalizer=words,
                              model="default", note="shorter", tokenizer=bert_tok)
    assert (v1.version, v2.version) == (1, 2)
    assert P.latest_prompt_config(db, pid).id == v2.id
    assert [c.version for c in P.list_prompt_configs(db, pid)] == [2, 1]
    assert list(v2.verbalizer) == ["positive", "negative"]
    with pytest.raises(ServiceError, match="not valid"):
        P.save_prompt_config(db, pid, template="{text}", verbalizer=words, model="default",
                             tokenizer=bert_tok)
    with pytest.raises(ServiceError, match="not in the project"):
        P.save_prompt_config(db, pid, template="{text} {mask}", verbalizer={"zzz": "a"},
                             model="default", tokenizer=bert_tok)
    assert len(P.list_prompt_configs(db, pid)) == 2


def test_zero_shot_check_on_the_default_model_is_real(db, sentiment_project):
    """The packaged sentence encoder has no MLM head: the similarity head gives real
    zero-shot predictions (clear sentiment sentences are classified right)."""
    from sqlalchemy import select

    from app.services.labelling import list_label_classes
    from db.models import Document

    pid = sentiment_project.id
    pos, neg = list_label_classes(db, pid)
    docs = db.scalars(select(Document).where(Document.project_id == pid)
                      .order_by(Document.id)).all()
    for doc, text, cls in ((docs[0], "A wonderful, moving film. I loved it.", pos),
                           (docs[1], "Dull, boring and far too long. I hated it.", neg)):
        doc.text = text
        set_label(db, pid, doc.id, cls.id)
    db.commit()
    clf = P.build_classifier("default", "{text} It was {mask}.",
                             {"positive": "great", "negative": "terrible"})
    result = P.zero_shot_check(db, pid, clf)
    assert result.head == "similarity" and result.meaningful
    assert "similarity head" in result.note and result.accuracy == 1.0
    assert "Similarity head" in P.head_explanation("similarity", False)
    assert "untrained" in P.head_explanation("mlm", False)


def test_an_unreachable_hub_name_fails_fast_with_advice(monkeypatch):
    """The prompt page's tokenizer goes through the engine's offline-aware loader."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ServiceError, match="no-such-org/no-such-model.*local model directory"):
        P.load_tokenizer("no-such-org/no-such-model")
