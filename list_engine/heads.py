"""The prompt heads: the label-word rows of an MLM decoder, a scaled cosine similarity to one
embedding per class, and the classic classification head; the pooling and the per-class
mean of label-word rows they are built from."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SIMILARITY_INIT_SCALE = 20.0  # cosine differences of ~0.05 between classes -> logits of ~1


class LabelWordDecoder(nn.Module):
    """The C label-word rows of the MLM decoder: (B, E) -> (B, C)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(weight.detach().clone())  # (C, E)
        self.bias = nn.Parameter(bias.detach().clone())  # (C,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class ClassicHead(nn.Module):
    """Classification head on the first token: dense -> tanh -> out (RoBERTa-style)."""

    def __init__(self, hidden: int, n_classes: int):
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, n_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, H) -> (B, C)
        return self.out_proj(torch.tanh(self.dense(h)))


class SimilarityHead(nn.Module):
    """Scaled cosine similarity to one trainable embedding per class: (B, H) -> (B, C)."""

    def __init__(self, label_embeddings: torch.Tensor, scale: float = SIMILARITY_INIT_SCALE):
        super().__init__()
        self.label_embeddings = nn.Parameter(label_embeddings.detach().clone())  # (C, H)
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(scale))))
        self.bias = nn.Parameter(torch.zeros(label_embeddings.shape[0]))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        cos = F.normalize(pooled, dim=-1) @ F.normalize(self.label_embeddings, dim=-1).T
        return cos * self.log_scale.exp() + self.bias


def class_means(rows: torch.Tensor, words_per_class: list[int]) -> torch.Tensor:
    """(K, ...) one row per label word, class by class -> (C, ...) each class's mean row."""
    return torch.stack([g.mean(0) for g in torch.split(rows, words_per_class)])


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H), (B, T) -> (B, H): the mean over real tokens (sentence-transformers' pooling)."""
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)
