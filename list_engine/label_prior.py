"""Is the prompt's prior right? With the similarity head a class starts as the embedding of
its label word in the template ("It was great."). A label word that means little to the
encoder, or the opposite (the labels swapped), starts the teacher from a wrong prior that 30
labels may not overcome. The labelled examples decide: when the class means of their
embeddings classify them better than the label words do, the classes start from the means.
"""

from __future__ import annotations

import numpy as np


def check_label_prior(word_vectors: np.ndarray, embeddings: np.ndarray,
                      gold: np.ndarray) -> dict:
    """Whether the label words or the labelled examples describe the classes better, judged
    on the labelled examples themselves: the words' zero-shot accuracy (nearest label-word
    description) against the leave-one-out accuracy of the class means (each example scored
    against means computed without it). Returns both accuracies, the class means (C, H), and
    "use_examples": True when the means did strictly better (a label word that means little,
    or the opposite, to the encoder)."""
    emb = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    words = word_vectors / np.maximum(np.linalg.norm(word_vectors, axis=1, keepdims=True), 1e-12)
    n_classes = len(words)
    words_acc = float(np.mean((emb @ words.T).argmax(1) == gold))
    sums = np.stack([emb[gold == c].sum(0) for c in range(n_classes)])  # (C, H)
    counts = np.bincount(gold, minlength=n_classes).astype(float)
    correct = 0
    for i, g in enumerate(gold):
        s, n = sums.copy(), counts.copy()
        s[g] -= emb[i]
        n[g] -= 1
        means = s / np.maximum(n, 1)[:, None]
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        scores = means @ emb[i]
        scores[n == 0] = -np.inf  # a class whose only example is this one
        correct += int(scores.argmax() == g)
    examples_acc = correct / max(len(gold), 1)
    means = sums / np.maximum(counts, 1)[:, None]
    return {"words_accuracy": words_acc, "examples_accuracy": examples_acc,
            "use_examples": examples_acc > words_acc and bool((counts > 0).all()),
            "class_means": means}
