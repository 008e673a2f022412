"""How many tokens to keep: from the documents themselves, capped by what the model handles.

A fixed small max_length throws most of a long document away (BBC articles at 64 tokens);
a fixed large one wastes time on short sentences. `choose_max_length` takes a high percentile
of the texts' token counts, rounded up to a multiple of 8, capped by the model's own limit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HARD_CAP = 512  # positional embeddings of BERT-like encoders
MIN_LENGTH = 16
PERCENTILE = 95
SAMPLE = 1000  # texts looked at (tokenising a whole corpus to pick one number is waste)


def model_max_length(model_path: str | None, tokenizer=None, config=None) -> int:
    """The longest input the model was trained for: a sentence-transformers checkpoint's
    `max_seq_length` (256 for all-MiniLM-L6-v2), else the tokenizer's `model_max_length`,
    else the position embeddings; never above 512."""
    limits = [HARD_CAP]
    if model_path and (Path(model_path) / "sentence_bert_config.json").is_file():
        st = json.loads((Path(model_path) / "sentence_bert_config.json").read_text())
        if isinstance(st.get("max_seq_length"), int):
            limits.append(st["max_seq_length"])
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, int) and value < 100_000:  # transformers' "no limit" is 1e30
        limits.append(value)
    value = getattr(config, "max_position_embeddings", None)
    if isinstance(value, int) and value > 2:
        limits.append(value - 2 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta",
                                                                          "camembert") else value)
    return int(min(limits))


def token_counts(texts: list[str], tokenizer, cap: int, seed: int = 0) -> list[int]:
    """Token counts (special tokens included) of up to SAMPLE non-empty texts."""
    texts = [t for t in texts if t]
    if len(texts) > SAMPLE:
        idx = np.random.default_rng(seed).choice(len(texts), size=SAMPLE, replace=False)
        texts = [texts[i] for i in idx]
    if not texts:
        return []
    # Characters beyond what `cap` tokens can hold never matter: cut them before tokenising.
    return [len(ids) for ids in tokenizer([t[: cap * 12] for t in texts],
                                          add_special_tokens=True)["input_ids"]]


def length_for(counts: list[int], cap: int, extra_tokens: int = 0) -> int:
    """The PERCENTILE-th percentile of `counts` (plus `extra_tokens` for a template), rounded
    up to a multiple of 8, within [MIN_LENGTH, cap]; no counts: min(cap, 128)."""
    if not counts:
        return min(cap, 128)
    length = float(np.percentile(counts, PERCENTILE)) + extra_tokens
    length = int(np.ceil(length / 8) * 8)
    return int(max(MIN_LENGTH, min(cap, length)))


def choose_max_length(texts: list[str], tokenizer, cap: int, extra_tokens: int = 0,
                      seed: int = 0) -> int:
    """max_length for these texts: `length_for(token_counts(...))`."""
    return length_for(token_counts(texts, tokenizer, cap, seed), cap, extra_tokens)
