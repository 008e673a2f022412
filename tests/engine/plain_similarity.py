"""The similarity head's class probabilities computed in plain torch from an encoder and the
saved `list_head.safetensors` (what a user without list_engine would write; deliberately not
the engine's own code)."""

from __future__ import annotations

import numpy as np
import torch


def similarity_probs(encoder, head: dict, batch: dict) -> np.ndarray:
    with torch.no_grad():
        h = encoder(input_ids=batch["input_ids"],
                    attention_mask=batch["attention_mask"]).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    pooled = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    emb = torch.nn.functional.normalize(head["label_embeddings"], dim=-1)
    logits = head["log_scale"].exp() * pooled @ emb.T + head["bias"]
    return torch.softmax(logits, -1).numpy()
