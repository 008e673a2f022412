"""Pure functions that turn a teacher's soft labels into a student's training targets.

A student fitted to the teacher's raw soft labels is pulled back onto the teacher's function
(self-distillation). These steps give it something the teacher did not have:
- `neighbour_smooth`: the corpus's own geometry. A document's label is averaged with those of
  its nearest neighbours in the frozen encoder's embedding space, so an isolated teacher error
  inside a region of agreement is outvoted (label propagation over a kNN graph).
- `sharpen`: temperature < 1 moves the targets towards hard labels (entropy minimisation).
- `class_balanced_keep`: per predicted class, the most confident share only, with the same
  budget for every class, so the student is not trained on the teacher's class bias.
- `drop_tokens`: noise on the student's input (a random share of each document's tokens
  hidden from attention and pooling), so the student must predict the label from less than
  the teacher saw (Noisy Student).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def sharpen(probs: np.ndarray, temperature: float) -> np.ndarray:
    """(N, C) -> (N, C): p^(1/T), renormalised; T = 1 leaves them unchanged."""
    if temperature == 1.0:
        return probs
    logp = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    out = np.exp(logp)
    return (out / out.sum(axis=1, keepdims=True)).astype(probs.dtype)


def nearest_neighbours(embeddings: np.ndarray, k: int) -> np.ndarray:
    """(N, H) L2-normalised -> (N, k') indices of each row's k most similar other rows
    (k' = min(k, N - 1)), by cosine similarity."""
    n = len(embeddings)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64)
    out = np.zeros((n, k), dtype=np.int64)
    for start in range(0, n, 1024):  # (1024, N) similarities at a time: memory stays small
        sims = embeddings[start : start + 1024] @ embeddings.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # not its own neighbour
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out[start : start + len(sims)] = np.take_along_axis(top, order, axis=1)
    return out


def neighbour_smooth(probs: np.ndarray, neighbours: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) * own probabilities + weight * the mean of the neighbours' probabilities."""
    if weight == 0.0 or neighbours.shape[1] == 0:
        return probs
    return ((1.0 - weight) * probs + weight * probs[neighbours].mean(axis=1)).astype(probs.dtype)


def class_balanced_keep(probs: np.ndarray, fraction: float | None) -> np.ndarray:
    """(N,) bool: per predicted class, its most confident documents, at most
    ceil(fraction * N / C) of them (a class predicted less often keeps all of its own)."""
    n, n_classes = probs.shape
    if fraction is None or n == 0:
        return np.ones(n, dtype=bool)
    budget = max(1, math.ceil(fraction * n / n_classes))
    pred = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    keep = np.zeros(n, dtype=bool)
    for c in range(n_classes):
        members = np.flatnonzero(pred == c)
        best = members[np.argsort(-confidence[members], kind="stable")[:budget]]
        keep[best] = True
    return keep


def drop_tokens(batch: dict[str, torch.Tensor], rate: float,
                generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The batch with a random `rate` of each document's tokens masked out of attention and
    pooling; the first token and the prompt's mask position always stay."""
    if rate == 0.0:
        return batch
    mask = batch["attention_mask"]
    keep = (torch.rand(mask.shape, generator=generator) >= rate).to(mask.device, mask.dtype)
    keep[:, 0] = 1
    keep[torch.arange(mask.shape[0], device=mask.device), batch["mask_pos"]] = 1
    return {**batch, "attention_mask": mask * keep}
