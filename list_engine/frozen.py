"""The frozen lower layers of the encoder, computed once per document.

With adapters in the top N transformer layers only (`AdapterConfig.layers`), nothing below
the first adapted layer ever changes during training: its output for a document is the same
at every step of every phase (learning-rate search, teacher, pseudo-labelling, students).
`prefix_states` computes that output once; `run_top_layers` continues from it. Together they
give the same logits as the full forward pass (tests/engine/test_frozen_cache.py checks it to
1e-5), at the cost of the adapted layers only. One difference is intended: the cached layers
run once, in eval mode, so training sees them without dropout (the frozen part of the model
is deterministic; dropout still acts in the adapted layers).

Only encoders whose layers take `(hidden, attention_mask)` and add nothing between layers are
split (the BERT family); others (MPNet's relative position bias, DistilBERT's own layer
signature) run the full forward pass, which is slower but the same model.
"""

from __future__ import annotations

import torch
from torch import nn

SPLITTABLE = ("bert", "roberta", "xlm-roberta", "camembert", "electra")


def can_split(mlm: nn.Module) -> bool:
    layers = getattr(getattr(mlm.base_model, "encoder", None), "layer", None)
    return mlm.config.model_type in SPLITTABLE and isinstance(layers, nn.ModuleList)


@torch.no_grad()
def prefix_states(mlm: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  start: int) -> torch.Tensor:
    """(B, T) -> (B, T, H): the hidden states that enter layer `start` (embeddings and the
    layers below it, all frozen)."""
    encoder = mlm.base_model.encoder
    layers = encoder.layer
    encoder.layer = layers[:start]  # the model's own forward, stopped below layer `start`
    try:
        return mlm.base_model(input_ids=input_ids, attention_mask=attention_mask)[0]
    finally:
        encoder.layer = layers


def run_top_layers(mlm: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor,
                   start: int) -> torch.Tensor:
    """(B, T, H) states entering layer `start` -> (B, T, H) last hidden states."""
    from transformers.masking_utils import create_bidirectional_mask

    mask = create_bidirectional_mask(config=mlm.config, inputs_embeds=hidden,
                                     attention_mask=attention_mask)
    for layer in mlm.base_model.encoder.layer[start:]:
        out = layer(hidden, mask)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden
