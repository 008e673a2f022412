from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from list_engine import (
    TASK_PRESETS,
    Example,
    PromptError,
    Template,
    Verbalizer,
    render_prompt,
    validate_prompt,
)


@pytest.fixture(scope="module")
def wp(tiny_bert_dir):
    return AutoTokenizer.from_pretrained(tiny_bert_dir)


@pytest.fixture(scope="module")
def bpe(tiny_roberta_dir):
    return AutoTokenizer.from_pretrained(tiny_roberta_dir)


@pytest.mark.parametrize(("pattern", "fragment"), [
    ("{text} It was.", "no {mask}"),
    ("{text} {mask} {mask}", "2 {mask}"),
    ("{text} {foo} {mask}", "unknown placeholder"),
    ("It was {mask}.", "no {text}"),
    ("{text} {text_b} {mask}", "mix of {text}"),
    ("{text_b} {mask}", "without {text_a}"),
    ("{text} {mask", "unbalanced"),
    ("", "empty"),
])
def test_template_errors(pattern, fragment):
    with pytest.raises(PromptError, match=None) as info:
        Template(pattern)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


def test_template_ok():
    assert not Template("{text} It was {mask}.").is_pair
    assert Template("{text_a}? {mask}, {text_b}").is_pair


def test_verbalizer_errors(wp):
    with pytest.raises(PromptError, match="at least 2"):
        Verbalizer({"a": "great"})
    with pytest.raises(PromptError, match="duplicate"):
        Verbalizer({"a": "great", "b": "great"})
    v = Verbalizer({"neg": "terrible", "pos": "great"})
    assert v.labels == ["neg", "pos"] and v.words == ["terrible", "great"]
    assert len(v.token_ids(wp)) == 2
    with pytest.raises(PromptError, match="tokens for this tokenizer") as info:
        Verbalizer({"a": "greatnessxyz", "b": "bad"}).token_ids(wp)
    assert "##" in str(info.value)  # shows the tokenisation


def test_bpe_leading_space_hint(bpe):
    assert len(bpe(" great", add_special_tokens=False)["input_ids"]) == 1
    problems = validate_prompt("{text} It was {mask}.", {"n": "terrible", "p": "great"}, bpe)
    assert problems and any("' great'" in p and "leading-space" in p for p in problems)
    assert validate_prompt("{text} It was {mask}.", {"n": " terrible", "p": " great"}, bpe) == []


def test_validate_prompt_collects_everything(wp):
    problems = validate_prompt("{txt}", {"a": "x"}, wp)
    assert len(problems) >= 3  # unknown placeholder, no mask, no text, < 2 labels
    assert validate_prompt("{text} It was {mask}.", {"n": "terrible", "p": "great"}, wp) == []


def test_presets_valid(wp):
    for name, preset in TASK_PRESETS.items():
        Template(preset.template)
        if preset.words:
            assert validate_prompt(preset.template, preset.words, wp) == [], name
    assert set(TASK_PRESETS) == {"sentiment", "subjectivity", "topic", "question_type", "nli",
                                 "paraphrase"}


def test_render_short(wp):
    r = render_prompt("{text} It was {mask}.", "a fine movie", wp, 32)
    assert not r.truncated and r.kept_chars == r.original_chars
    assert r.input_ids[r.mask_position] == wp.mask_token_id
    assert r.text == "a fine movie It was [MASK]."


def test_truncation_keeps_template_and_mask(wp):
    text = " ".join(f"word{i}" for i in range(300))
    r = render_prompt("{text} It was {mask}.", text, wp, 40)
    assert r.truncated and len(r.input_ids) <= 40
    assert r.text.endswith(" It was [MASK].")
    assert r.input_ids[r.mask_position] == wp.mask_token_id
    assert r.kept_chars < r.original_chars and text.startswith(r.text[: r.kept_chars])
    # mask first, text after: the text is still the part that shrinks
    r2 = render_prompt("{mask}: {text}", text, wp, 24)
    assert len(r2.input_ids) <= 24 and r2.text.startswith("[MASK]: word0")


def test_pair_truncation_longest_first(wp):
    ex = Example("short premise", text_b=" ".join(["long"] * 200))
    r = render_prompt("{text_a}? {mask}, {text_b}", ex, wp, 30)
    assert len(r.input_ids) <= 30 and r.truncated
    assert r.text.startswith("short premise? [MASK], long")
    with pytest.raises(PromptError, match="text_b"):
        render_prompt("{text_a}? {mask}, {text_b}", "no pair", wp, 30)


def test_template_longer_than_max_length(wp):
    with pytest.raises(PromptError, match="template alone"):
        render_prompt("{text} " + "this is a very long template " * 5 + "{mask}", "hi", wp, 16)


def test_bpe_render_no_space_token_before_mask(bpe):
    r = render_prompt("{text} It was {mask}.", "a great movie " * 40, bpe, 32)
    assert len(r.input_ids) <= 32 and r.input_ids[r.mask_position] == bpe.mask_token_id
    before = bpe.convert_ids_to_tokens([r.input_ids[r.mask_position - 1]])[0]
    assert before.strip("Ġ") != ""  # no lone-space token: the label word carries the space
