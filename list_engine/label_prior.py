"""Is the prompt's prior right? With the similarity head a class starts as the embedding of
its label word in the template ("It was great."). A label word that means little to the
encoder, or the opposite (the labels swapped), starts the teacher from a wrong prior that 30
labels may not overcome. The labelled examples decide: when the label words sort them no
better than chance and the class means of their embeddings clearly do better, the classes
start from the means.
"""

from __future__ import annotations

import numpy as np

from .round_choice import clearly_better


def check_label_prior(word_vectors: np.ndarray, embeddings: np.ndarray,
                      gold: np.ndarray) -> dict:
    """Whether the label words or the labelled examples describe the classes better, judged
    on the labelled examples themselves: the words' zero-shot accuracy (nearest label-word
    description) against the leave-one-out accuracy of the class means (each example scored
    against means computed without it). Returns both accuracies, the class means (C, H), and
    "use_examples": True when the words do no better than chance on the labelled examples and
    the means do better beyond the noise of so few examples (a paired bootstrap,
    list_engine.round_choice): label words that mean the opposite, or nothing, to the
    encoder."""
    emb = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    words = word_vectors / np.maximum(np.linalg.norm(word_vectors, axis=1, keepdims=True), 1e-12)
    n_classes = len(words)
    words_pred = (emb @ words.T).argmax(1)
    sums = np.stack([emb[gold == c].sum(0) for c in range(n_classes)])  # (C, H)
    counts = np.bincount(gold, minlength=n_classes).astype(float)
    loo_pred = np.zeros(len(gold), dtype=int)
    for i, g in enumerate(gold):
        s, n = sums.copy(), counts.copy()
        s[g] -= emb[i]
        n[g] -= 1
        means = s / np.maximum(n, 1)[:, None]
        means /= np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)
        scores = means @ emb[i]
        scores[n == 0] = -np.inf  # a class whose only example is this one
        loo_pred[i] = scores.argmax()
    means = sums / np.maximum(counts, 1)[:, None]
    # Only a prior that is wrong is replaced: the words do no better than chance on the
    # labels (on BBC, means of 6 articles a class started worse than good words that merely
    # sorted fewer labels right), and 30 labels are few, so the means must win beyond their
    # noise, not by one example.
    words_acc = float(np.mean(words_pred == gold))
    use = (bool((counts > 0).all()) and words_acc <= 1.0 / n_classes
           and clearly_better(gold, loo_pred, words_pred, n_classes))
    return {"words_accuracy": words_acc,
            "examples_accuracy": float(np.mean(loo_pred == gold)),
            "use_examples": use, "class_means": means}
